"""Mapped task groups: ``@task_group`` functions called through ``.expand(...)``,
``.partial(...).expand(...)`` or ``.expand_kwargs(...)``, as in Airflow.

The function runs once, at load time, inside a `MappedTaskGroup`; each mapped argument is a
`MappedArgument` standing for "this instance's item". Every task the body creates (in nested
groups too) is then mapped by the group: it has one instance per item of what the group maps
over (`map_index` 0..n-1, its length decided when the task would be scheduled, as for a mapped
task), its arguments resolve per instance:

* a `MappedArgument` resolves to the instance's own item;
* a reference to another task of the same mapped group (``mul_2(add_1(num))``) pulls that task's
  XCom of the *same* map index;
* any other reference resolves as usual (a task outside the group, all its instances).

Trigger rules between tasks of the same group are decided per index too: ``mul_2[1]`` is
`upstream_failed` when ``add_1[1]`` failed, while ``mul_2[0]`` runs (the engine decides them
once every upstream instance is done). A task downstream of the group counts every instance.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.models.mapped import (
    DictOfListsExpandInput,
    ExpandInput,
    ListOfDictsExpandInput,
    _check_kwargs_value,
)
from asyncflow.models.taskgroup import TaskGroup
from asyncflow.models.xcom_arg import RETURN_KEY, ResolvedValue, XComArg

if TYPE_CHECKING:
    from asyncflow.models.baseoperator import Context

__all__ = ["MappedArgument", "MappedTaskGroup", "expand_group"]


class MappedTaskGroup(TaskGroup):
    """A task group whose every task is mapped over `expand_input` (see the module)."""

    def __init__(self, group_id: str, *, expand_input: ExpandInput, **kwargs: Any) -> None:
        super().__init__(group_id, **kwargs)
        self.expand_input = expand_input
        parent: TaskGroup | None = self.parent_group
        while parent is not None:
            if isinstance(parent, MappedTaskGroup):
                raise DagDefinitionError(
                    f"mapped task group {self.group_id!r} is inside mapped task group "
                    f"{parent.group_id!r}: mapping inside a mapped group is not supported "
                    "(as in Airflow): expand the inner tasks over a list made upstream",
                    dag_id=self.dag.dag_id,
                    fileloc=self.dag.fileloc,
                )
            parent = parent.parent_group

    def __exit__(self, *exc: object) -> None:
        super().__exit__(*exc)
        if exc and exc[0] is not None:
            return
        for task in self:
            if task.is_mapped:
                raise DagDefinitionError(
                    f"task {task.task_id!r} is mapped inside mapped task group "
                    f"{self.group_id!r}: mapping inside a mapped group is not supported (as "
                    "in Airflow): the group already gives each task one instance per item",
                    dag_id=self.dag.dag_id,
                    task_id=task.task_id,
                )
            task.mapped_group = self
            task.is_mapped = True
        for ref in self.expand_input.references():  # as Airflow: the group waits for them
            source = ref.operator
            self.set_upstream(source)
            if not source.is_mapped:
                source.map_source_keys = source.map_source_keys | {ref.key}


class MappedArgument(XComArg):
    """One argument of a mapped group's function: in each instance, that instance's item."""

    __slots__ = ("group", "name")

    def __init__(self, group: MappedTaskGroup, name: str) -> None:
        self.group = group
        self.name = name
        self.key = RETURN_KEY

    def __repr__(self) -> str:
        return f"MappedArgument({self.group.group_id!r}, {self.name!r})"

    def __str__(self) -> str:
        raise TypeError(
            f"{self!r} is one item per mapped instance: pass it to a task as an argument (it "
            "is resolved when the instance runs), not into a string at load time"
        )

    def plain(self) -> Iterator[XComArg]:
        yield from self.group.expand_input.references()

    def resolve(self, context: Context) -> Any:
        index = context["ti"].map_index
        value = self.group.expand_input.item(context, max(index, 0)).get(self.name)
        return value.value if isinstance(value, ResolvedValue) else value


def expand_group(
    make: Callable[..., Any],
    function: Callable[..., Any],
    partial: Mapping[str, Any],
    *,
    mapped: Mapping[str, Any] | None = None,
    kwargs_list: Any = None,
) -> Any:
    """Build the mapped group: `make(group_class, **call_kwargs)` opens the group and runs
    the function (TaskGroupFactory._build). `mapped` is `.expand(...)`'s arguments, or
    `kwargs_list` `.expand_kwargs(...)`'s value."""
    name = getattr(function, "__name__", "task_group")
    if mapped is not None:
        if not mapped:
            raise DagDefinitionError(f"@task_group {name!r}.expand() needs at least one argument")
        doubled = sorted(set(mapped) & set(partial))
        if doubled:
            raise DagDefinitionError(
                f"@task_group {name!r}: {doubled} given to both partial() and expand(): give "
                "each once"
            )
        names = list(mapped)
        expand_input: ExpandInput = DictOfListsExpandInput(name, dict(mapped))
    else:
        _check_kwargs_value(name, kwargs_list)
        params = inspect.signature(function).parameters
        names = [p for p in params if p not in partial]
        expand_input = ListOfDictsExpandInput(name, kwargs_list)
    holder: dict[str, MappedTaskGroup] = {}

    def group_class(group_id: str, **group_kwargs: Any) -> MappedTaskGroup:
        group = MappedTaskGroup(group_id, expand_input=expand_input, **group_kwargs)
        holder["group"] = group
        return group

    def arguments() -> dict[str, Any]:
        group = holder["group"]
        return {**partial, **{n: MappedArgument(group, n) for n in names}}

    return make(group_class, arguments)
