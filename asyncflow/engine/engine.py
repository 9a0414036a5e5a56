"""`Engine`: the embedding API. Wires store, event bus, scheduler and DAGs into one async
context manager.

    async with Engine(dags=[dag], database="state.db") as engine:
        run = await engine.trigger_dag("tutorial", conf={"k": "v"})
        run = await engine.wait_for_run("tutorial", run.run_id, timeout=60)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, Literal

import anyio

from asyncflow.engine import backfill, commands, operations
from asyncflow.engine.core import EngineCore
from asyncflow.engine.dagruns import manual_run
from asyncflow.engine.dagsource import check_dag
from asyncflow.engine.events import Subscription
from asyncflow.engine.live import LiveRun, Plan
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
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.records import DagRun, TaskInstance
from asyncflow.states import RUN_FINISHED, TaskState

log = get_logger("asyncflow.engine")


class Engine(EngineCore):
    """One scheduler, one worker pool, one store: the whole of asyncflow in a context manager."""

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
