"""`Mirror`: the one owner of everything the scheduler holds in memory — loaded DAGs, active runs
and their task instances, slots and the queues waiting for them, timers, the current burst.

Every change is a named transition (`start_attempt`, `finish_attempt`, `settle`, `clear`,
`mark`, `time_out`, `requeue_lost`, ...). Each checks the state table (`states.py`), marks the
burst so that the change is committed, and records the event that is published after the commit.
Operations, recovery, schedules and the engine's commands call these methods; nobody else
writes a field of a `LiveDag`, `LiveRun` or `LiveTI`.

The hot path (a finished attempt deciding its downstream and dispatching the next) lives here
too, so that it stays a few method calls deep.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Any

from asyncflow.engine import limits
from asyncflow.engine.deferrals import Deferrals
from asyncflow.engine.dispatch import QUEUED, RUNNING, SCHEDULED, Blocker, later
from asyncflow.engine.events import DagRunStateChanged
from asyncflow.engine.live import LiveDag, LiveRun, LiveTI, Plan
from asyncflow.engine.mapping import Mapping
from asyncflow.engine.planner import decide
from asyncflow.logs import get_logger
from asyncflow.records import DagRun, DagRunType, TaskInstance
from asyncflow.states import FINISHED, RUN_FINISHED, DagRunState, TaskState
from asyncflow.store.base import DagRow, TIRow, XComRow, iso

log = get_logger("asyncflow.scheduler")

NONE = TaskState.NONE
LOST = "lost: the engine stopped (crash, kill or power loss) while this attempt ran"


class Mirror(Deferrals, Mapping):
    """The one owner of scheduling state: DAGs, runs and task instances, through named
    transitions (the task-instance half is `Dispatch`, deferred tasks `Deferrals`, mapped
    tasks and teardowns `Mapping`)."""

    # -- DAGs ---------------------------------------------------------------------------------
    def add_dag(self, live_dag: LiveDag, paused: bool | None, now: datetime) -> None:
        """Start scheduling a DAG; `paused` None keeps the stored flag (or its default)."""
        dag = live_dag.dag
        if paused is None:
            paused = bool(dag.is_paused_upon_creation)
            self.burst.dag_rows.append(DagRow(dag.dag_id, paused, dag.fileloc, now.isoformat()))
        else:
            self.burst.dag_rows.append(DagRow(dag.dag_id, None, dag.fileloc, now.isoformat()))
        live_dag.paused = paused
        self.dags[dag.dag_id] = live_dag

    def replace_dag(self, dag_id: str, plan: Plan) -> None:
        """A changed DAG file: new runs use the new DAG; runs in flight keep theirs."""
        live_dag = self.dags[dag_id]
        live_dag.plan = plan
        live_dag.removed = False
        live_dag.error = None

    def remove_dag(self, dag_id: str) -> None:
        if dag_id in self.dags:
            self.dags[dag_id].removed = True

    def set_paused(self, dag_id: str, paused: bool, *, write: bool) -> None:
        """Paused: no new scheduled runs, and queued runs (triggered ones too) wait, as in
        Airflow; running runs go on. Unpaused: its queued runs may start."""
        self.dags[dag_id].paused = paused
        if not paused:
            self._startable.add(dag_id)
        if write:
            self.burst.dag_rows.append(DagRow(dag_id, paused, None, None))

    def dag_failed(self, dag_id: str, error: str) -> None:
        """One of the DAG's values failed at run time (its timetable, say): it creates no
        more runs until its file changes; the error is shown as the DAG's import error."""
        live_dag = self.dags[dag_id]
        if live_dag.error is None:
            log.error("DAG cannot be scheduled", dag_id=dag_id, error=error)
        live_dag.error = error

    def set_pools(self, pools: dict[str, int]) -> None:
        """Pools as the store now holds them (created, resized, deleted while running): task
        instances waiting on a pool that grew are checked again."""
        for name in set(self.pools) | set(pools):
            if pools.get(name, 0) > self.pools.get(name, 0):
                self.unblock(Blocker("pool", "", name))
        self.pools = dict(pools)

    def set_successes(self, dag_id: str, runs: list[DagRun]) -> None:
        """The DAG's successful runs as the store holds them (start-up, reload)."""
        live_dag = self.dags[dag_id]
        for record in runs:
            live_dag.remember_success(record)

    def set_backfill_limit(self, dag_id: str, limit: int | None) -> None:
        self.dags[dag_id].backfill_limit = limit

    def set_history(self, dag_id: str, past: list[Any]) -> None:
        """What depends_on_past looks back at, as the store holds it (start-up, reload)."""
        self.dags[dag_id].past = sorted(past, key=lambda p: p.logical_date)
        self.unblock(Blocker("past", dag_id))

    def drain(self) -> None:
        self.draining = True

    # -- runs ---------------------------------------------------------------------------------
    def add_run(self, dag_id: str, record: DagRun, now: datetime) -> LiveRun:
        """A new run, queued; inserted with its task instances in this burst's transaction."""
        live_dag = self.dags[dag_id]
        run = LiveRun(live_dag.plan, record)
        self.runs[(record.dag_id, record.run_id)] = run
        self.burst.add_run(run)
        self.burst.events.append(
            DagRunStateChanged(record.dag_id, record.run_id, None, record.state, now)
        )
        if live_dag.windows:  # tasks whose start_date/end_date exclude this run are removed
            logical = record.logical_date
            for task_id, (start, end) in live_dag.windows.items():
                if (start and logical < start) or (end and logical > end):
                    self._set(run.tis[task_id], TaskState.REMOVED, now)
            run.recount()
        self._queue_run(live_dag, run)
        return run

    def adopt_run(
        self, dag_id: str, record: DagRun, stored: list[TaskInstance], xcoms: list[XComRow]
    ) -> LiveRun:
        """The in-memory mirror of a stored run: task instances loaded, tasks added to the DAG
        since inserted, tasks gone from it marked removed."""
        live_dag = self.dags[dag_id]
        run = LiveRun(live_dag.plan, record)
        by_id: dict[str, list[TaskInstance]] = {}
        for ti in stored:
            by_id.setdefault(ti.task_id, []).append(ti)
        for task_id, live in run.tis.items():
            found = by_id.pop(task_id, None)
            if found is None:  # a task added to the DAG since the run was created
                self.burst.ti_inserts.append(live.row())
            elif found[0].map_index >= 0 or len(found) > 1:  # an expanded mapped task
                self.adopt_instances(run, task_id, found)
            else:
                live.load(found[0])
        for gone in (ti for tis in by_id.values() for ti in tis):  # tasks no longer in the DAG
            if gone.state not in FINISHED:
                self.burst.ti_rows.append(TIRow(
                    TaskState.REMOVED.value, gone.try_number, gone.max_tries,
                    iso(gone.start_date), iso(gone.end_date), gone.duration, gone.error, None,
                    gone.lost_count, gone.dag_id, gone.run_id, gone.task_id, gone.map_index,
                ))  # fmt: skip
        run.xcoms = {(x.task_id, x.map_index, x.key): x.value for x in xcoms}
        run.recount()
        self.runs[(record.dag_id, record.run_id)] = run
        return run

    def resume_run(self, run: LiveRun, now: datetime) -> None:
        """An adopted unfinished run goes back under control: attempts the store holds as
        queued/running were lost with the engine that ran them and run again; timers of
        waiting task instances are re-armed; running runs are evaluated, queued ones wait."""
        live_dag = self.dags[run.dag_id]
        running = run.record.state is DagRunState.RUNNING
        if running:
            live_dag.running_runs += 1
        for ti in list(run.instances()):
            if ti.state in (QUEUED, RUNNING):
                self.requeue_lost(ti, now)
            elif ti.state in (TaskState.UP_FOR_RETRY, TaskState.UP_FOR_RESCHEDULE):
                self.at(ti.next_try_at or now, partial(self.retry_due, ti, ti.try_number))
            elif ti.state is TaskState.DEFERRED:
                self.rearm(ti, now)
        if running:
            self.evaluate_run(run, now)
        else:
            self._queue_run(live_dag, run)

    def _queue_run(self, live_dag: LiveDag, run: LiveRun) -> None:
        """`run` waits (queued, oldest first) for a place under max_active_runs."""
        live_dag.queued.append(run)
        live_dag.queued.sort(key=lambda r: r.record.logical_date)
        self._startable.add(live_dag.dag.dag_id)

    def drop_conflicting_run(self, dag_id: str, run_id: str) -> None:
        """A new run's insert found its run_id or logical_date taken: keep the stored one."""
        run = self.runs.pop((dag_id, run_id), None)
        if run is None:
            return
        run.conflict = True
        live_dag = self.dags[dag_id]
        if run in live_dag.queued:
            live_dag.queued.remove(run)
        log.warning("run already existed in the store; kept the stored one",
                    dag_id=dag_id, run_id=run_id)  # fmt: skip

    def start_queued_runs(self, now: datetime) -> None:
        if not self._startable:
            return
        startable, self._startable = self._startable, set()
        for dag_id in startable:
            live_dag = self.dags.get(dag_id)
            if live_dag is None or live_dag.paused:
                continue
            for run in list(live_dag.queued):
                if live_dag.running_runs >= live_dag.dag.max_active_runs:
                    break
                if run.record.run_type is DagRunType.BACKFILL and not limits.backfill_room(
                    self.runs, live_dag
                ):
                    continue
                live_dag.queued.remove(run)
                live_dag.running_runs += 1
                self._set_run(run, DagRunState.RUNNING, now, start_date=now)
                timeout = run.dag.dagrun_timeout
                if timeout is not None:
                    self.at(later(now, timeout), partial(self.time_out, run))
                self.evaluate_run(run, now)

    def evaluate_run(self, run: LiveRun, now: datetime) -> None:
        """Decide every undecided task instance of a running run (its start, or after a clear)."""
        for ti in list(run.instances()):
            if ti.state is NONE:
                self._evaluate(ti, now)
            elif ti.state is SCHEDULED:
                self._push_ready(ti)
        if run.unfinished == 0 and run.record.state is DagRunState.RUNNING:
            self._finish_run(run, now)

    def _evaluate(self, ti: LiveTI, now: datetime) -> None:
        decision = decide(ti.task.trigger_rule, ti.up, len(ti.task.upstream_task_ids))
        settled: list[LiveTI] = []
        if decision is SCHEDULED:
            self._make_ready(ti, now, settled)
        elif decision is not None:
            self._set(ti, decision, now)
            settled.append(ti)
        self._propagate(settled, now)

    def _finish_run(self, run: LiveRun, now: datetime) -> None:
        state = run.outcome()
        self._set_run(run, state, now, end_date=now)
        self._release_run(run)
        live_dag = self.dags.get(run.dag_id)
        if live_dag is not None and live_dag.remember_finished(run):
            self.unblock(Blocker("past", run.dag_id))
        if live_dag is not None and state is DagRunState.SUCCESS:
            live_dag.remember_success(run.record)
        failed = state is DagRunState.FAILED
        callbacks = run.dag.on_failure_callback if failed else run.dag.on_success_callback
        if callbacks is not None:
            try:
                context = self._context_of(run)
            except Exception as exc:  # the run's own values: its callbacks cannot run
                log.error("DAG callbacks skipped: the run's context failed", dag_id=run.dag_id,
                          run_id=run.run_id, error=repr(exc))  # fmt: skip
                return
            context["reason"] = "task_failure" if failed else "success"
            where = f"DAG {run.dag_id} run {run.run_id}"
            self.burst.callbacks.append(([callbacks], context, where))

    def _release_run(self, run: LiveRun) -> None:
        """A run finished: free its place under max_active_runs; at commit, wake its waiters."""
        live_dag = self.dags.get(run.dag_id)
        if live_dag is not None:
            live_dag.running_runs -= 1
        self.released_dags.add(run.dag_id)
        self._startable.add(run.dag_id)
        self._forget_after_commit(run)

    def _forget_after_commit(self, run: LiveRun) -> None:
        key = (run.dag_id, run.run_id)

        def done() -> None:
            if self.runs.get(key) is run and run.record.state in RUN_FINISHED:
                del self.runs[key]
            waiters, run.waiters = run.waiters, []
            for waiter in waiters:
                waiter.set()

        self.burst.after.append(done)

    def time_out(self, run: LiveRun, now: datetime) -> None:
        """dagrun_timeout passed: the run fails; unfinished task instances are stopped and
        marked skipped (as Airflow does)."""
        if self.runs.get(run.key) is run:
            self._stop_run(run, f"the run exceeded its dagrun_timeout of {run.dag.dagrun_timeout}",
                           "dagrun_timeout", now)  # fmt: skip

    def cancel_run(self, run: LiveRun, now: datetime) -> None:
        """Stopped by hand (Airflow's "mark run failed"): running attempts are stopped and
        failed, the other unfinished task instances skipped, the run failed."""
        self._stop_run(run, "the run was cancelled", "run cancelled", now, running=TaskState.FAILED)

    def _stop_run(self, run: LiveRun, error: str, reason: str, now: datetime, *,
                  running: TaskState = TaskState.SKIPPED) -> None:  # fmt: skip
        if run.record.state in RUN_FINISHED:
            return
        for ti in run.instances():
            if ti.state in FINISHED:
                continue
            was_running = ti.state is RUNNING
            if was_running:
                self.cancel(ti, reason)
            ti.error, ti.end_date = error, now
            self._set(ti, running if was_running else TaskState.SKIPPED, now)
        run.unfinished = 0
        self._close_run(run, now)

    def _close_run(self, run: LiveRun, now: datetime) -> None:
        """Fail a run whose task instances are all finished, queued or running."""
        live_dag = self.dags[run.dag_id]
        if run in live_dag.queued:
            live_dag.queued.remove(run)
            self._set_run(run, DagRunState.FAILED, now, end_date=now)
            self._forget_after_commit(run)
        else:
            self._set_run(run, DagRunState.FAILED, now, end_date=now)
            self._release_run(run)

    def fail_run(self, run: LiveRun, error: str, now: datetime) -> None:
        """Containment: one of the run's own values failed inside the loop. The run fails
        with the error on its unfinished task instances; nothing else is touched."""
        log.error("run failed: one of its values cannot be evaluated", dag_id=run.dag_id,
                  run_id=run.run_id, error=error)  # fmt: skip
        if run.record.state in RUN_FINISHED:
            return
        for ti in run.instances():
            if ti.state in FINISHED:
                continue
            if ti.state is RUNNING:
                self.cancel(ti, error)
            ti.error, ti.end_date = error, now
            self._set(ti, TaskState.FAILED, now)
        run.unfinished = 0
        self._close_run(run, now)

    # -- changes by hand ------------------------------------------------------------------------
    def clear(self, ti: LiveTI, now: datetime) -> None:
        """Back to `none` (Airflow's clear): it runs again, with a fresh set of tries."""
        if ti.state is RUNNING:
            self.cancel(ti, "cleared while running")
        self._set(ti, NONE, now)
        ti.max_tries = ti.try_number + ti.task.retries
        ti.start_date = ti.end_date = ti.duration = ti.error = ti.next_try_at = None
        ti.lost = 0
        self._drop_xcoms(ti)

    def mark(self, ti: LiveTI, state: TaskState, now: datetime) -> None:
        """Set by hand to `success`, `failed` or `skipped` (a running attempt is stopped)."""
        if ti.state is RUNNING:
            self.cancel(ti, f"marked {state.value} by hand")
        self._set(ti, state, now)
        ti.end_date = ti.end_date or now
        ti.next_try_at = None

    def reopen(self, run: LiveRun, now: datetime) -> None:
        """After a change by hand: recount, then run what became ready, or settle the run."""
        run.recount()
        state = run.record.state
        if state is DagRunState.RUNNING:
            self.evaluate_run(run, now)
        elif state is DagRunState.QUEUED:
            return
        elif run.unfinished:  # a finished run with work to do again
            self._set_run(run, DagRunState.QUEUED, now, end_date=None, queued_at=now)
            self._queue_run(self.dags[run.dag_id], run)
        else:  # still finished: its state follows its leaves again
            final = run.outcome()
            if final is not state:
                self._set_run(run, final, now, end_date=now)
            live_dag = self.dags.get(run.dag_id)
            if live_dag is not None and live_dag.remember_finished(run):
                self.unblock(Blocker("past", run.dag_id))
            self._forget_after_commit(run)

    def requeue_lost(self, ti: LiveTI, now: datetime) -> None:
        """Recovery: the store says `ti` was queued or running, but the engine that ran it is
        gone. The attempt costs no try; lost `max_lost_attempts` times in a row, it fails as
        the likely cause."""
        ti.lost += 1
        ti.end_date = now
        if ti.lost >= self.max_lost_attempts:
            ti.error = (
                f"lost {ti.lost} times in a row: the engine stopped every time this task ran "
                "(it may crash or exhaust the machine); fix it, then clear it to run again"
            )
            self._set(ti, TaskState.FAILED, now)
            self._propagate([ti], now)
            return
        ti.error = LOST
        if not ti.resuming:  # a resumed deferral goes on with the same try
            ti.try_number = max(0, ti.try_number - 1)
        self._set(ti, SCHEDULED, now)  # evaluate_run puts it in the ready queue
