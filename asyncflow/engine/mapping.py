"""The mirror's transitions for mapped tasks and teardowns: the task-instance decisions that
are not one task instance's trigger rule alone.

* **Expansion.** A mapped task has one task instance (`map_index` -1) until its upstream are
  done and it would be scheduled; then the number of its instances is decided from what it
  maps over: none makes it `skipped` (as Airflow), n makes the first one `map_index` 0 and adds
  1..n-1. The instances share one upstream tally (they have the same upstream), and each
  downstream task counts n - 1 more upstream instances (`UpstreamCounts.extra`), so trigger
  rules downstream count every instance, as in Airflow.
* **Teardowns** (`ALL_DONE_SETUP_SUCCESS`): once their upstream are done, they run when at least
  one of their setups succeeded; `skipped` when all setups were skipped, else
  `upstream_failed`.

Unmapped DAGs never reach this module: `Dispatch._make_ready` calls `_ready_hook` only for
tasks that are mapped or teardowns.
"""

from __future__ import annotations

from datetime import datetime

from asyncflow.engine.context import RuntimeTaskInstance, task_context
from asyncflow.engine.dispatch import NONE, SCHEDULED, Dispatch
from asyncflow.engine.live import LiveRun, LiveTI
from asyncflow.engine.planner import UpstreamCounts, decide
from asyncflow.models.baseoperator import BaseOperator
from asyncflow.models.mapped import DEFAULT_MAX_MAP_LENGTH
from asyncflow.records import TaskInstance
from asyncflow.states import TaskState
from asyncflow.store.base import TIKey


class Mapping(Dispatch):
    #: the most instances a mapped task may have (Airflow's [core] max_map_length)
    max_map_length = DEFAULT_MAX_MAP_LENGTH

    def _ready_hook(self, ti: LiveTI, now: datetime, settled: list[LiveTI]) -> bool:
        """`ti` (mapped, or a teardown) is about to be scheduled: True when this decided it."""
        task = ti.task
        if task.is_teardown and self._teardown_blocked(ti, now, settled):
            return True
        if task.is_mapped:
            return self._expand(ti, task, now, settled)
        return False

    # -- teardowns -------------------------------------------------------------------------
    def _teardown_blocked(self, ti: LiveTI, now: datetime, settled: list[LiveTI]) -> bool:
        run = ti.run
        dag = run.dag
        setups = [
            s
            for up in ti.task.upstream_task_ids
            if dag.task_dict[up].is_setup
            for s in run.instances_of(up)
        ]
        if not setups:
            return False
        states = [s.state for s in setups]
        if all(state is TaskState.SKIPPED for state in states):
            self._set(ti, TaskState.SKIPPED, now)
        elif TaskState.SUCCESS not in states:
            self._set(ti, TaskState.UPSTREAM_FAILED, now)
        else:
            return False
        ti.end_date = now
        settled.append(ti)
        return True

    # -- expansion -------------------------------------------------------------------------
    def _expand(self, ti: LiveTI, task: BaseOperator, now: datetime,
                settled: list[LiveTI]) -> bool:  # fmt: skip
        run = ti.run
        old = run.mapped.get(task.task_id)
        if old is not None and any(i.state is not NONE for i in old):
            return False  # one instance cleared: it runs again as it is
        instances = old if old is not None else [ti]
        try:
            length = self._map_length(run, task)
        except Exception as exc:  # the task's own values: it fails alone
            error = f"cannot expand mapped task {task.task_id!r}: {exc}"
            for inst in instances:
                inst.error, inst.end_date = error, now
                self._set(inst, TaskState.FAILED, now)
                settled.append(inst)
            return True
        first = instances[0]
        if length == 0:  # nothing to map over: skipped, as in Airflow
            for inst in instances[1:]:
                self._set(inst, TaskState.REMOVED, now)
                settled.append(inst)
            first.end_date = now
            self._set(first, TaskState.SKIPPED, now)
            settled.append(first)
            return True
        burst = self.burst
        stored = not run.is_new
        if first.map_index < 0:
            if stored:
                burst.ti_deletes.append(TIKey(run.dag_id, run.run_id, task.task_id, -1))
            first.map_index = 0
            if stored:
                burst.ti_inserts.append(first.row())
        added = 0
        while len(instances) < length:
            inst = LiveTI(run, task, first.priority, first.kind)
            inst.map_index = len(instances)
            inst.up = first.up
            inst.max_tries = first.max_tries
            instances.append(inst)
            added += 1
            if stored:
                burst.ti_inserts.append(inst.row())
        run.mapped[task.task_id] = instances
        run.unfinished += added
        if added:
            for down in run.downstream[task.task_id]:
                run.tis[down].up.extra += added
        for inst in instances[length:]:  # a new expansion with fewer items
            self._set(inst, TaskState.REMOVED, now)
            settled.append(inst)
        same = _same_index_upstream(task)
        for inst in instances[:length]:
            decision = self._instance_decision(inst, same) if same else SCHEDULED
            if decision is SCHEDULED:
                self._set(inst, SCHEDULED, now)
                self._push_ready(inst)
            else:
                inst.end_date = now
                self._set(inst, decision, now)
                settled.append(inst)
        return True

    # -- mapped task groups ----------------------------------------------------------------
    def _group_decision(self, ti: LiveTI, decision: TaskState) -> TaskState | None:
        """A task of a mapped group with upstream in the same group is decided per map index
        (`_instance_decision`), so it waits until every upstream instance is done."""
        if not _same_index_upstream(ti.task):
            return decision
        total = len(ti.task.upstream_task_ids) + ti.up.extra
        return SCHEDULED if ti.up.done >= total else None

    def _instance_decision(self, inst: LiveTI, same: frozenset[str]) -> TaskState:
        """Instance `inst`'s trigger rule over its upstream: of a task in the same mapped group
        the instance of the same map index, of any other task every instance."""
        run, task = inst.run, inst.task
        counts = UpstreamCounts()
        total = 0
        for up in task.upstream_task_ids:
            for other in run.instances_of(up):
                if up not in same or other.map_index == inst.map_index:
                    counts.add(other.state)
                    total += 1
        decision = decide(task.trigger_rule, counts, total)
        return SCHEDULED if decision is None else decision

    def _map_length(self, run: LiveRun, task: BaseOperator) -> int:
        rti = RuntimeTaskInstance(task, run.record, 0, 0, run.xcoms)
        context = task_context(self._base_context(run), task, rti)
        length = task.map_length(context)
        if length > self.max_map_length:
            raise ValueError(
                f"it maps over {length} items, more than max_map_length={self.max_map_length}"
                " allows: map over fewer items, or raise the engine's max_map_length"
            )
        return length

    # -- recovery --------------------------------------------------------------------------
    def adopt_instances(self, run: LiveRun, task_id: str, stored: list[TaskInstance]) -> None:
        """A stored run's expanded mapped task: its instances, by map_index."""
        first = run.tis[task_id]
        stored = sorted(stored, key=lambda r: r.map_index)
        instances: list[LiveTI] = []
        for record in stored:
            inst = first if not instances else LiveTI(run, first.task, first.priority, first.kind)
            inst.map_index = record.map_index
            inst.load(record)
            instances.append(inst)
        run.mapped[task_id] = instances
        run.unfinished += len(instances) - 1

    def instance(self, run: LiveRun, task_id: str, map_index: int | None) -> list[LiveTI]:
        """The task instances a change by hand names: all of a mapped task's, or one."""
        found = run.instances_of(task_id)
        if map_index is None or map_index < 0:
            return found
        return [ti for ti in found if ti.map_index == map_index]


def _same_index_upstream(task: BaseOperator) -> frozenset[str]:
    """`task`'s upstream in its own mapped task group (cached: definitions are immutable once
    loaded)."""
    cached: frozenset[str] | None = task.__dict__.get("_same_index_upstream")
    if cached is None:
        group, dag = task.mapped_group, task.dag
        cached = frozenset(
            up
            for up in task.upstream_task_ids
            if group is not None and dag is not None and dag.task_dict[up].mapped_group is group
        )
        task.__dict__["_same_index_upstream"] = cached
    return cached
