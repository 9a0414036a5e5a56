"""`TaskGroup` and `@task_group`: name and arrange tasks together, as in Airflow.

A task created inside ``with TaskGroup("extract"):`` gets the id ``extract.<task_id>`` (unless the
group says ``prefix_group_id=False``); groups nest (``outer.inner.task``). A group's
``default_args`` fill the arguments of its tasks over the DAG's (an inner group's over an outer
one's), and a task's own arguments win over both. ``a >> group`` makes ``a`` upstream of the
group's roots (its tasks with no upstream inside the group); ``group >> b`` makes the group's
leaves (no downstream inside it) upstream of ``b``; ``group1 >> group2`` links the first one's
leaves to the second one's roots. These edges are computed when ``>>`` runs, as in Airflow.

``@task_group`` turns a function into a group factory: each call opens a group named after the
function (``name__1``, ``name__2`` on later calls), runs the body inside it and returns what the
body returned (an XComArg keeps flowing into the next task), or the group when it returned
nothing. ``.expand(...)`` / ``.expand_kwargs(...)`` on it make a mapped task group
(models/mapped_group.py).
"""

from __future__ import annotations

import functools
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from asyncflow.exceptions import DagDefinitionError, DuplicateTaskIdError
from asyncflow.models.dag import DAG, current_dag
from asyncflow.models.dependency import Relatable
from asyncflow.models.docs import read_doc_md

if TYPE_CHECKING:
    from asyncflow.models.baseoperator import BaseOperator

P = ParamSpec("P")
R = TypeVar("R")

_GROUP_ID = re.compile(r"^[\w.-]+$")
_SUFFIX = re.compile(r"^(.*)__(\d+)$")


class _Stack(threading.local):
    def __init__(self) -> None:
        self.groups: list[TaskGroup] = []


_stack = _Stack()
_roots: weakref.WeakKeyDictionary[DAG, TaskGroup] = weakref.WeakKeyDictionary()


def current_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open `with TaskGroup(...)` of `dag` (None outside any group)."""
    for group in reversed(_stack.groups):
        if dag is None or group.dag is dag:
            return group
    return None


def root_group(dag: DAG) -> TaskGroup:
    """The DAG's unnamed top-level group (Airflow's `dag.task_group`)."""
    root = _roots.get(dag)
    if root is None:
        root = TaskGroup.__new__(TaskGroup)
        root._init_root(dag)
        _roots[dag] = root
    return root


class TaskGroup(Relatable):
    """A named set of tasks (and groups) of one DAG; ids of its members get `group_id.` first."""

    dag: DAG

    def __init__(
        self,
        group_id: str,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: Mapping[str, Any] | None = None,
        tooltip: str = "",
        doc_md: str | None = None,
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        if dag is None and parent_group is not None:
            dag = parent_group.dag
        if dag is None:
            innermost = current_group(None)
            dag = innermost.dag if innermost is not None else current_dag()
        if dag is None:
            raise DagDefinitionError(
                f"TaskGroup {group_id!r} is not inside a DAG: open it within `with DAG(...)` "
                "or pass dag="
            )
        if not isinstance(group_id, str) or not _GROUP_ID.match(group_id):
            raise DagDefinitionError(
                f"group_id {group_id!r} must be a non-empty string of letters, digits, "
                "'_', '-' and '.'",
                dag_id=dag.dag_id,
                fileloc=dag.fileloc,
            )
        self.dag = dag
        if parent_group is None:
            parent_group = current_group(dag) or root_group(dag)
        if parent_group.dag is not dag:
            raise DagDefinitionError(
                f"TaskGroup {group_id!r} is in DAG {dag.dag_id!r} but its parent group "
                f"{parent_group.group_id!r} is in DAG {parent_group.dag.dag_id!r}",
                dag_id=dag.dag_id,
                fileloc=dag.fileloc,
            )
        self.parent_group: TaskGroup | None = parent_group
        self.prefix_group_id = prefix_group_id
        self._label = group_id
        self.default_args: dict[str, Any] = {
            **parent_group.default_args,
            **dict(default_args or {}),
        }
        self.tooltip = tooltip
        self.doc_md = read_doc_md(doc_md, dag.fileloc)
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.group_display_name = group_display_name
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        #: tasks upstream of this group, kept to bridge edges across an empty group
        self.upstream_task_ids: set[str] = set()
        self._label = self._free_label(group_id, add_suffix_on_collision)
        full_id = self._full_id(self._label)
        parent_group.children[full_id] = self
        root_group(dag)._used.add(full_id)

    def _init_root(self, dag: DAG) -> None:
        self.dag = dag
        self.parent_group = None
        self.prefix_group_id = True
        self._label = ""
        self.default_args = {}
        self.tooltip = ""
        self.doc_md = None
        self.ui_color = "CornflowerBlue"
        self.ui_fgcolor = "#000"
        self.group_display_name = ""
        self.children = {}
        self.upstream_task_ids = set()
        self._used: set[str] = set()

    def _free_label(self, label: str, add_suffix: bool) -> str:
        dag = self.dag
        used = root_group(dag)._used

        def taken(candidate: str) -> bool:
            full = self._full_id(candidate)
            return full in used or full in dag.task_dict

        if not taken(label):
            return label
        if not add_suffix:
            raise DuplicateTaskIdError(
                f"group_id {self._full_id(label)!r} is already used by a group or task of "
                "this DAG: give each TaskGroup a unique group_id",
                dag_id=dag.dag_id,
                fileloc=dag.fileloc,
            )
        match = _SUFFIX.match(label)
        base = match.group(1) if match else label
        number = 1
        while taken(f"{base}__{number}"):
            number += 1
        return f"{base}__{number}"

    def _full_id(self, label: str) -> str:
        parent = self.parent_group
        return parent.child_id(label) if parent is not None else label

    # -- identity -------------------------------------------------------------------------
    @property
    def group_id(self) -> str | None:
        """The full id (`outer.inner`), None for the DAG's root group."""
        if self.parent_group is None:
            return None
        return self._full_id(self._label)

    @property
    def node_id(self) -> str | None:
        return self.group_id

    @property
    def label(self) -> str:
        """The id without the parent's prefix (or the display name), as a UI shows it."""
        return self.group_display_name or self._label

    @property
    def is_root(self) -> bool:
        return self.parent_group is None

    def child_id(self, label: str) -> str:
        """`label` as a member of this group: `group_id.label` when the group prefixes."""
        group_id = self.group_id
        if self.prefix_group_id and group_id:
            return f"{group_id}.{label}"
        return label

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"

    # -- members --------------------------------------------------------------------------
    def add(self, task: BaseOperator) -> None:
        """Register a task created in this group (called by `BaseOperator`)."""
        if not self.is_root:
            self.children[task.task_id] = task

    def __iter__(self) -> Iterator[BaseOperator]:
        """Every task in this group and its nested groups."""
        if self.is_root:
            yield from self.dag.task_dict.values()
            return
        for child in list(self.children.values()):
            if isinstance(child, TaskGroup):
                yield from child
            else:
                yield child

    def has_task(self, task: BaseOperator) -> bool:
        return any(member is task for member in self)

    def get_task_group_dict(self) -> dict[str | None, TaskGroup]:
        """This group and every group below it, by full group_id."""
        found: dict[str | None, TaskGroup] = {self.group_id: self}
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                found.update(child.get_task_group_dict())
        return found

    def __getitem__(self, label: str) -> BaseOperator | TaskGroup:
        try:
            return self.children[self.child_id(label)]
        except KeyError:
            raise KeyError(
                f"TaskGroup {self.group_id!r} has no task or group {label!r}; it has "
                f"{sorted(self.children)}"
            ) from None

    @property
    def roots(self) -> list[BaseOperator]:
        """Members with no upstream inside the group."""
        members = list(self)
        ids = {t.task_id for t in members}
        return [t for t in members if t.upstream_task_ids.isdisjoint(ids)]

    @property
    def leaves(self) -> list[BaseOperator]:
        """Members with no downstream inside the group."""
        members = list(self)
        ids = {t.task_id for t in members}
        return [t for t in members if t.downstream_task_ids.isdisjoint(ids)]

    def get_roots(self) -> Iterator[BaseOperator]:
        yield from self.roots

    def get_leaves(self) -> Iterator[BaseOperator]:
        yield from self.leaves

    # -- dependencies ---------------------------------------------------------------------
    def _ends(self, *, upstream: bool) -> list[Any]:
        """The tasks an edge attaches to: roots for an upstream edge, leaves for a downstream
        one; through an empty group, the tasks upstream of it (Airflow does the same)."""
        if upstream:
            return self.roots
        group: TaskGroup | None = self
        while group is not None:
            leaves = group.leaves
            if leaves:
                return leaves
            if group.upstream_task_ids:
                return [self.dag.task_dict[t] for t in sorted(group.upstream_task_ids)]
            group = group.parent_group
        return []

    def set_upstream(self, other: Any) -> None:
        for item in other if isinstance(other, list | tuple | set) else [other]:
            ends = item._ends(upstream=False) if isinstance(item, TaskGroup) else [item]
            for end in ends:
                task = getattr(end, "operator", end)
                if hasattr(task, "task_id"):
                    self.upstream_task_ids.add(task.task_id)
        for task in self._ends(upstream=True):
            task.set_upstream(other)

    def set_downstream(self, other: Any) -> None:
        for task in self._ends(upstream=False):
            task.set_downstream(other)

    def _relate_task(self, other: Any, *, upstream: bool) -> None:
        """`other` becomes upstream (or downstream) of this group (called by BaseOperator)."""
        if upstream:
            self.set_upstream(other)
        else:
            self.set_downstream(other)

    # -- context manager ------------------------------------------------------------------
    def __enter__(self) -> TaskGroup:
        _stack.groups.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _stack.groups.remove(self)


class TaskGroupFactory(Generic[P, R]):
    """What `@task_group` returns: call it (inside a DAG) to build one group, or map it with
    `.expand(...)`, `.partial(...).expand(...)`, `.expand_kwargs(...)` (models/mapped_group.py)."""

    def __init__(self, function: Callable[P, R], group_kwargs: Mapping[str, Any],
                 partial_kwargs: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        self.function = function
        self.group_kwargs = dict(group_kwargs)
        self.group_kwargs.setdefault("group_id", function.__name__)
        self.partial_kwargs = dict(partial_kwargs or {})
        functools.update_wrapper(self, function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        return self._build(TaskGroup, lambda: (args, kwargs))

    def _build(self, group_class: Callable[..., TaskGroup],
               arguments: Callable[[], Any]) -> Any:  # fmt: skip
        options = {"add_suffix_on_collision": True, **self.group_kwargs}
        with group_class(**options) as group:
            doc = self.function.__doc__
            if doc:
                group.tooltip = group.tooltip or doc
                group.doc_md = group.doc_md or doc
            given = arguments()
            args, kwargs = given if isinstance(given, tuple) else ((), given)
            result = self.function(*args, **kwargs)
        return group if result is None else result

    def override(self, **group_kwargs: Any) -> TaskGroupFactory[P, R]:
        return TaskGroupFactory(
            self.function, {**self.group_kwargs, **group_kwargs}, self.partial_kwargs
        )

    def partial(self, **kwargs: Any) -> TaskGroupFactory[P, R]:
        """The arguments every mapped instance shares; `.expand(...)` maps the others."""
        doubled = sorted(set(kwargs) & set(self.partial_kwargs))
        if doubled:
            raise DagDefinitionError(
                f"@task_group {self.function.__name__!r}: {doubled} given to partial() twice"
            )
        return TaskGroupFactory(self.function, self.group_kwargs, {**self.partial_kwargs, **kwargs})

    def expand(self, **mapped: Any) -> Any:
        """One instance of every task of the group per item (the cross product of several
        arguments, as for tasks)."""
        from asyncflow.models.mapped_group import expand_group

        return expand_group(self._build, self.function, self.partial_kwargs, mapped=mapped)

    def expand_kwargs(self, kwargs: Any) -> Any:
        """One instance of every task of the group per dict of arguments."""
        from asyncflow.models.mapped_group import expand_group

        return expand_group(self._build, self.function, self.partial_kwargs, kwargs_list=kwargs)


@overload
def task_group(python_callable: Callable[P, R]) -> TaskGroupFactory[P, R]: ...
@overload
def task_group(
    python_callable: None = None, **group_kwargs: Any
) -> Callable[[Callable[P, R]], TaskGroupFactory[P, R]]: ...
def task_group(python_callable: Any = None, **group_kwargs: Any) -> Any:
    """`@task_group` / `@task_group(group_id=..., tooltip=..., default_args=...)`: each call of
    the function builds a `TaskGroup` around what the body creates."""
    if python_callable is not None:
        return TaskGroupFactory(python_callable, group_kwargs)
    return lambda function: TaskGroupFactory(function, group_kwargs)


def group_ids_to_tasks(dag: DAG, ids: Sequence[str]) -> list[str]:
    """Task ids for a branch's choice: a task id stays, a group id becomes its roots' ids."""
    groups = root_group(dag).get_task_group_dict()
    out: list[str] = []
    for node_id in ids:
        group = groups.get(node_id)
        out.extend(t.task_id for t in group.roots) if group is not None else out.append(node_id)
    return out
