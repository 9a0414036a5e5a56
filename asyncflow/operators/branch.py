"""Branching: a task chooses which of its direct downstream tasks run; the others are skipped,
and the tasks below them follow their trigger rules. A chosen task group id stands for the
group's root tasks, as in Airflow.

`BaseBranchOperator` is the base to subclass: implement `choose_branch(context)` (`def` or
`async def`) returning a task_id, a list of them, or None for none.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any

from asyncflow.exceptions import AsyncflowError
from asyncflow.models.baseoperator import BaseOperator, Context
from asyncflow.models.taskgroup import group_ids_to_tasks
from asyncflow.threads import run_sync


def as_task_ids(value: Any) -> list[str]:
    """A branch's answer as task_ids: one id, a list of ids, or None for none. Anything else
    (numbers, a dict) is refused, as Airflow refuses it."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        items = list(value)
        if all(isinstance(v, str) for v in items):
            return items
    raise AsyncflowError(
        f"a branch must return a task_id, a list of task_ids or None, got {value!r:.200}"
    )


def branch_skips(task: BaseOperator, chosen: Any) -> set[str]:
    """The direct downstream of `task` to skip when it follows `chosen` (task or group ids).

    As in Airflow, a direct downstream task that is also downstream of a followed task is not
    skipped: in `branch >> [task1, join]; task1 >> join`, following `task1` runs `join` too."""
    dag = task.dag
    assert dag is not None
    follow = group_ids_to_tasks(dag, as_task_ids(chosen))
    unknown = [t for t in follow if t not in dag.task_dict]
    if unknown:
        raise AsyncflowError(
            f"branch task {task.task_id!r} returned {unknown}, which are not tasks or task "
            f"groups of DAG {dag.dag_id!r}: return task_ids of its downstream tasks"
        )
    kept = set(follow)
    todo = list(follow)
    while todo:  # everything below a followed task
        for below in dag.task_dict[todo.pop()].downstream_task_ids:
            if below not in kept:
                kept.add(below)
                todo.append(below)
    return task.downstream_task_ids - kept


def follow_branches(task: BaseOperator, chosen: Any, context: Context) -> None:
    """Skip the direct downstream of `task` that `chosen` (task or group ids) leaves out."""
    context["ti"].skip(branch_skips(task, chosen))


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
