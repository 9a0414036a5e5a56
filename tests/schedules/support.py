"""Helpers for the schedule tests: an engine on a fake clock, a probe task that records what it
did and can be held or made to fail, bounded polling of the store, and event bookkeeping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import anyio

from asyncflow import (
    DAG,
    BaseOperator,
    DagRun,
    DagRunNotFound,
    DagRunState,
    DagRunStateChanged,
    Engine,
    FakeClock,
    TaskInstance,
    TaskState,
    TaskStateChanged,
)
from asyncflow.engine.events import Subscription

T = TypeVar("T")
Key = tuple[str, str]  # (task_id, run_id)
FINISHED_RUN = (DagRunState.SUCCESS, DagRunState.FAILED)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def make_engine(
    dags: Iterable[DAG],
    clock: FakeClock,
    *,
    database: str | Path = ":memory:",
    **options: Any,
) -> Engine:
    return Engine(
        dags=list(dags), database=database, clock=clock, external_poll_interval=None, **options
    )


async def barrier(engine: Engine) -> None:
    """Return once the scheduler has taken one full step at the clock's current time (due
    timers fired, due runs created, ready tasks dispatched) and committed it."""
    await engine._sync()


async def wait_until(check: Callable[[], Awaitable[T | None]], *, timeout: float = 5.0) -> T:
    """Poll `check` until it returns something truthy (bounded)."""
    with anyio.fail_after(timeout):
        while True:
            result = await check()
            if result:
                return result
            await anyio.sleep(0.005)


async def runs(engine: Engine, dag_id: str) -> list[DagRun]:
    """The DAG's runs, oldest logical date first."""
    return sorted(await engine.get_dag_runs(dag_id), key=lambda r: r.logical_date)


async def wait_runs(
    engine: Engine, dag_id: str, count: int, *, finished: bool = False
) -> list[DagRun]:
    """Wait until the DAG has `count` runs (all finished, if asked); fail if it has more."""

    async def check() -> list[DagRun] | None:
        found = await runs(engine, dag_id)
        assert len(found) <= count, f"expected {count} runs, got {len(found)}: {found}"
        if len(found) == count and (not finished or all(r.state in FINISHED_RUN for r in found)):
            return found
        return None

    return await wait_until(check)


async def tis(engine: Engine, dag_id: str, run_id: str) -> dict[str, TaskInstance]:
    return {ti.task_id: ti for ti in await engine.get_task_instances(dag_id, run_id)}


async def wait_ti(
    engine: Engine, dag_id: str, run_id: str, task_id: str, state: TaskState
) -> TaskInstance:
    async def check() -> TaskInstance | None:
        ti = (await tis(engine, dag_id, run_id)).get(task_id)
        return ti if ti is not None and ti.state is state else None

    return await wait_until(check)


async def wait_run_state(engine: Engine, dag_id: str, run_id: str, state: DagRunState) -> DagRun:
    async def check() -> DagRun | None:
        try:
            run = await engine.get_dag_run(dag_id, run_id)
        except DagRunNotFound:
            return None  # not created (committed) yet
        return run if run.state is state else None

    return await wait_until(check)


class Tracker:
    """What `Probe` tasks did, shared by the probes of a test.

    `hold=True` makes every probe wait until `release()` lets it through; `failing` names the
    (task_id, ds) pairs whose attempt raises; `fail_tries` makes attempts up to that try raise.
    """

    def __init__(self, *, hold: bool = False) -> None:
        self.hold = hold
        self.started: list[Key] = []
        self.running: set[Key] = set()
        self.cancelled: list[Key] = []
        self.failing: set[tuple[str, str]] = set()
        self.fail_tries = 0
        self.seen: dict[Key, dict[str, Any]] = {}  # the context values a probe saw
        self._gates: dict[Key, anyio.Event] = {}
        self._released: list[tuple[str | None, str | None]] = []

    def _gate(self, key: Key) -> anyio.Event:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = anyio.Event()
            if any(self._matches(key, *pattern) for pattern in self._released):
                gate.set()
        return gate

    @staticmethod
    def _matches(key: Key, task_id: str | None, run_id: str | None) -> bool:
        return (task_id is None or key[0] == task_id) and (run_id is None or key[1] == run_id)

    def release(self, task_id: str | None = None, run_id: str | None = None) -> None:
        """Let the matching probes through: those held now and those that start later."""
        self._released.append((task_id, run_id))
        for key, gate in self._gates.items():
            if self._matches(key, task_id, run_id):
                gate.set()

    def release_all(self) -> None:
        self.hold = False
        for event in self._gates.values():
            event.set()

    def held(self) -> set[Key]:
        return {k for k in self.running if not self._gate(k).is_set()}

    def started_in(self, run_id: str) -> list[str]:
        return [t for t, r in self.started if r == run_id]


class Probe(BaseOperator):
    """An async task that records itself in its tracker; returns "<task_id>@<ds>#<try>"."""

    def __init__(self, *, tracker: Tracker, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tracker = tracker

    async def execute(self, context: dict[str, Any]) -> Any:
        tracker = self.tracker
        key = (self.task_id, context["run_id"])
        try_number = context["ti"].try_number
        tracker.started.append(key)
        tracker.running.add(key)
        tracker.seen[key] = {"params": dict(context["params"]), "conf": dict(context["conf"])}
        try:
            if tracker.hold:
                await tracker._gate(key).wait()
            if (self.task_id, context["ds"]) in tracker.failing or try_number <= tracker.fail_tries:
                raise RuntimeError(f"{self.task_id} told to fail on try {try_number}")
            return f"{self.task_id}@{context['ds']}#{try_number}"
        except anyio.get_cancelled_exc_class():
            tracker.cancelled.append(key)
            raise
        finally:
            tracker.running.discard(key)


def collect(subscription: Subscription) -> Callable[[], Awaitable[list[Any]]]:
    """Close `subscription` and return every event it buffered (call once the work is done)."""

    async def drain() -> list[Any]:
        subscription.close()
        return [event async for event in subscription]

    return drain


def peak_running_runs(events: Iterable[Any], dag_id: str | None = None) -> int:
    """The most runs that were `running` at once, replaying run state events in order."""
    running: set[str] = set()
    peak = 0
    for event in events:
        if not isinstance(event, DagRunStateChanged):
            continue
        if dag_id is not None and event.dag_id != dag_id:
            continue
        if event.new_state is DagRunState.RUNNING:
            running.add(event.run_id)
        else:
            running.discard(event.run_id)
        peak = max(peak, len(running))
    return peak


def peak_running_tasks(
    events: Iterable[Any], weight: Callable[[TaskStateChanged], int] | None = None
) -> int:
    """The most (weighted) task instances that were `running` at once, replaying events."""
    running: dict[Key, int] = {}
    peak = 0
    for event in events:
        if not isinstance(event, TaskStateChanged):
            continue
        key = (event.task_id, event.run_id)
        if event.new_state is TaskState.RUNNING:
            running[key] = 1 if weight is None else weight(event)
        else:
            running.pop(key, None)
        peak = max(peak, sum(running.values()))
    return peak


def started_runs(events: Iterable[Any]) -> list[str]:
    """run_ids in the order they started running."""
    return [
        e.run_id
        for e in events
        if isinstance(e, DagRunStateChanged) and e.new_state is DagRunState.RUNNING
    ]
