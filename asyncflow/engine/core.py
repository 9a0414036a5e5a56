"""`EngineCore`: what an engine is made of and how it lives — the settings it was given, the
store, the event bus, the scheduler and its schedules, start-up (recovery of what the store
holds), shutdown — and the few helpers the API uses to reach the scheduler's loop. `Engine`
(engine/engine.py) builds the public API on it.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self, TypeVar, cast

import anyio
from anyio import CapacityLimiter

from asyncflow.clock import Clock, SystemClock
from asyncflow.engine import assets, external, recovery, shutdown
from asyncflow.engine.context import DEFAULT_MAX_XCOM_BYTES, EngineForTasks
from asyncflow.engine.dagruns import Schedules
from asyncflow.engine.dagsource import DagSource
from asyncflow.engine.events import EventBus
from asyncflow.engine.live import LiveDag, LiveRun, Plan
from asyncflow.engine.monitor import DEFAULT_THRESHOLD, LoopMonitor
from asyncflow.engine.recovery import past_states, restore_run
from asyncflow.engine.scheduler import Scheduler
from asyncflow.engine.secrets import StoreSecrets
from asyncflow.engine.slots import DEFAULT_PARALLELISM, Slots
from asyncflow.engine.statestore import StoreState
from asyncflow.engine.tasklog import install_capture
from asyncflow.exceptions import (
    DagNotFound,
)
from asyncflow.logs import get_logger
from asyncflow.models.dag import DAG
from asyncflow.models.engine_access import current_engine
from asyncflow.models.mapped import DEFAULT_MAX_MAP_LENGTH
from asyncflow.models.pool import Pool
from asyncflow.models.secrets import current_backend
from asyncflow.models.statestore import current_state_backend
from asyncflow.records import DagRun
from asyncflow.states import DagRunState
from asyncflow.store.base import Store
from asyncflow.store.sqlite import SQLiteStore
from asyncflow.threads import thread_limiter

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine

log = get_logger("asyncflow.engine")

#: the cyclic GC's thresholds while an engine runs (`tune_gc=False` keeps the process's own)
GC_THRESHOLDS = (50_000, 20, 100)
T = TypeVar("T")


class EngineCore:
    """The engine's parts and lifecycle (`Engine` adds the public API)."""

    def __init__(
        self,
        *,
        dags: Iterable[DAG] = (),
        dags_folder: str | Path | None = None,
        database: str | Path = "asyncflow.db",
        parallelism: int = DEFAULT_PARALLELISM,
        thread_slots: int | None = None,
        process_slots: int | None = None,
        pools: Iterable[Pool] = (),
        clock: Clock | None = None,
        durability: Literal["normal", "full"] = "normal",
        run_schedules: bool = True,
        store: Store | None = None,
        dagbag_import_timeout: float = 30.0,
        external_poll_interval: float | None = 1.0,
        logs_folder: str | Path | None = None,
        tune_gc: bool = True,
        max_lost_attempts: int = 3,
        max_xcom_bytes: int = DEFAULT_MAX_XCOM_BYTES,
        max_map_length: int = DEFAULT_MAX_MAP_LENGTH,
        loop_stall_threshold: float | None = DEFAULT_THRESHOLD,
    ) -> None:
        for name, value in (("parallelism", parallelism), ("thread_slots", thread_slots),
                            ("process_slots", process_slots)):  # fmt: skip
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        #: the bounds on task instances at once: all kinds, sync code in threads, subprocesses
        self.slots = Slots(parallelism, thread_slots or 0, process_slots or 0).resolved()
        if max_xcom_bytes < 1:
            raise ValueError(f"max_xcom_bytes must be at least 1, got {max_xcom_bytes}")
        self.max_xcom_bytes = max_xcom_bytes
        if max_map_length < 0:
            raise ValueError(f"max_map_length must be at least 0, got {max_map_length}")
        self.max_map_length = max_map_length  # Airflow's [core] max_map_length
        self.source = DagSource(
            list(dags),
            Path(dags_folder) if dags_folder is not None else None,
            dagbag_import_timeout,
        )
        self.store: Store = store or SQLiteStore(database, durability=durability)
        self.parallelism = parallelism
        self._pools = {p.name: p for p in pools}
        self.clock: Clock = clock or SystemClock()
        self.bus = EventBus()
        self.run_schedules = run_schedules
        in_memory = str(database) == ":memory:"
        self._poll_interval = None if in_memory else external_poll_interval
        self.logs_folder = Path(logs_folder) if logs_folder is not None else None
        self._scheduler: Scheduler | None = None
        self._schedules: Schedules | None = None
        self._assets: assets.AssetScheduling | None = None
        self._tg: anyio.abc.TaskGroup | None = None
        self._closed = False
        self._stopped: bool | None = None  # what stop() answered
        self.tune_gc = tune_gc
        if max_lost_attempts < 1:
            raise ValueError(f"max_lost_attempts must be at least 1, got {max_lost_attempts}")
        #: attempts in a row the engine may lose (crash, kill -9) before the task is failed
        self.max_lost_attempts = max_lost_attempts
        self._gc_thresholds: tuple[int, int, int] | None = None
        #: warns when something holds the event loop (None: not watched)
        self.monitor = LoopMonitor(loop_stall_threshold)

    # -- lifecycle ---------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        if self.tune_gc:
            # Every task instance allocates a few dozen short-lived objects; at CPython's
            # default gen-0 threshold (700) the cyclic GC runs thousands of times a second and
            # rescans every live DAG and run. Measured on a 100,000-task run: 10.0 s -> 6.7 s.
            self._gc_thresholds = gc.get_threshold()
            gc.set_threshold(GC_THRESHOLDS[0], GC_THRESHOLDS[1], GC_THRESHOLDS[2])
        try:
            dags = await self.source.load()
            await self.store.open()
            try:
                await self._start(dags)
            except BaseException:
                self.monitor.stop()
                await self.store.close()
                raise
        except BaseException:
            if self._gc_thresholds is not None:
                gc.set_threshold(*self._gc_thresholds)
                self._gc_thresholds = None
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop (`stop()`, bounded), then end the scheduler and close the store. The store is
        closed even when the scheduler ended on an error, so that no connection thread keeps
        the process alive."""
        try:
            await self.stop()
        finally:
            self._closed = True
            self.monitor.stop()
            if self._scheduler is not None:  # whoever still waits on a run is told
                for run in self._scheduler.mirror.runs.values():
                    for waiter in run.waiters:
                        waiter.set()
            try:
                tg, self._tg = self._tg, None
                if tg is not None:
                    tg.cancel_scope.cancel()
                    await tg.__aexit__(None, None, None)  # raises the scheduler's error, if any
            finally:
                self.bus.close()
                await self.store.close()
                if self._gc_thresholds is not None:
                    gc.set_threshold(*self._gc_thresholds)
                    self._gc_thresholds = None

    async def _start(self, dags: list[DAG]) -> None:
        self.monitor.start()  # before any task can run (recovery, @once)
        store = self.store
        for pool in self._pools.values():
            await store.set_pool(pool.name, pool.slots)
        pools = await store.get_pools()
        dags = self.source.admit(dags, pools)
        if self.source.dagbag is not None:
            await store.replace_import_errors(self.source.error_records(self.clock.now()))
        if self.logs_folder is not None:
            install_capture()
        scheduler = Scheduler(
            store=store,
            bus=self.bus,
            clock=self.clock,
            parallelism=self.parallelism,
            kind_slots=self.slots.by_kind(),
            pools=pools,
            logs_folder=self.logs_folder,
            max_lost_attempts=self.max_lost_attempts,
            max_xcom_bytes=self.max_xcom_bytes,
        )
        mirror = scheduler.mirror
        mirror.max_map_length = scheduler.max_map_length = self.max_map_length
        schedules = Schedules(mirror, enabled=self.run_schedules)
        scheduler.step_hooks.append(schedules)
        self._scheduler, self._schedules = scheduler, schedules
        self._assets = await assets.attach(scheduler, store, enabled=self.run_schedules)
        now = self.clock.now()
        paused = await store.get_paused()
        for dag in dags:
            self._add_dag(dag, paused, now)
            # before the loop runs: set directly (what depends_on_past reads, from the store)
            past = await past_states(store, mirror, dag.dag_id)
            recovery.set_history(
                mirror, dag.dag_id, past, await recovery.successes(store, dag.dag_id)
            )
        for record in await store.get_dag_runs(states=[DagRunState.QUEUED, DagRunState.RUNNING]):
            if record.dag_id in mirror.dags:
                await self._restore(record, now)
        for dag in dags:
            latest = await store.latest_automated_run(dag.dag_id)
            schedules.prime(dag.dag_id, latest, now)
        self._assets.refresh(now)
        limiter = CapacityLimiter(self.slots.thread)
        log.info("engine limits", parallelism=self.slots.parallelism,
                 thread_slots=self.slots.thread, process_slots=self.slots.process)  # fmt: skip

        async def run_scheduler(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            thread_limiter.set(limiter)
            current_backend.set(StoreSecrets(store))  # Variable / Connection in tasks
            current_state_backend.set(StoreState(store, self.clock))  # task/asset state
            current_engine.set(
                EngineForTasks(self._public())
            )  # TriggerDagRunOperator, ExternalTaskSensor
            try:
                await scheduler.run(task_status=task_status)
            except Exception as exc:
                scheduler.crash(exc)
                raise

        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        await tg.start(run_scheduler)
        if self._assets.watchers is not None:
            tg.start_soon(self._assets.watchers.run)
        scheduler.wake()
        await self._sync()  # recovery and start-up changes are committed before we return
        if self._poll_interval is not None:
            tg.start_soon(external.poll, self._public(), self._poll_interval)

    def _public(self) -> Engine:
        """This engine as the API its helpers (external changes, the task handle) work with."""
        return cast("Engine", self)

    def _add_dag(self, dag: DAG, paused: Mapping[str, bool], now: datetime) -> None:
        live_dag = LiveDag(Plan(dag))
        self._require().mirror.add_dag(live_dag, paused.get(dag.dag_id), now)

    async def _load_history(self, dag_id: str) -> None:
        """What depends_on_past and prev_*_success look back at, from the store (the truth)."""
        mirror = self._require().mirror
        past = await past_states(self.store, mirror, dag_id)
        won = await recovery.successes(self.store, dag_id)
        await self._in_loop(lambda now: recovery.set_history(mirror, dag_id, past, won))

    async def _restore(self, record: DagRun, now: datetime) -> LiveRun:
        tis = await self.store.get_task_instances(record.dag_id, record.run_id)
        xcoms = await self.store.get_run_xcoms(record.dag_id, record.run_id)
        deferrals = await self.store.get_deferrals(record.dag_id, record.run_id)
        return restore_run(self._require().mirror, record, tis, xcoms, now, deferrals)

    async def stop(self, *, drain_timeout: float = 0.0, grace: float = 5.0) -> bool:
        """Stop starting work; let running task instances finish for up to `drain_timeout`
        seconds, then interrupt the rest (they cost no try and run again at the next start).

        Every wait is bounded: this returns within `drain_timeout + grace` seconds even when
        no commit succeeds (a full disk) or an attempt ignores its cancellation (a thread).
        Returns True when the final state was committed, False when it could not be within
        `grace`: the store is the truth, and the next start recovers what it holds (attempts
        left `running` are lost work, re-queued). A second call returns the first's answer."""
        scheduler = self._scheduler
        if scheduler is None or self._tg is None:
            return True
        if scheduler.crashed is not None:
            return False
        if self._stopped is not None:
            return self._stopped
        committed = await shutdown.drain(scheduler, drain_timeout=drain_timeout, grace=grace)
        self._stopped = committed
        return committed

    # -- helpers ----------------------------------------------------------------------------------
    def _require(self) -> Scheduler:
        if self._scheduler is None:
            raise RuntimeError("the engine is not running: use `async with Engine(...) as engine`")
        return self._scheduler

    def _live_dag(self, dag_id: str) -> LiveDag:
        live_dag = self._require().mirror.dags.get(dag_id)
        if live_dag is None or live_dag.removed:
            raise DagNotFound(dag_id)
        return live_dag

    async def _in_loop(self, fn: Callable[[datetime], T]) -> T:
        """Run `fn(now)` in the scheduler's loop; returns once its changes are committed."""
        result: T = await self._require().call(fn).get()
        return result

    async def _sync(self) -> None:
        await self._in_loop(lambda now: None)

    async def sync_external(self) -> None:
        """Adopt what another process (the CLI) wrote: runs, requests, pause flags."""
        await external.sync(self._public())

    def _apply_paused(self, flags: Mapping[str, bool], *, write: bool) -> None:
        mirror = self._require().mirror
        assert self._schedules is not None
        for dag_id, is_paused in flags.items():
            mirror.set_paused(dag_id, is_paused, write=write)
            if not is_paused:  # resume from now: catchup=False skips what the pause missed
                self._schedules.resume(dag_id, self.clock.now())
