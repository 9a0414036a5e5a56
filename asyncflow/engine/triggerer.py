"""The triggerer: every deferred task's trigger runs as one coroutine in the engine's own event
loop, under a supervisor that starts it after the deferral is committed, cancels it when the
task leaves `deferred` (cleared, marked, timed out) or the engine stops, and reports its first
event (or its failure) to the scheduler's inbox. Nothing here changes state: the mirror decides
(engine/deferrals.py).

The runtime it gives triggers (`asyncflow.triggers.base.TriggerRuntime`) is built for many at
once: timers sleep on the engine's clock; file waits share one watcher that the kernel wakes
when a folder they wait in changes (triggers/filewatch.py: inotify; a poll where it cannot
tell); waits on other DAGs' states listen to the event bus (one subscription, held only while
someone waits) and read the store only when that DAG changed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import aclosing
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from asyncflow.clock import Clock, SystemClock
from asyncflow.engine.deferrals import Deferrals
from asyncflow.engine.deferred import Deferral
from asyncflow.engine.events import EventBus, EventsMissed, Subscription
from asyncflow.engine.live import LiveTI
from asyncflow.engine.runner import _describe, user_traceback
from asyncflow.engine.tasklog import TaskLog, attempt_log_path, current_log
from asyncflow.logs import get_logger
from asyncflow.store.base import Store
from asyncflow.triggers import serde
from asyncflow.triggers.base import BaseTrigger, StateWait, TriggerEvent, load_trigger, runtime_var
from asyncflow.triggers.filewatch import PathWatcher

log = get_logger("asyncflow.triggerer")

#: puts a change in the scheduler's inbox and wakes it
Report = Callable[[Callable[[datetime], None]], None]


class Triggerer:
    def __init__(self, *, mirror: Deferrals, clock: Clock, bus: EventBus, store: Store,
                 report: Report, logs_folder: Path | None) -> None:  # fmt: skip
        self.mirror = mirror
        self.report = report
        self.logs_folder = logs_folder
        self.runtime = EngineRuntime(clock, bus, store)
        self._scopes: dict[Deferral, anyio.CancelScope] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.started = 0
        self.fired = 0

    def bind(self, tg: anyio.abc.TaskGroup) -> None:
        """Triggers run in the scheduler's task group: they end with it."""
        self._tg = tg
        self.runtime.bind(tg)

    def start(self, ti: LiveTI, deferral: Deferral) -> None:
        if self._tg is None or deferral in self._scopes:
            return
        scope = self._scopes[deferral] = anyio.CancelScope()
        self.started += 1
        self._tg.start_soon(self._run, ti, deferral, scope)

    def cancel(self, deferral: Deferral) -> None:
        scope = self._scopes.get(deferral)
        if scope is not None:
            scope.cancel()

    @property
    def waiting(self) -> int:
        return len(self._scopes)

    async def _run(self, ti: LiveTI, deferral: Deferral, scope: anyio.CancelScope) -> None:
        runtime_var.set(self.runtime)
        task_log = self._open_log(ti)
        trigger = None
        try:
            with scope:
                trigger = load_trigger(deferral.classpath, serde.loads(deferral.kwargs))
                if task_log is not None:
                    waits = f"{deferral.classpath} {deferral.kwargs}"
                    task_log.line(f"deferred: waiting on {waits}, resuming in "
                                  f"{deferral.next_method}()")  # fmt: skip
                event = await _first_event(trigger)
                serde.dumps(event.payload, f"the event of {deferral.classpath}")
                if task_log is not None:
                    task_log.line(f"trigger fired: {event!r}")
                self.fired += 1
                self.report(partial(self.mirror.trigger_fired, ti, deferral, event))
        except Exception as exc:  # the trigger's own failure: the task resumes to fail
            shown = user_traceback(exc)
            if task_log is not None:
                task_log.line(f"trigger failed: {shown}", level="ERROR")
            log.warning("trigger failed", ti=ti.key, trigger=deferral.classpath,
                        error=_describe(exc))  # fmt: skip
            self.report(partial(self.mirror.trigger_failed, ti, deferral, _describe(exc), shown))
        finally:
            self._scopes.pop(deferral, None)
            if trigger is not None and type(trigger).cleanup is not BaseTrigger.cleanup:
                with anyio.CancelScope(shield=True):  # a scope costs ~10 us: only if it does work
                    try:
                        await trigger.cleanup()
                    except Exception as exc:
                        log.error("trigger cleanup raised", ti=ti.key, error=_describe(exc))
            if task_log is not None:
                task_log.close()

    def _open_log(self, ti: LiveTI) -> TaskLog | None:
        """The trigger's lines go to the deferred try's attempt log."""
        if self.logs_folder is None:
            return None
        run = ti.run
        path = attempt_log_path(self.logs_folder, run.dag_id, run.run_id, ti.task_id,
                                max(1, ti.try_number))  # fmt: skip
        task_log = TaskLog(path)
        current_log.set(task_log)
        return task_log

    def statistics(self) -> dict[str, int]:
        return {"triggers_waiting": self.waiting, "triggers_started": self.started,
                "triggers_fired": self.fired, **self.runtime.statistics()}  # fmt: skip


async def _first_event(trigger: Any) -> TriggerEvent:
    async with aclosing(trigger.run()) as events:
        async for event in events:
            if not isinstance(event, TriggerEvent):
                raise TypeError(f"the trigger yielded {event!r}, not a TriggerEvent")
            return event
    raise RuntimeError("the trigger's run() ended without yielding a TriggerEvent")


class EngineRuntime:
    """`TriggerRuntime` inside the engine."""

    def __init__(self, clock: Clock, bus: EventBus, store: Store) -> None:
        self.clock = clock
        self.bus = bus
        self.store = store
        self._tg: anyio.abc.TaskGroup | None = None
        #: file waits: one watcher for all of them (inotify; a poll where it cannot tell)
        self.paths = PathWatcher(clock)
        # state waits: dag_id -> the events of those waiting on it
        self._listeners: dict[str, set[anyio.Event]] = {}
        self._subscription: Subscription | None = None

    def bind(self, tg: anyio.abc.TaskGroup) -> None:
        self._tg = tg
        self.paths.bind(tg)

    def now(self) -> datetime:
        return self.clock.now()

    async def sleep_until(self, when: datetime) -> None:
        if type(self.clock) is SystemClock:
            # a plain timer: `clock.wait` bounds an event wait with a cancel scope, and waking
            # thousands of timers at once through anyio's cancellation costs ~25 us each
            await anyio.sleep(max(0.0, (when - self.clock.now()).total_seconds()))
            return
        await self.clock.wait(anyio.Event(), when)

    # -- files --------------------------------------------------------------------------------
    async def wait_for_path(self, pattern: str, *, recursive: bool, exists: bool,
                            interval: float) -> list[str]:  # fmt: skip
        return await self.paths.wait(pattern, recursive=recursive, exists=exists,
                                     interval=interval)  # fmt: skip

    # -- other DAGs' states ----------------------------------------------------------------------
    async def wait_for_states(self, wait: StateWait) -> dict[str, str]:
        changed = anyio.Event()
        listeners = self._listeners.setdefault(wait.dag_id, set())
        listeners.add(changed)
        self._listen()
        try:
            while True:
                found = await self._states(wait)
                if found is not None:
                    return found
                await changed.wait()
                listeners.discard(changed)
                changed = anyio.Event()
                listeners.add(changed)
        finally:
            listeners.discard(changed)
            if not listeners:
                self._listeners.pop(wait.dag_id, None)
                self._unlisten()

    async def _states(self, wait: StateWait) -> dict[str, str] | None:
        """The states `wait` looks at, once all are wanted (or one failed); else None."""
        run_ids = list(wait.run_ids)
        for logical in wait.logical_dates:
            record = await self.store.find_dag_run(wait.dag_id, logical)
            if record is None:
                return None
            run_ids.append(record.run_id)
        found: dict[str, str] = {}
        for run_id in run_ids:
            if wait.task_id is None:
                record = await self.store.get_dag_run(wait.dag_id, run_id)
                state = record.state.value if record is not None else None
            else:
                tis = await self.store.get_task_instances(wait.dag_id, run_id)
                state = next((t.state.value for t in tis if t.task_id == wait.task_id), None)
            if state is None:
                return None
            if state in wait.failed_states:
                return {run_id: state}
            found[run_id] = state
        return found if all(s in wait.states for s in found.values()) else None

    def _listen(self) -> None:
        if self._subscription is None and self._tg is not None:
            self._subscription = self.bus.subscribe()
            self._tg.start_soon(self._pump, self._subscription)

    def _unlisten(self) -> None:
        """Nobody waits on a state any more: close the subscription (the bus then builds no
        events for it)."""
        if not self._listeners and self._subscription is not None:
            self._subscription.close()
            self._subscription = None

    async def _pump(self, subscription: Subscription) -> None:
        """One bus subscription for every state wait, while there is one."""
        async with subscription:
            async for event in subscription:
                if isinstance(event, EventsMissed):
                    targets = [e for group in self._listeners.values() for e in group]
                else:
                    targets = list(self._listeners.get(event.dag_id, ()))
                for changed in targets:
                    changed.set()

    def statistics(self) -> dict[str, int]:
        return {**self.paths.statistics(),
                "state_waits": sum(len(v) for v in self._listeners.values())}  # fmt: skip
