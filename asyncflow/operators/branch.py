"""Branching: a task chooses which of its direct downstream tasks run; the others are skipped,
and the tasks below them follow their trigger rules. A chosen task group id stands for the
group's root tasks, as in Airflow.

`BaseBranchOperator` is the base to subclass: implement `choose_branch(context)` (`def` or
`async def`) returning a task_id, a list of them, or None for none.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from asyncflow.exceptions import AsyncflowError
from asyncflow.models.baseoperator import BaseOperator, Context
from asyncflow.models.taskgroup import group_ids_to_tasks
from asyncflow.threads import run_sync


def as_task_ids(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    raise AsyncflowError(f"a branch callable must return task_id(s), got {value!r}")


def follow_branches(task: BaseOperator, chosen: Any, context: Context) -> None:
    """Skip the direct downstream of `task` that `chosen` (task or group ids) leaves out."""
    dag = task.dag
    assert dag is not None
    follow = group_ids_to_tasks(dag, as_task_ids(chosen))
    unknown = [t for t in follow if t not in dag.task_dict]
    if unknown:
        raise AsyncflowError(
            f"branch task {task.task_id!r} returned {unknown}, which are not tasks or task "
            f"groups of DAG {dag.dag_id!r}: return task_ids of its downstream tasks"
        )
    context["ti"].skip(task.downstream_task_ids - set(follow))


class BaseBranchOperator(BaseOperator):
    """Subclass and implement `choose_branch(context)`."""

    def choose_branch(self, context: Context) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must implement choose_branch(context)")

    async def execute(self, context: Context) -> Any:
        if inspect.iscoroutinefunction(self.choose_branch):
            chosen = await self.choose_branch(context)
        else:
            chosen = await run_sync(lambda: self.choose_branch(context))
        follow_branches(self, chosen, context)
        return chosen
