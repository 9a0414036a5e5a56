"""Dynamic task mapping: `Operator.partial(...).expand(...)`, `.expand_kwargs(...)`, and the
same on `@task` functions.

A mapped task is one `MappedOperator` in the DAG: its dependencies, trigger rule, retries and
pool are the task's. How many instances it has is decided when it is about to run (its
upstream are done), from the values it maps over: literals, or upstream XComs. Each instance
(`map_index` 0, 1, ...) runs an ordinary operator built from the partial arguments and its own
item of the mapped ones (`MappedOperator.unmap`).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import DagDefinitionError
from asyncflow.models.baseoperator import BaseOperator, Context, RunsIn
from asyncflow.models.dag import current_dag
from asyncflow.models.taskgroup import current_group
from asyncflow.models.xcom_arg import (
    DagParam,
    ResolvedValue,
    XComArg,
    as_sequence,
    iter_references,
    resolve_references,
)

if TYPE_CHECKING:
    from asyncflow.models.dag import DAG

#: Airflow's [core] max_map_length: the most instances one mapped task may have
DEFAULT_MAX_MAP_LENGTH = 1024


class MappingError(ValueError):
    """A mapped task's values cannot be expanded (not a list, too long, missing)."""


class ExpandInput:
    """What a mapped task maps over."""

    def references(self) -> list[XComArg]:
        raise NotImplementedError

    def length(self, context: Context) -> int:
        raise NotImplementedError

    def item(self, context: Context, index: int) -> dict[str, Any]:
        """The keyword arguments of instance `index`; values that came from an XCom are
        wrapped (`ResolvedValue`) so that they are not rendered as templates."""
        raise NotImplementedError


def _is_reference(value: Any) -> bool:
    return isinstance(value, XComArg | DagParam)


def _sequence(name: str, value: Any, context: Context, task_id: str) -> Sequence[Any]:
    if isinstance(value, XComArg):
        return value.resolve_sequence(context)
    resolved = resolve_references(value, context)
    try:
        return as_sequence(resolved, value)
    except TypeError:
        raise MappingError(
            f"task {task_id!r}: expand argument {name!r} is {type(resolved).__name__} "
            f"{resolved!r:.80}: only a list, tuple or dict can be mapped over"
        ) from None


class DictOfListsExpandInput(ExpandInput):
    """`.expand(a=[...], b=xcom)`: one instance per combination (the cross product, the last
    argument varying fastest, as in Airflow)."""

    def __init__(self, task_id: str, value: dict[str, Any]) -> None:
        self.task_id = task_id
        self.value = value

    def references(self) -> list[XComArg]:
        return list(iter_references(list(self.value.values())))

    def _sequences(self, context: Context) -> dict[str, Sequence[Any]]:
        return {k: _sequence(k, v, context, self.task_id) for k, v in self.value.items()}

    def length(self, context: Context) -> int:
        total = 1
        for seq in self._sequences(context).values():
            total *= len(seq)
        return total

    def item(self, context: Context, index: int) -> dict[str, Any]:
        sequences = self._sequences(context)
        chosen: dict[str, Any] = {}
        for name in reversed(list(sequences)):
            seq = sequences[name]
            index, at = divmod(index, len(seq))
            value = seq[at]
            chosen[name] = ResolvedValue(value) if _is_reference(self.value[name]) else value
        return {name: chosen[name] for name in sequences}


class ListOfDictsExpandInput(ExpandInput):
    """`.expand_kwargs([{...}, {...}])` or `.expand_kwargs(xcom)`: one instance per dict."""

    def __init__(self, task_id: str, value: Any) -> None:
        self.task_id = task_id
        self.value = value

    def references(self) -> list[XComArg]:
        return list(iter_references(self.value))

    def _dicts(self, context: Context) -> Sequence[Any]:
        return _sequence("expand_kwargs", self.value, context, self.task_id)

    def length(self, context: Context) -> int:
        return len(self._dicts(context))

    def item(self, context: Context, index: int) -> dict[str, Any]:
        entry = self._dicts(context)[index]
        from_xcom = _is_reference(self.value)
        if isinstance(entry, XComArg | DagParam):
            entry, from_xcom = entry.resolve(context), True
        if not isinstance(entry, Mapping) or not all(isinstance(k, str) for k in entry):
            raise MappingError(
                f"task {self.task_id!r}: expand_kwargs item {index} is {entry!r:.80}: each "
                "item must be a dict of argument names to values"
            )
        if from_xcom:
            return {k: ResolvedValue(v) for k, v in entry.items()}
        return {k: resolve_references(v, context) for k, v in entry.items()}


class MappedOperator(BaseOperator):
    """A task with one instance per item of what it maps over (see the module's docstring)."""

    is_mapped = True

    def __init__(
        self,
        *,
        operator_class: type[BaseOperator],
        partial_kwargs: dict[str, Any],
        expand_input: ExpandInput,
        into_op_kwargs: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.operator_class = operator_class
        self.partial_kwargs = partial_kwargs
        self.expand_input = expand_input
        self.into_op_kwargs = into_op_kwargs  # @task: the mapped values are the function's
        self._conditions: tuple[Any, ...] = ()
        for ref in [*expand_input.references(), *iter_references(partial_kwargs)]:
            if ref.operator is not self:
                self.set_upstream(ref.operator)
        for ref in expand_input.references():
            source = ref.operator
            if not source.is_mapped:
                source.map_source_keys = source.map_source_keys | {ref.key}

    def __repr__(self) -> str:
        return f"<Mapped({self.operator_class.__name__}): {self.task_id}>"

    @property
    def runs_in(self) -> RunsIn:
        cls = self.operator_class
        static = inspect.getattr_static(cls, "runs_in")
        if isinstance(static, str):
            return static  # type: ignore[return-value]
        if isinstance(static, property) and static.fget is not None:
            partial = self.partial_kwargs

            class _Stand:  # what the property reads: the partial arguments, else the class's
                def __getattr__(self, name: str) -> Any:
                    return partial[name] if name in partial else getattr(cls, name)

            try:
                return static.fget(_Stand())  # type: ignore[no-any-return]
            except Exception:  # it reads a mapped argument: the class's default below
                pass
        return "loop" if cls._is_async else "thread"

    @property
    def template_fields(self) -> Sequence[str]:  # type: ignore[override]
        return ()

    def execute(self, context: Context) -> Any:
        raise RuntimeError(f"mapped task {self.task_id!r} runs through its instances (unmap)")

    def map_length(self, context: Context) -> int:
        return self.expand_input.length(context)

    def unmap(self, context: Context) -> BaseOperator:
        """The operator that instance `context["ti"].map_index` runs."""
        index = context["ti"].map_index
        mapped = self.expand_input.item(context, index)
        kwargs = dict(self.partial_kwargs)
        if self.into_op_kwargs:
            kwargs["op_kwargs"] = {**kwargs.get("op_kwargs", {}), **mapped}
        else:
            kwargs.update(mapped)
        kwargs = {
            k: resolve_references(v, context) if k not in mapped else v for k, v in kwargs.items()
        }
        if self.into_op_kwargs:
            kwargs["op_kwargs"] = {
                k: v if k in mapped else resolve_references(v, context)
                for k, v in kwargs["op_kwargs"].items()
            }
        else:  # a mapped value from XCom stays as it is: in a non-template field, plainly
            fields = set(self.operator_class.template_fields)
            kwargs = {
                k: v.value if isinstance(v, ResolvedValue) and k not in fields else v
                for k, v in kwargs.items()
            }
        op = self.operator_class.__new__(self.operator_class)
        op.__dict__["_defaults_applied"] = True  # applied at expand(); nothing is wired again
        op.__init__(task_id=self.task_id, **kwargs)  # type: ignore[misc]
        op._dag = self._dag
        op.task_group = self.task_group
        op.upstream_task_ids = self.upstream_task_ids
        op.downstream_task_ids = self.downstream_task_ids
        if self._conditions:
            op._conditions = self._conditions  # type: ignore[attr-defined]
        return op


#: BaseOperator's arguments: the scheduler reads them from the mapped task, so they can be
#: given to partial() but not mapped
_BASE_ARGS = BaseOperator._accepted_args


def _check_names(
    task_id: str, dag: DAG | None, accepted: frozenset[str] | None, partial: Mapping[str, Any],
    mapped: Mapping[str, Any], what: str,
) -> None:  # fmt: skip
    where = f"DAG {dag.dag_id!r}, task {task_id!r}" if dag else f"task {task_id!r}"
    for name in mapped:
        if name in partial:
            raise DagDefinitionError(
                f"{where}: {name!r} is given to both partial() and {what}: give it once"
            )
        if accepted is not None and name in _BASE_ARGS:
            raise DagDefinitionError(
                f"{where}: {name!r} cannot be mapped (the scheduler reads it from the task): "
                "give it to partial()"
            )
        if accepted is not None and name not in accepted:
            raise DagDefinitionError(
                f"{where}: {what} got {name!r}, which the task does not accept: check its "
                "spelling against the operator's signature"
            )


def _defaults(kwargs: dict[str, Any]) -> tuple[DAG | None, dict[str, Any]]:
    group = kwargs.get("task_group") or current_group(kwargs.get("dag") or current_dag())
    dag = kwargs.get("dag") or (group.dag if group is not None else current_dag())
    defaults = dict(dag.default_args) if dag is not None else {}
    defaults.update(group.default_args if group is not None else {})
    defaults.update(kwargs.pop("default_args", None) or {})
    return dag, defaults


def _mapped(
    operator_class: type[BaseOperator], partial: dict[str, Any], expand_input: ExpandInput,
    *, into_op_kwargs: bool, conditions: tuple[Any, ...] = (),
) -> MappedOperator:  # fmt: skip
    base = {k: v for k, v in partial.items() if k in _BASE_ARGS}
    op = MappedOperator(
        operator_class=operator_class,
        partial_kwargs={
            k: v for k, v in partial.items() if k not in ("dag", "task_group", "task_id")
        },
        expand_input=expand_input,
        into_op_kwargs=into_op_kwargs,
        **base,
    )
    op._conditions = conditions
    return op


class OperatorPartial:
    """`Operator.partial(**kwargs)`: the arguments shared by every instance; `.expand(...)`
    or `.expand_kwargs(...)` makes the mapped task."""

    def __init__(self, operator_class: type[BaseOperator], kwargs: dict[str, Any]) -> None:
        if "task_id" not in kwargs:
            raise DagDefinitionError(f"{operator_class.__name__}.partial() needs a task_id")
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        self.dag, defaults = _defaults(self.kwargs)
        accepted = operator_class._accepted_args
        unknown = set(self.kwargs) - accepted
        if unknown:
            raise DagDefinitionError(
                f"task {self.kwargs['task_id']!r}: {operator_class.__name__}.partial() got "
                f"unknown arguments {sorted(unknown)}: check their spelling"
            )
        for key, value in defaults.items():
            if key in accepted and key not in self.kwargs:
                self.kwargs[key] = value
        self._used = False

    def _make(
        self, expand_input: ExpandInput, mapped: Mapping[str, Any], what: str
    ) -> MappedOperator:
        if self._used:
            raise DagDefinitionError(
                f"task {self.kwargs['task_id']!r}: this partial() was already expanded"
            )
        self._used = True
        accepted = self.operator_class._accepted_args
        _check_names(self.kwargs["task_id"], self.dag, accepted, self.kwargs, mapped, what)
        return _mapped(self.operator_class, self.kwargs, expand_input, into_op_kwargs=False)

    def expand(self, **mapped: Any) -> MappedOperator:
        if not mapped:
            raise DagDefinitionError(
                f"task {self.kwargs['task_id']!r}: expand() needs at least one argument"
            )
        return self._make(DictOfListsExpandInput(self.kwargs["task_id"], mapped), mapped,
                          "expand()")  # fmt: skip

    def expand_kwargs(self, kwargs: Any) -> MappedOperator:
        _check_kwargs_value(self.kwargs["task_id"], kwargs)
        names: dict[str, Any] = {}
        if isinstance(kwargs, list | tuple):
            for entry in kwargs:
                if isinstance(entry, Mapping):
                    names.update(dict.fromkeys(entry))
        return self._make(ListOfDictsExpandInput(self.kwargs["task_id"], kwargs), names,
                          "expand_kwargs()")  # fmt: skip


def _check_kwargs_value(task_id: str, value: Any) -> None:
    if isinstance(value, XComArg):
        return
    if not isinstance(value, list | tuple) or not all(
        isinstance(e, Mapping | XComArg) for e in value
    ):
        raise DagDefinitionError(
            f"task {task_id!r}: expand_kwargs() takes a list of dicts or an XComArg, "
            f"got {value!r:.80}"
        )


__all__ = [
    "DEFAULT_MAX_MAP_LENGTH",
    "DictOfListsExpandInput",
    "ListOfDictsExpandInput",
    "MappedOperator",
    "MappingError",
    "OperatorPartial",
]
