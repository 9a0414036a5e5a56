"""Waiting on other DAGs: `TaskStateTrigger` (a task of some runs of a DAG) and
`DagStateTrigger` (the runs themselves). Both listen to the engine's event bus: no polling."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from typing import Any

from asyncflow.triggers.base import BaseTrigger, StateWait, TriggerEvent, classpath_of, runtime


def _dates(values: Iterable[datetime] | datetime | None) -> list[datetime]:
    if values is None:
        return []
    if isinstance(values, datetime):
        return [values]
    return list(values)


class DagStateTrigger(BaseTrigger):
    """Fires once every run of `dag_id` named by `run_ids` / `execution_dates` (logical dates)
    is in one of `states`; the payload says which states they ended in."""

    def __init__(self, dag_id: str, states: Iterable[str], run_ids: Iterable[str] | None = None,
                 execution_dates: Iterable[datetime] | datetime | None = None,
                 poll_interval: float = 0.0, **kwargs: Any) -> None:  # fmt: skip
        super().__init__()
        self.dag_id = dag_id
        self.states = sorted(str(getattr(s, "value", s)) for s in states)
        self.run_ids = list(run_ids or ())
        self.execution_dates = _dates(execution_dates)
        if not self.run_ids and not self.execution_dates:
            raise ValueError(f"DagStateTrigger on {dag_id!r} needs run_ids or execution_dates")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(DagStateTrigger), {
            "dag_id": self.dag_id, "states": self.states, "run_ids": self.run_ids,
            "execution_dates": self.execution_dates,
        }  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        found = await runtime().wait_for_states(StateWait(
            self.dag_id, frozenset(self.states), None, tuple(self.run_ids),
            tuple(self.execution_dates),
        ))  # fmt: skip
        yield TriggerEvent({"dag_id": self.dag_id, "run_states": found})


class TaskStateTrigger(BaseTrigger):
    """Fires once `task_id` of every run of `dag_id` named by `run_ids` / `execution_dates` is
    in one of `states` (payload status "success"), or one is in `failed_states` (status
    "failed")."""

    def __init__(self, dag_id: str, task_id: str, states: Iterable[str],
                 run_ids: Iterable[str] | None = None,
                 execution_dates: Iterable[datetime] | datetime | None = None,
                 failed_states: Iterable[str] = (), **kwargs: Any) -> None:  # fmt: skip
        super().__init__()
        self.dag_id, self.task_id = dag_id, task_id
        self.states = sorted(str(getattr(s, "value", s)) for s in states)
        self.failed_states = sorted(str(getattr(s, "value", s)) for s in failed_states)
        self.run_ids = list(run_ids or ())
        self.execution_dates = _dates(execution_dates)
        if not self.run_ids and not self.execution_dates:
            raise ValueError(f"TaskStateTrigger on {dag_id}.{task_id} needs run_ids or "
                             "execution_dates")  # fmt: skip

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(TaskStateTrigger), {
            "dag_id": self.dag_id, "task_id": self.task_id, "states": self.states,
            "run_ids": self.run_ids, "execution_dates": self.execution_dates,
            "failed_states": self.failed_states,
        }  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        found = await runtime().wait_for_states(StateWait(
            self.dag_id, frozenset(self.states), self.task_id, tuple(self.run_ids),
            tuple(self.execution_dates), frozenset(self.failed_states),
        ))  # fmt: skip
        failed = any(state in self.failed_states for state in found.values())
        yield TriggerEvent({"status": "failed" if failed else "success", "states": found})
