"""Timers: `DateTimeTrigger` fires at a moment, `TimeDeltaTrigger` after a delta. Both sleep on
the engine's clock (one timer each, no polling)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from asyncflow.triggers.base import (
    BaseTrigger,
    TaskSuccessEvent,
    TriggerEvent,
    classpath_of,
    now,
    sleep_until,
)


class DateTimeTrigger(BaseTrigger):
    """Fires at `moment` (timezone-aware; a naive one is taken as UTC) with the moment as its
    payload. `end_from_trigger=True` ends the task as success there, without resuming it."""

    def __init__(self, moment: datetime, *, end_from_trigger: bool = False) -> None:
        super().__init__()
        if not isinstance(moment, datetime):
            raise TypeError(f"DateTimeTrigger expects a datetime, got {moment!r}")
        self.moment = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
        self.end_from_trigger = end_from_trigger

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(DateTimeTrigger), {
            "moment": self.moment, "end_from_trigger": self.end_from_trigger,
        }  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        await sleep_until(self.moment)
        self.log.info("trigger fired at %s (target %s)", now().isoformat(), self.moment)
        if self.end_from_trigger:
            yield TaskSuccessEvent(self.moment)
        else:
            yield TriggerEvent(self.moment)


class TimeDeltaTrigger(DateTimeTrigger):
    """Fires `delta` after it was created (on the engine's clock); serialized as the moment,
    so a restart does not start the delta again."""

    def __init__(self, delta: timedelta, *, end_from_trigger: bool = False) -> None:
        super().__init__(now() + delta, end_from_trigger=end_from_trigger)
