"""Sensors that wait for a moment: `TimeDeltaSensor` (a delta after the run's data interval
end) and `DateTimeSensor` (a fixed or templated time). Both read the engine's clock through the
attempt's start time, so a test moves them with a FakeClock in reschedule mode."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from asyncflow.models.baseoperator import Context
from asyncflow.sensors.base import BaseSensorOperator


def _now(context: Context) -> datetime:
    start = context["ti"].start_date
    return start if start is not None else datetime.now(UTC)


class TimeDeltaSensor(BaseSensorOperator):
    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def poke(self, context: Context) -> bool:
        target: datetime = context["data_interval_end"] + self.delta
        return _now(context) >= target


class DateTimeSensor(BaseSensorOperator):
    template_fields = ("target_time",)

    def __init__(self, *, target_time: datetime | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def poke(self, context: Context) -> bool:
        target = self.target_time
        if isinstance(target, str):
            target = datetime.fromisoformat(target)
        if target.tzinfo is None:
            target = target.replace(tzinfo=UTC)
        return _now(context) >= target
