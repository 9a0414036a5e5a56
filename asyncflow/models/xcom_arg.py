"""`XComArg`: a reference to a task's future XCom, resolved when the consuming task runs.

Passing one TaskFlow call's result into another wires the dependency and, at run time, the value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
        ti = context["ti"]
        group = self.operator.mapped_group
        if group is not None and ti.map_index >= 0 and context["task"].mapped_group is group:
            # a task of the same mapped task group: the instance of the same map index
            return ti.xcom_pull(
                task_ids=self.operator.task_id, key=self.key, map_indexes=ti.map_index
            )
        return ti.xcom_pull(task_ids=self.operator.task_id, key=self.key)

    def plain(self) -> Iterator[XComArg]:
        """The plain task references inside this one (what it depends on)."""
        yield self

    def resolve_sequence(self, context: Context) -> Sequence[Any]:
        """The value as a sequence to map over: a list or tuple as it is, a dict as its
        `(key, value)` items (as Airflow maps over a dict)."""
        return as_sequence(self.resolve(context), self)

    # -- dynamic task mapping helpers (Airflow's XComArg.map / zip / concat) ---------------
    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        """Each item passed through `f` when it is used (lazily, per mapped instance)."""
        if not callable(f):
            raise TypeError(f"{self!r}.map() needs a callable, got {f!r}")
        return MapXComArg(self, (f,))

    def zip(self, *others: Any, fillvalue: Any = ...) -> ZipXComArg:
        """Items of this and `others` paired up (the shortest length, or the longest with
        `fillvalue`)."""
        return ZipXComArg((self, *others), fillvalue)

    def concat(self, *others: Any) -> ConcatXComArg:
        """The items of this, then those of each of `others`."""
        return ConcatXComArg((self, *others))

    # setup / teardown, as the operator's
    def as_setup(self) -> XComArg:
        self.operator.as_setup()
        return self

    def as_teardown(
        self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None
    ) -> XComArg:
        self.operator.as_teardown(setups=setups, on_failure_fail_dagrun=on_failure_fail_dagrun)
        return self

    def __enter__(self) -> XComArg:
        self.operator.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.operator.__exit__(*exc)

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


def as_sequence(value: Any, where: Any) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, LazySequence):
        return value
    raise TypeError(
        f"{where!r} resolved to {type(value).__name__} {value!r:.80}: only a list, tuple or "
        "dict can be mapped over (return one from the upstream task)"
    )


class LazySequence(Sequence[Any]):
    """A sequence whose items are computed when read (what `.map()`, `.zip()` and
    `.concat()` resolve to): a mapped instance computes only its own item."""

    def __init__(self, length: int, item: Callable[[int], Any]) -> None:
        self._length = length
        self._item = item

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self._item(i) for i in range(*index.indices(self._length))]
        if index < 0:
            index += self._length
        if not 0 <= index < self._length:
            raise IndexError(index)
        return self._item(index)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"LazySequence({list(self)!r})"


class _Composite(XComArg):
    """An XComArg made of others (map, zip, concat): it depends on all of them."""

    __slots__ = ("args",)

    def __init__(self, args: tuple[Any, ...]) -> None:
        refs = [a for a in args if isinstance(a, XComArg)]
        if not refs:
            raise TypeError("zip() / concat() needs at least one XComArg")
        super().__init__(refs[0].operator, refs[0].key)
        self.args = args

    def plain(self) -> Iterator[XComArg]:
        for arg in self.args:
            if isinstance(arg, XComArg):
                yield from arg.plain()

    def resolve(self, context: Context) -> Any:
        return list(self.resolve_sequence(context))

    def _sequences(self, context: Context) -> list[Sequence[Any]]:
        return [
            a.resolve_sequence(context) if isinstance(a, XComArg) else as_sequence(a, a)
            for a in self.args
        ]


class MapXComArg(_Composite):
    __slots__ = ("callables",)

    def __init__(self, arg: XComArg, callables: tuple[Callable[[Any], Any], ...]) -> None:
        super().__init__((arg,))
        self.callables = callables

    def __repr__(self) -> str:
        return f"{self.args[0]!r}.map({', '.join(map(repr, self.callables))})"

    def map(self, f: Callable[[Any], Any]) -> MapXComArg:
        if not callable(f):
            raise TypeError(f"{self!r}.map() needs a callable, got {f!r}")
        return MapXComArg(self.args[0], (*self.callables, f))

    def resolve_sequence(self, context: Context) -> Sequence[Any]:
        (source,) = self._sequences(context)

        def item(index: int) -> Any:
            value = source[index]
            for f in self.callables:
                value = f(value)
            return value

        return LazySequence(len(source), item)


class ZipXComArg(_Composite):
    __slots__ = ("fillvalue",)

    def __init__(self, args: tuple[Any, ...], fillvalue: Any) -> None:
        super().__init__(args)
        self.fillvalue = fillvalue

    def __repr__(self) -> str:
        return f"zip({', '.join(map(repr, self.args))})"

    def resolve_sequence(self, context: Context) -> Sequence[Any]:
        sources = self._sequences(context)
        lengths = [len(s) for s in sources]
        longest = self.fillvalue is not ...
        length = max(lengths) if longest else min(lengths)

        def item(index: int) -> Any:
            return tuple(s[index] if index < len(s) else self.fillvalue for s in sources)

        return LazySequence(length, item)


class ConcatXComArg(_Composite):
    def __repr__(self) -> str:
        return f"concat({', '.join(map(repr, self.args))})"

    def resolve_sequence(self, context: Context) -> Sequence[Any]:
        sources = self._sequences(context)

        def item(index: int) -> Any:
            for source in sources:
                if index < len(source):
                    return source[index]
                index -= len(source)
            raise IndexError(index)

        return LazySequence(sum(len(s) for s in sources), item)


class ResolvedValue(XComArg):
    """A value already pulled from XCom for one mapped instance: it resolves to itself and
    is not rendered again as a template (as in Airflow); it depends on nothing."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value
        self.key = RETURN_KEY

    def __repr__(self) -> str:
        return f"ResolvedValue({self.value!r:.80})"

    def __str__(self) -> str:
        return str(self.value)

    def plain(self) -> Iterator[XComArg]:
        yield from ()

    def resolve(self, context: Context) -> Any:
        return self.value


def iter_references(value: Any) -> Iterator[XComArg]:
    """Every task reference inside a value (lists, tuples, sets and dict values,
    recursively; the parts of a zip / concat / map)."""
    if isinstance(value, XComArg):
        yield from value.plain()
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
