"""Sensors that wait for a moment: `TimeDeltaSensor` (a delta after the run's data interval
end), `DateTimeSensor` (a fixed or templated time) and `TimeSensor` (a time of day).
They read the engine's clock at each poke, so a test moves them with a FakeClock in either mode."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.models.baseoperator import Context
from asyncflow.operators.datetime import task_now
from asyncflow.sensors.base import BaseSensorOperator
from asyncflow.triggers.temporal import DateTimeTrigger


def _now(context: Context) -> datetime:
    return task_now(context)


class TimeDeltaSensor(BaseSensorOperator):
    def __init__(self, *, delta: timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delta = delta

    def _target(self, context: Context) -> datetime:
        target: datetime = context["data_interval_end"] + self.delta
        return target

    def trigger(self, context: Context) -> DateTimeTrigger:
        return DateTimeTrigger(self._target(context))

    def poke(self, context: Context) -> bool:
        return _now(context) >= self._target(context)


class DateTimeSensor(BaseSensorOperator):
    template_fields = ("target_time",)
    timeout_bounds_deferral = False

    def __init__(self, *, target_time: datetime | str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time

    def _target(self) -> datetime:
        target = self.target_time
        if isinstance(target, str):
            target = datetime.fromisoformat(target)
        if target.tzinfo is None:
            target = target.replace(tzinfo=UTC)
        return target

    def trigger(self, context: Context) -> DateTimeTrigger:
        return DateTimeTrigger(self._target())

    def poke(self, context: Context) -> bool:
        return _now(context) >= self._target()


class TimeSensor(BaseSensorOperator):
    """Waits until the time of day (in the DAG's timezone, on the engine's clock) is past
    `target_time`. Evaluated at each poke, on the day of the poke: a daemon that runs for weeks
    does not keep the day it parsed the DAG file on."""

    timeout_bounds_deferral = False

    def __init__(self, *, target_time: time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, time):
            raise DagDefinitionError(
                f"TimeSensor target_time must be a datetime.time, got {target_time!r}",
                dag_id=self.dag_id,
                task_id=self.task_id,
            )
        self.target_time = target_time

    def trigger(self, context: Context) -> DateTimeTrigger:
        """The next moment the time of day passes target_time (today's, in the DAG's zone)."""
        zone = self.dag.timezone if self.dag is not None else UTC
        now = _now(context).astimezone(zone)
        target = self.target_time
        moment = datetime.combine(now.date(), target.replace(tzinfo=None),
                                  tzinfo=target.tzinfo or zone)  # fmt: skip
        return DateTimeTrigger(moment.astimezone(UTC))

    def poke(self, context: Context) -> bool:
        zone = self.dag.timezone if self.dag is not None else UTC
        now = _now(context).astimezone(zone)
        target = self.target_time
        if target.tzinfo is not None:
            return now.timetz() > target
        return now.time() > target


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """Airflow 2's name for `TimeDeltaSensor(deferrable=True)`."""

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)


class DateTimeSensorAsync(DateTimeSensor):
    """Airflow 2's name for `DateTimeSensor(deferrable=True)`."""

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)


class TimeSensorAsync(TimeSensor):
    """Airflow 2's name for `TimeSensor(deferrable=True)`."""

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)
