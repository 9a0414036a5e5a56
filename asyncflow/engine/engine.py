"""`Engine`: the embedding API. Wires store, event bus, scheduler and DAGs into one async
context manager.

    async with Engine(dags=[dag], database="state.db") as engine:
        run = await engine.trigger_dag("tutorial", conf={"k": "v"})
        run = await engine.wait_for_run("tutorial", run.run_id, timeout=60)
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import anyio
from anyio import CapacityLimiter

from asyncflow.clock import Clock, SystemClock
from asyncflow.engine import assets, backfill, commands, external, operations, recovery, shutdown
from asyncflow.engine.context import DEFAULT_MAX_XCOM_BYTES, EngineForTasks
from asyncflow.engine.dagruns import Schedules, manual_run
from asyncflow.engine.dagsource import DagSource, check_dag
from asyncflow.engine.events import EventBus, Subscription
from asyncflow.engine.live import LiveDag, LiveRun, Plan
from asyncflow.engine.monitor import DEFAULT_THRESHOLD, LoopMonitor
from asyncflow.engine.recovery import past_states, restore_run
from asyncflow.engine.scheduler import Scheduler
from asyncflow.engine.secrets import StoreSecrets
from asyncflow.engine.slots import DEFAULT_PARALLELISM, Slots
from asyncflow.engine.statestore import StoreState
from asyncflow.engine.tasklog import install_capture
from asyncflow.exceptions import (
    DagAlreadyExists,
    DagNotFound,
    DagRunAlreadyExists,
    DagRunNotFound,
    RunWaitTimeout,
)
from asyncflow.logs import get_logger
from asyncflow.models import xcom_codec
from asyncflow.models.dag import DAG
from asyncflow.models.engine_access import current_engine
from asyncflow.models.mapped import DEFAULT_MAX_MAP_LENGTH
from asyncflow.models.pool import Pool
from asyncflow.models.secrets import current_backend
from asyncflow.models.statestore import current_state_backend
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import RUN_FINISHED, DagRunState, TaskState
from asyncflow.store.base import Store
from asyncflow.store.sqlite import SQLiteStore
from asyncflow.threads import thread_limiter

log = get_logger("asyncflow.engine")

#: the cyclic GC's thresholds while an engine runs (`tune_gc=False` keeps the process's own)
GC_THRESHOLDS = (50_000, 20, 100)
T = TypeVar("T")


class Engine:
    """One scheduler, one worker pool, one store: the whole of asyncflow in a context manager."""

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
    async def __aenter__(self) -> Engine:
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
            current_engine.set(EngineForTasks(self))  # TriggerDagRunOperator, ExternalTaskSensor
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
            tg.start_soon(external.poll, self, self._poll_interval)

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
        await external.sync(self)

    def _apply_paused(self, flags: Mapping[str, bool], *, write: bool) -> None:
        mirror = self._require().mirror
        assert self._schedules is not None
        for dag_id, is_paused in flags.items():
            mirror.set_paused(dag_id, is_paused, write=write)
            if not is_paused:  # resume from now: catchup=False skips what the pause missed
                self._schedules.resume(dag_id, self.clock.now())

    # -- the API --------------------------------------------------------------------------------
    @property
    def import_errors(self) -> dict[str, str]:
        """DAG file -> why it has no DAG running (a failed import, a DAG that may not run, or
        one whose schedule failed at run time)."""
        errors = self.source.import_errors()
        if self._scheduler is not None:
            for dag_id, live in self._scheduler.mirror.dags.items():
                if live.error is not None:
                    errors.setdefault(live.dag.fileloc or f"<DAG {dag_id}>", live.error)
        return errors

    @property
    def dags(self) -> dict[str, DAG]:
        """The DAGs being scheduled (not those whose file was removed)."""
        dags = self._require().mirror.dags
        return {d: live.dag for d, live in dags.items() if not live.removed}

    async def reload_dags(self) -> Any:
        """Re-scan the DAG folder: schedule added DAGs, replace changed ones (runs in flight
        finish with the DAG they started with), stop scheduling removed or broken ones (their
        history stays). Returns the DagBag's `BagChanges`, or None without a DAG folder."""
        scheduler = self._require()
        refresh = await self.source.refresh(scheduler.mirror.pools)
        if refresh is None:
            return None
        fresh, changes = refresh.fresh, refresh.changes
        await self._install(fresh, removed=changes.removed)
        if refresh.errors_changed:
            await self.store.replace_import_errors(self.source.error_records(self.clock.now()))
        for dag_id in changes.added:
            log.info("DAG added", dag_id=dag_id)
        for dag_id in changes.removed:
            log.info("DAG removed: no new runs; its history stays", dag_id=dag_id)
        return changes

    async def _install(self, fresh: Mapping[str, DAG], *, removed: Iterable[str] = ()) -> None:
        """Schedule `fresh` DAGs (new, or replacing a loaded one: runs in flight finish with the
        DAG they started with) and stop scheduling `removed` ones (their history stays)."""
        latest = {d: await self.store.latest_automated_run(d) for d in fresh}
        paused = await self.store.get_paused()
        schedules = self._schedules
        assert schedules is not None
        mirror = self._require().mirror
        gone = list(removed)

        def apply(now: datetime) -> None:
            for dag_id, dag in fresh.items():
                if dag_id not in mirror.dags:
                    self._add_dag(dag, paused, now)
                else:
                    mirror.replace_dag(dag_id, Plan(dag))
                schedules.prime(dag_id, latest[dag_id], now)
            for dag_id in gone:
                mirror.remove_dag(dag_id)
            if self._assets is not None:
                self._assets.refresh(now)

        await self._in_loop(apply)
        for dag_id in fresh:
            await self._load_history(dag_id)

    async def add_dag(self, dag: DAG) -> None:
        """Schedule a DAG defined in code while the engine runs. It is validated as at start;
        a DAG whose dag_id is already scheduled is `DagAlreadyExists` (use `replace_dag`)."""
        if dag.dag_id in self.dags:
            raise DagAlreadyExists(dag.dag_id)
        await self.replace_dag(dag)

    async def replace_dag(self, dag: DAG) -> None:
        """Schedule `dag`, replacing the loaded DAG of the same dag_id if any: new runs use it,
        runs in flight finish with the DAG they started with."""
        check_dag(dag, self._require().mirror.pools)
        await self._install({dag.dag_id: dag})
        log.info("DAG added", dag_id=dag.dag_id)

    async def remove_dag(self, dag_id: str) -> None:
        """Stop scheduling a DAG: no new runs, and its active runs are cancelled; its history
        stays in the store."""
        self._live_dag(dag_id)
        for run in list(self._require().mirror.runs.values()):
            if run.dag_id == dag_id and run.record.state not in RUN_FINISHED:
                await self.cancel_run(dag_id, run.run_id)
        await self._install({}, removed=[dag_id])

    async def cancel_run(self, dag_id: str, run_id: str) -> DagRun:
        """Stop a queued or running run: running attempts are stopped and failed, task
        instances not yet finished are skipped, the run is failed (Airflow's "mark failed").
        Returns the run as committed; a finished run is returned as it is."""
        self._live_dag(dag_id)
        mirror = self._require().mirror
        live = mirror.runs.get((dag_id, run_id))
        if live is None:
            return await self.get_dag_run(dag_id, run_id)
        await self._in_loop(lambda now: mirror.cancel_run(live, now))
        return live.record

    async def ping(self) -> None:
        """One round trip through the scheduler's loop: returns once it has run a step and
        committed it. The daemon's watchdog pings only while this answers."""
        await self._sync()

    def get_dag(self, dag_id: str) -> DAG:
        return self._live_dag(dag_id).dag

    async def trigger_dag(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
    ) -> DagRun:
        """Create a manual run; it starts as soon as max_active_runs allows. Returns the run as
        committed: `queued`, or already `running` when it could start in the same step."""
        live_dag = self._live_dag(dag_id)
        record = manual_run(
            live_dag.dag, now=self.clock.now(), conf=conf, logical_date=logical_date,
            run_id=run_id,
        )  # fmt: skip
        await commands.check_new_run(self.store, record)
        scheduler = self._require()

        mirror = scheduler.mirror

        def add(now: datetime) -> LiveRun:
            for run in mirror.runs.values():
                if run.dag_id == dag_id and (
                    run.run_id == record.run_id or run.record.logical_date == record.logical_date
                ):
                    raise DagRunAlreadyExists(dag_id, f"run_id {record.run_id!r}")
            return mirror.add_run(dag_id, record, now)

        live = await self._in_loop(add)
        if live.conflict:
            raise DagRunAlreadyExists(dag_id, f"run_id {record.run_id!r} or its logical_date")
        return live.record

    async def wait_for_run(
        self,
        dag_id: str,
        run_id: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the documented embedding API
    ) -> DagRun:
        """Wait until the run has finished (success or failed) and return it.
        Raises `RunWaitTimeout` (a TimeoutError naming the DAG, run and its state) after
        `timeout` seconds."""
        try:
            with anyio.fail_after(timeout):
                return await self._wait_for_run(dag_id, run_id)
        except TimeoutError:
            record = await self.store.get_dag_run(dag_id, run_id)
            state = record.state.value if record is not None else "unknown"
            raise RunWaitTimeout(dag_id, run_id, state, timeout or 0.0) from None

    async def _wait_for_run(self, dag_id: str, run_id: str) -> DagRun:
        scheduler = self._require()
        key = (dag_id, run_id)
        while True:
            if scheduler.crashed is not None:
                raise RuntimeError("the scheduler has stopped") from scheduler.crashed
            if self._closed:
                raise RuntimeError(
                    f"the engine stopped before run {run_id!r} of DAG {dag_id!r} finished; "
                    "it resumes when an engine opens this database again"
                )
            live = scheduler.mirror.runs.get(key)
            if live is not None:
                waiter = anyio.Event()
                live.waiters.append(waiter)
                await waiter.wait()
                continue
            record = await self.store.get_dag_run(dag_id, run_id)
            if record is None:
                raise DagRunNotFound(dag_id, run_id)
            if record.state in RUN_FINISHED:
                return record
            await anyio.sleep(0.05)  # written by another process; not adopted yet

    async def get_dag_run(self, dag_id: str, run_id: str) -> DagRun:
        record = await self.store.get_dag_run(dag_id, run_id)
        if record is None:
            raise DagRunNotFound(dag_id, run_id)
        return record

    async def get_dag_runs(self, dag_id: str) -> list[DagRun]:
        """The DAG's runs, newest logical_date first."""
        if dag_id not in self._require().mirror.dags:
            raise DagNotFound(dag_id)
        return await self.store.get_dag_runs(dag_id)

    async def get_task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        await self.get_dag_run(dag_id, run_id)
        return await self.store.get_task_instances(dag_id, run_id)

    async def get_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = RETURN_KEY, map_index: int = -1
    ) -> Any:
        """The XCom value (None when the task pushed none)."""
        await self.get_dag_run(dag_id, run_id)
        raw = await self.store.get_xcom(dag_id, run_id, task_id, key, map_index)
        return None if raw is None else xcom_codec.loads(raw)

    def subscribe(self, *, buffer: int = 10_000) -> Subscription:
        """Events after every committed state change, as an async iterator with a bounded
        buffer; when it overflows the subscriber reads `EventsMissed(count)`."""
        return self.bus.subscribe(buffer)

    async def pause_dag(self, dag_id: str) -> None:
        self._live_dag(dag_id)
        await self._in_loop(lambda now: self._apply_paused({dag_id: True}, write=True))

    async def unpause_dag(self, dag_id: str) -> None:
        self._live_dag(dag_id)
        await self._in_loop(lambda now: self._apply_paused({dag_id: False}, write=True))

    async def _changeable_run(self, dag_id: str, run_id: str) -> LiveRun:
        """The run under the scheduler's control: active, or a finished one loaded back."""
        self._live_dag(dag_id)
        mirror = self._require().mirror
        live = mirror.runs.get((dag_id, run_id))
        if live is not None:
            return live
        record = await self.get_dag_run(dag_id, run_id)
        tis = await self.store.get_task_instances(dag_id, run_id)
        xcoms = await self.store.get_run_xcoms(dag_id, run_id)
        return await self._in_loop(
            lambda now: operations.load_finished_run(mirror, record, tis, xcoms)
        )

    async def clear_task_instances(
        self,
        dag_id: str,
        run_id: str,
        task_ids: Iterable[str],
        *,
        downstream: bool = False,
        upstream: bool = False,
        only_failed: bool = False,
        map_index: int | None = None,
    ) -> list[str]:
        """Re-run task instances (Airflow's clear): they go back to `none`, their XComs are
        dropped, and a finished run is reopened; of a mapped task, every instance or only
        `map_index`. Returns the task_ids cleared."""
        dag = self._live_dag(dag_id).dag
        chosen = operations.relatives(dag, task_ids, downstream=downstream, upstream=upstream)
        run = await self._changeable_run(dag_id, run_id)
        mirror = self._require().mirror
        return await self._in_loop(lambda now: operations.clear(
            mirror, run, chosen, only_failed=only_failed, now=now, map_index=map_index
        ))  # fmt: skip

    async def set_task_instance_state(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        state: TaskState | str,
        *,
        downstream: bool = False,
        upstream: bool = False,
        map_index: int | None = None,
    ) -> list[str]:
        """Mark task instances `success`, `failed` or `skipped` by hand (a running attempt is
        stopped; of a mapped task, every instance or only `map_index`). Downstream tasks that
        become ready then run. Returns the task_ids changed."""
        dag = self._live_dag(dag_id).dag
        chosen = operations.relatives(dag, [task_id], downstream=downstream, upstream=upstream)
        run = await self._changeable_run(dag_id, run_id)
        mirror = self._require().mirror
        new = TaskState(state)
        return await self._in_loop(
            lambda now: operations.mark(mirror, run, chosen, new, now, map_index=map_index)
        )

    async def backfill(
        self,
        dag_id: str,
        start_date: datetime,
        end_date: datetime,
        *,
        reprocess: Literal["none", "failed", "completed"] = "none",
        max_active_runs: int | None = None,
    ) -> list[DagRun]:
        """Run every schedule interval whose logical date lies in [start_date, end_date], oldest
        first, as `backfill` runs; waits for them and returns them. Existing runs are skipped,
        or re-run when `reprocess` says so ("failed": failed runs' failed tasks; "completed":
        every finished run, all tasks). Progress shows as events on `subscribe()`."""
        return await backfill.run(self, dag_id, start_date, end_date, reprocess=reprocess,
                                  max_active_runs=max_active_runs)  # fmt: skip

    def is_paused(self, dag_id: str) -> bool:
        return self._live_dag(dag_id).paused

    def statistics(self) -> dict[str, Any]:
        scheduler = self._require()
        return {**scheduler.statistics(), **self.bus.statistics(), **self.monitor.statistics()}
