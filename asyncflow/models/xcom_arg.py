"""`XComArg`: a reference to a task's future XCom, resolved when the consuming task runs.

Passing one TaskFlow call's result into another wires the dependency and, at run time, the value.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asyncflow.models.baseoperator import BaseOperator, Context

RETURN_KEY = "return_value"


class XComArg:
    __slots__ = ("key", "operator")

    def __init__(self, operator: BaseOperator, key: str = RETURN_KEY) -> None:
        self.operator = operator
        self.key = key

    def __repr__(self) -> str:
        return f"XComArg({self.operator.task_id!r}, key={self.key!r})"

    def __str__(self) -> str:
        """The Jinja expression that pulls this XCom, as Airflow writes it, so that
        `f"echo {task.output}"` in a templated field renders the value."""
        return (
            f"{{{{ task_instance.xcom_pull(task_ids='{self.operator.task_id}', "
            f"dag_id='{self.operator.dag_id}', key='{self.key}') }}}}"
        )

    def __getitem__(self, key: str) -> XComArg:
        """`result["a"]`: one key of a task with `multiple_outputs=True`."""
        return XComArg(self.operator, key)

    def resolve(self, context: Context) -> Any:
        return context["ti"].xcom_pull(task_ids=self.operator.task_id, key=self.key)

    # dependencies behave as the operator's
    def __rshift__(self, other: Any) -> Any:
        return self.operator >> other

    def __lshift__(self, other: Any) -> Any:
        return self.operator << other

    def __rrshift__(self, other: Any) -> XComArg:
        self.operator.set_upstream(other)
        return self

    def __rlshift__(self, other: Any) -> XComArg:
        self.operator.set_downstream(other)
        return self

    def set_upstream(self, other: Any) -> None:
        self.operator.set_upstream(other)

    def set_downstream(self, other: Any) -> None:
        self.operator.set_downstream(other)


class DagParam:
    """A `@dag` function's argument: resolves to the run's param value."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"DagParam({self.name!r})"

    def resolve(self, context: Context) -> Any:
        return context["params"][self.name]


def iter_references(value: Any) -> Iterator[XComArg]:
    """Every XComArg inside a value (lists, tuples, sets and dict values, recursively)."""
    if isinstance(value, XComArg):
        yield value
    elif isinstance(value, list | tuple | set):
        for item in value:
            yield from iter_references(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from iter_references(item)


def has_references(value: Any) -> bool:
    if isinstance(value, XComArg | DagParam):
        return True
    if isinstance(value, list | tuple | set):
        return any(has_references(v) for v in value)
    if isinstance(value, dict):
        return any(has_references(v) for v in value.values())
    return False


def resolve_references(value: Any, context: Context) -> Any:
    """The value with every XComArg / DagParam replaced by what it refers to in this run."""
    if isinstance(value, XComArg | DagParam):
        return value.resolve(context)
    if isinstance(value, list | tuple | set):
        return type(value)(resolve_references(v, context) for v in value)
    if isinstance(value, dict):
        return {k: resolve_references(v, context) for k, v in value.items()}
    return value
