"""`ExternalTaskSensor`: wait until tasks (or a task group, or the whole run) of another DAG have
reached a state in the run at the same logical date; `ExternalTaskMarker` names such a
dependency from the other side.

As Airflow: the other run is the one whose logical date equals this run's (minus
`execution_delta`, or what `execution_date_fn(logical_date, context)` returns: one date or a
list). Each poke reads the engine's store. With task ids the sensor is done when every task in
every matched run is in `allowed_states` (default success); with `external_task_group_id` when
every task of that group is; with neither, when the runs themselves are (DAG run states). A
state in `failed_states` fails the task (skips it under `soft_fail`), one in `skipped_states`
skips it. `check_existence=True` fails at once when the DAG or the tasks are not loaded.
`deferrable=True` waits between pokes in reschedule mode (no worker slot held).

`ExternalTaskMarker` does nothing when it runs (as in Airflow, where it matters only when a user
clears it "recursively", which asyncflow's clear does not follow across DAGs).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Collection, Iterable
from datetime import datetime, timedelta
from typing import Any

from asyncflow.exceptions import AsyncflowError, AsyncflowSkipException
from asyncflow.models.baseoperator import BaseOperator, Context
from asyncflow.models.engine_access import TaskEngine, task_engine
from asyncflow.records import DagRun
from asyncflow.sensors.base import BaseSensorOperator
from asyncflow.states import DagRunState, TaskState

__all__ = ["ExternalTaskMarker", "ExternalTaskSensor"]


def _states(values: Iterable[str] | None) -> list[str]:
    return [str(getattr(v, "value", v)) for v in values] if values else []


class ExternalTaskSensor(BaseSensorOperator):
    template_fields = (
        "external_dag_id", "external_task_id", "external_task_ids", "external_task_group_id",
    )  # fmt: skip
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Collection[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        poll_interval: float | None = None,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        if poll_interval is not None:
            kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(deferrable=deferrable, **kwargs)
        where = self.where()
        self.allowed_states = _states(allowed_states) or [TaskState.SUCCESS.value]
        self.skipped_states = _states(skipped_states)
        self.failed_states = _states(failed_states)
        every = self.allowed_states + self.skipped_states + self.failed_states
        if len(set(every)) != len(every):
            raise where.error(
                "allowed_states, skipped_states and failed_states share a state: each state "
                "may appear in one of them only"
            )
        ids = list(external_task_ids) if external_task_ids else None
        if external_task_id is not None and ids is not None:
            raise where.error("give external_task_id or external_task_ids, not both")
        if external_task_id is not None:
            ids = [external_task_id]
        if external_task_group_id is not None and ids is not None:
            raise where.error("give external_task_group_id or external task ids, not both")
        if ids is not None and len(set(ids)) != len(ids):
            raise where.error(f"external_task_ids={ids!r} names a task twice")
        valid = {s.value for s in (TaskState if ids or external_task_group_id else DagRunState)}
        wrong = sorted(set(every) - valid)
        if wrong:
            kind = "task" if ids or external_task_group_id else "DAG run"
            raise where.error(f"{wrong} are not {kind} states: use {sorted(valid)}")
        if execution_delta is not None and execution_date_fn is not None:
            raise where.error("give execution_delta or execution_date_fn, not both")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = ids
        self.external_task_group_id = external_task_group_id
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = bool(check_existence)

    def _dates(self, context: Context) -> list[datetime]:
        logical: datetime = context["logical_date"]
        if self.execution_delta is not None:
            return [logical - self.execution_delta]
        fn = self.execution_date_fn
        if fn is None:
            return [logical]
        parameters = inspect.signature(fn).parameters
        if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            result = fn(logical, **context)
        elif len(parameters) >= 2:
            result = fn(logical, context)
        else:
            result = fn(logical)
        return list(result) if isinstance(result, list | tuple) else [result]

    def _check_existence(self, engine: TaskEngine) -> None:
        task_ids = engine.task_ids(self.external_dag_id)
        if task_ids is None:
            raise AsyncflowError(f"the external DAG {self.external_dag_id!r} is not loaded")
        missing = [t for t in self.external_task_ids or [] if t not in task_ids]
        if missing:
            raise AsyncflowError(
                f"the external DAG {self.external_dag_id!r} has no tasks {missing}"
            )
        group = self.external_task_group_id
        if group is not None and not any(t.startswith(group + ".") for t in task_ids):
            raise AsyncflowError(
                f"the external DAG {self.external_dag_id!r} has no task group {group!r}"
            )

    async def _count(self, engine: TaskEngine, runs: list[DagRun], states: list[str]) -> int:
        """How many of the matched runs are wholly in `states` (any, for failure states)."""
        wanted = set(states)
        count = 0
        for run in runs:
            if self.external_task_ids is None and self.external_task_group_id is None:
                count += run.state.value in wanted
                continue
            by_task = await engine.task_states(run.dag_id, run.run_id)
            if self.external_task_ids is not None:
                chosen = [by_task.get(t, []) for t in self.external_task_ids]
            else:
                prefix = f"{self.external_task_group_id}."
                chosen = [s for t, s in by_task.items() if t.startswith(prefix)]
            found = [state for states_of in chosen for state in states_of]
            complete = all(chosen) and bool(chosen)
            count += complete and all(s in wanted for s in found)
        return count

    async def _any(self, engine: TaskEngine, runs: list[DagRun], states: list[str]) -> bool:
        wanted = set(states)
        for run in runs:
            if self.external_task_ids is None and self.external_task_group_id is None:
                if run.state.value in wanted:
                    return True
                continue
            by_task = await engine.task_states(run.dag_id, run.run_id)
            for task_id, found in by_task.items():
                mine = (
                    task_id in self.external_task_ids
                    if self.external_task_ids is not None
                    else task_id.startswith(f"{self.external_task_group_id}.")
                )
                if mine and any(s in wanted for s in found):
                    return True
        return False

    def _what(self) -> str:
        if self.external_task_ids is not None:
            return f"tasks {self.external_task_ids} of DAG {self.external_dag_id!r}"
        if self.external_task_group_id is not None:
            return f"task group {self.external_task_group_id!r} of DAG {self.external_dag_id!r}"
        return f"DAG {self.external_dag_id!r}"

    async def poke(self, context: Context) -> bool:
        engine = task_engine("ExternalTaskSensor")
        if self.check_existence:
            self._check_existence(engine)
        dates = self._dates(context)
        self.log.info("poking for %s on %s", self._what(), [d.isoformat() for d in dates])
        runs = [
            run
            for run in [await engine.find_run(self.external_dag_id, d) for d in dates]
            if run is not None
        ]
        if self.failed_states and await self._any(engine, runs, self.failed_states):
            message = f"{self._what()} reached one of failed_states {self.failed_states}"
            if self.soft_fail:
                raise AsyncflowSkipException(message)
            raise AsyncflowError(message)
        if self.skipped_states and await self._any(engine, runs, self.skipped_states):
            raise AsyncflowSkipException(
                f"{self._what()} reached one of skipped_states {self.skipped_states}"
            )
        return len(runs) == len(dates) and (
            await self._count(engine, runs, self.allowed_states) == len(dates)
        )


class ExternalTaskMarker(BaseOperator):
    """Names a task of another DAG that depends on this one (for people reading the DAG)."""

    template_fields = ("external_dag_id", "external_task_id", "logical_date")
    ui_color = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        logical_date: str | datetime | None = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if recursion_depth <= 0:
            raise self.where().error("recursion_depth must be a positive integer")
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.logical_date = logical_date
        self.recursion_depth = recursion_depth

    async def execute(self, context: Context) -> None:
        return None
