"""`BaseSensorOperator`: call `poke(context)` until it returns true, or time out.

`mode="poke"` keeps the worker slot and waits `poke_interval` seconds between pokes (on the
engine's clock, as `timeout` is: a FakeClock moves them).
`mode="reschedule"` gives the slot back between pokes: each false poke ends the attempt as
`up_for_reschedule` (it does not use a try), and the scheduler starts it again after
`poke_interval` on the engine's clock. `timeout` counts from the first poke; past it the task
fails without retrying (or is skipped with `soft_fail=True`). In reschedule mode the first poke's
time is kept in memory, so after a restart the timeout counts afresh.
`poke` may be `async def` (runs on the loop) or plain `def` (runs in a worker thread).

`deferrable=True` pokes once, then defers on the sensor's trigger (`trigger(context)`: a file,
a moment) and holds no slot until it fires; past `timeout` it fails as a sensor timeout (or
skips with `soft_fail`), as in Airflow (except DateTimeSensor and TimeSensor, which wait for
their moment however far: Airflow defers them without a timeout). A sensor without a trigger
of its own (PythonSensor, `@task.sensor`) waits in reschedule mode instead: it holds no slot
between pokes either.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from asyncflow.exceptions import (
    AsyncflowRescheduleException,
    AsyncflowSensorTimeout,
    AsyncflowSkipException,
    DagDefinitionError,
    TaskDeferralTimeout,
)
from asyncflow.models.baseoperator import BaseOperator, Context, RunsIn
from asyncflow.models.engine_access import clock_now, clock_sleep
from asyncflow.threads import run_sync
from asyncflow.triggers.base import BaseTrigger


@dataclass(frozen=True)
class PokeReturnValue:
    """What `poke` may return instead of a bool: done or not, and the XCom to push."""

    is_done: bool
    xcom_value: Any = None


def _seconds(value: timedelta | float) -> float:
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


class BaseSensorOperator(BaseOperator):
    ui_color = "#e6f1f2"
    #: whether `timeout` bounds a deferred wait too (Airflow's DateTimeSensor and TimeSensor
    #: defer without one: they wait for their moment however far it is)
    timeout_bounds_deferral = True

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = 60 * 60 * 24 * 7,
        mode: str = "poke",
        soft_fail: bool = False,
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if mode not in ("poke", "reschedule"):
            raise DagDefinitionError(
                f"sensor mode {mode!r} is not 'poke' or 'reschedule'",
                dag_id=self.dag_id,
                task_id=self.task_id,
            )
        self.poke_interval = _seconds(poke_interval)
        self.timeout = _seconds(timeout)
        if self.poke_interval < 0 or self.timeout < 0:
            raise DagDefinitionError(
                "poke_interval and timeout must be >= 0", dag_id=self.dag_id, task_id=self.task_id
            )
        self.mode = mode
        self.soft_fail = soft_fail
        self.exponential_backoff = exponential_backoff
        self.max_wait = _seconds(max_wait) if max_wait is not None else None
        self.deferrable = bool(deferrable)

    @property
    def runs_in(self) -> RunsIn:
        return "loop" if inspect.iscoroutinefunction(self.poke) else "thread"

    def poke(self, context: Context) -> Any:
        """Whether the condition holds now (a bool or a PokeReturnValue). Override it, as
        `def` (runs in a worker thread) or `async def` (runs on the loop)."""
        raise NotImplementedError(f"{type(self).__name__} must implement poke(context)")

    async def _poke(self, context: Context) -> PokeReturnValue:
        if inspect.iscoroutinefunction(self.poke):
            result = await self.poke(context)
        else:
            result = await run_sync(lambda: self.poke(context))
        if isinstance(result, PokeReturnValue):
            return result
        return PokeReturnValue(bool(result))

    def _interval(self, pokes: int) -> float:
        if not self.exponential_backoff:
            return self.poke_interval
        delay = self.poke_interval * float(2 ** max(0, pokes - 1))
        return min(delay, self.max_wait) if self.max_wait is not None else delay

    def _timed_out(self, waited: float) -> None:
        message = (
            f"sensor {self.task_id!r} timed out after {waited:.1f} s (timeout {self.timeout} s)"
        )
        if self.soft_fail:
            raise AsyncflowSkipException(message)
        raise AsyncflowSensorTimeout(message)

    def trigger(self, context: Context) -> BaseTrigger | None:
        """What this sensor defers on with `deferrable=True` (None: it has no trigger and
        waits in reschedule mode)."""
        return None

    def execute_complete(self, context: Context, event: Any = None) -> Any:
        """Where a deferred sensor resumes once its trigger fired: the condition holds."""
        return None

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None,
                         context: Context) -> Any:  # fmt: skip
        try:
            return super().resume_execution(next_method, next_kwargs, context)
        except TaskDeferralTimeout:  # a sensor's timeout: no retries (or skipped), as Airflow
            self._timed_out(self.timeout)

    async def execute(self, context: Context) -> Any:
        if self.deferrable:
            trigger = self.trigger(context)
            if trigger is not None:
                result = await self._poke(context)
                if result.is_done:
                    return result.xcom_value
                timeout = timedelta(seconds=self.timeout) if self.timeout_bounds_deferral else None
                self.defer(trigger=trigger, method_name="execute_complete", timeout=timeout)
            return await self._execute_reschedule(context)
        if self.mode == "reschedule":
            return await self._execute_reschedule(context)
        started = clock_now()
        pokes = 0
        while True:
            pokes += 1
            result = await self._poke(context)
            if result.is_done:
                return result.xcom_value
            waited = (clock_now() - started).total_seconds()
            if waited >= self.timeout:
                self._timed_out(waited)
            await clock_sleep(min(self._interval(pokes), max(0.0, self.timeout - waited)))

    async def _execute_reschedule(self, context: Context) -> Any:
        ti = context["ti"]
        now = ti.start_date
        first = ti.first_poke or now
        result = await self._poke(context)
        if result.is_done:
            return result.xcom_value
        waited = (now - first).total_seconds()
        if waited >= self.timeout:
            self._timed_out(waited)
        raise AsyncflowRescheduleException(
            now + timedelta(seconds=self._interval(ti.pokes)), first_poke=first
        )
