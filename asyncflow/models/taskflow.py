"""TaskFlow: `@task` and `@dag`. A task's return value is its XCom; passing one call's result
into another call wires the dependency and the value.

    @task(retries=2)
    async def fetch(url): ...
    @task
    def store(pages): ...
    store([fetch(u) for u in urls])
"""

from __future__ import annotations

import functools
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, Generic, TypeVar, overload

from asyncflow.exceptions import AsyncflowSkipException, DagDefinitionError
from asyncflow.models import checks, unsupported
from asyncflow.models.baseoperator import BaseOperator, Context, RunsIn
from asyncflow.models.dag import DAG, current_dag
from asyncflow.models.param import Param
from asyncflow.models.taskgroup import TaskGroup, current_group
from asyncflow.models.xcom_arg import DagParam, XComArg, iter_references
from asyncflow.operators.bash import (
    checked_processor,
    child_environment,
    process_output,
    run_bash,
)
from asyncflow.operators.python import (
    BranchPythonOperator,
    PythonOperator,
    ShortCircuitOperator,
    call_callable,
)
from asyncflow.operators.python_virtualenv import (
    BranchExternalPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonVirtualenvOperator,
)
from asyncflow.sensors.python import PythonSensor

F = TypeVar("F", bound=Callable[..., Any])
OpT = TypeVar("OpT", bound=BaseOperator)

_SUFFIX = re.compile(r"^(.*)__(\d+)$")


def unique_task_id(task_id: str, dag: DAG | None, group: TaskGroup | None = None) -> str:
    """`io`, then `io__1`, `io__2`...: calling one @task twice in a DAG (or in one task group,
    where the ids carry the group's prefix) gives distinct ids."""
    full = group.child_id(task_id) if group is not None else task_id
    if dag is None or full not in dag.task_dict:
        return task_id
    base = full
    used = [0]
    for existing in dag.task_dict:
        match = _SUFFIX.match(existing)
        if match and match.group(1) == base:
            used.append(int(match.group(2)))
    return f"{task_id}__{max(used) + 1}"


#: (condition, run when it is true (run_if) or skip when it is true (skip_if), message)
Condition = tuple[Callable[[Context], Any], bool, str | None]


class _TaskFlowMixin:
    """Wires XComArgs found in the call's arguments as upstream tasks; checks the conditions of
    `@task.run_if` / `@task.skip_if` before the work starts."""

    _conditions: tuple[Condition, ...] = ()

    def _wire(self: Any, args: Sequence[Any], kwargs: Mapping[str, Any]) -> None:
        for ref in iter_references([list(args), dict(kwargs)]):
            self.set_upstream(ref.operator)

    async def execute(self, context: Context) -> Any:
        for condition, run_when, message in self._conditions:
            if bool(condition(context)) is not run_when:
                raise AsyncflowSkipException(message or "the task's run_if/skip_if condition")
        return await super().execute(context)  # type: ignore[misc]


class DecoratedPythonOperator(_TaskFlowMixin, PythonOperator):
    async def execute(self, context: Context) -> Any:
        result = await super().execute(context)
        if self.multiple_outputs and isinstance(result, dict):
            for key, value in result.items():
                context["ti"].xcom_push(key=str(key), value=value)
        return result


class DecoratedBranchOperator(_TaskFlowMixin, BranchPythonOperator):
    pass


class DecoratedSensorOperator(_TaskFlowMixin, PythonSensor):
    """`@task.sensor`: the function is the poke; it returns a bool or a PokeReturnValue."""


class DecoratedShortCircuitOperator(_TaskFlowMixin, ShortCircuitOperator):
    pass


class DecoratedBashOperator(_TaskFlowMixin, PythonOperator):
    """`@task.bash`: the function returns the command to run."""

    template_fields: ClassVar[Sequence[str]] = (*PythonOperator.template_fields, "env", "cwd")
    runs_in: RunsIn = "process"

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        cwd: str | None = None,
        skip_on_exit_code: int | Sequence[int] | None = 99,
        output_processor: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = self.where()
        self.output_processor = checked_processor(where, output_processor)
        self.env = checks.mapping(where, "env", env) if env is not None else None
        self.append_env = bool(append_env)
        self.cwd = checks.optional_string(where, "cwd", cwd)
        self.skip_on_exit_code = checks.exit_codes(where, skip_on_exit_code)

    async def execute_callable(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], context: Context
    ) -> Any:
        command = await call_callable(self.python_callable, args, kwargs, context)
        if not isinstance(command, str) or not command.strip():
            raise TypeError(
                f"@task.bash {self.task_id!r} must return a non-empty command string, "
                f"got {command!r}"
            )
        output = await run_bash(
            command,
            env=child_environment(self.env, self.append_env),
            cwd=self.cwd,
            encoding="utf-8",
            skip_on_exit_code=self.skip_on_exit_code,
            grace=5.0,
            ti=context.get("ti"),
        )
        return process_output(self, output, context)


class DecoratedVirtualenvOperator(_TaskFlowMixin, PythonVirtualenvOperator):
    """`@task.virtualenv`: the function runs in a virtualenv built for its requirements."""


class DecoratedExternalPythonOperator(_TaskFlowMixin, ExternalPythonOperator):
    """`@task.external_python(python=...)`: the function runs in that Python."""


class DecoratedBranchVirtualenvOperator(_TaskFlowMixin, BranchPythonVirtualenvOperator):
    pass


class DecoratedBranchExternalPythonOperator(_TaskFlowMixin, BranchExternalPythonOperator):
    pass


def infer_multiple_outputs(function: Callable[..., Any]) -> bool:
    """Airflow's rule: a function annotated to return a mapping (`-> dict[str, int]`) pushes
    each key as its own XCom, unless `multiple_outputs=` says otherwise."""
    if "return" not in getattr(function, "__annotations__", {}):
        return False
    try:
        return_type = typing.get_type_hints(function).get("return")
    except Exception:  # an annotation that does not resolve (a local name): do not guess
        return False
    origin = typing.get_origin(return_type) or return_type
    return isinstance(origin, type) and issubclass(origin, Mapping)


class TaskDecorator(Generic[F]):
    """What `@task` returns: call it inside a DAG to add a task; `.override()` for variants."""

    def __init__(
        self,
        function: F,
        operator_class: type[BaseOperator],
        kwargs: Mapping[str, Any],
        conditions: tuple[Condition, ...] = (),
    ) -> None:
        self.function = function
        self.operator_class = operator_class
        self.kwargs = dict(kwargs)
        self.conditions = conditions
        if "multiple_outputs" not in self.kwargs and operator_class is DecoratedPythonOperator:
            self.kwargs["multiple_outputs"] = infer_multiple_outputs(function)
        functools.update_wrapper(self, function)

    def __call__(self, *args: Any, **kwargs: Any) -> XComArg:
        options = dict(self.kwargs)
        role = options.pop("_role", None)
        group = options.get("task_group") or current_group(options.get("dag") or current_dag())
        dag = options.get("dag") or (group.dag if group is not None else current_dag())
        task_id = unique_task_id(options.pop("task_id", self.function.__name__), dag, group)
        op = self.operator_class(
            task_id=task_id,
            python_callable=self.function,
            op_args=args,
            op_kwargs=kwargs,
            **options,
        )
        assert isinstance(op, _TaskFlowMixin)
        op._wire(args, kwargs)
        op._conditions = self.conditions
        _apply_role(op, role)
        return XComArg(op)

    def override(self, **kwargs: Any) -> TaskDecorator[F]:
        return TaskDecorator(
            self.function, self.operator_class, {**self.kwargs, **kwargs}, self.conditions
        )

    def with_condition(self, condition: Condition) -> TaskDecorator[F]:
        """This decorator with one more `run_if`/`skip_if` condition (checked in order)."""
        return TaskDecorator(
            self.function, self.operator_class, self.kwargs, (condition, *self.conditions)
        )

    # -- dynamic task mapping ---------------------------------------------------------
    def partial(self, **kwargs: Any) -> _TaskPartial:
        """Arguments every mapped instance shares: `add.partial(y=1).expand(x=[1, 2])`."""
        return _TaskPartial(self, kwargs)

    def expand(self, **mapped: Any) -> XComArg:
        """One task instance per item (the cross product of several arguments)."""
        return _TaskPartial(self, {}).expand(**mapped)

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        """One task instance per dict of arguments."""
        return _TaskPartial(self, {}).expand_kwargs(kwargs)


class _TaskPartial:
    def __init__(self, decorator: TaskDecorator[Any], kwargs: dict[str, Any]) -> None:
        self.decorator = decorator
        self.kwargs = kwargs
        self.signature = inspect.signature(decorator.function)

    def _accepts(self, names: Iterable[str], what: str) -> None:
        params = self.signature.parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return
        for name in names:
            if name not in params:
                raise DagDefinitionError(
                    f"@task {self.decorator.function.__name__!r}: {what} got {name!r}, which "
                    "the function does not take"
                )

    def _make(self, expand_input_of: Callable[[str], Any], names: Iterable[str],
              what: str) -> XComArg:  # fmt: skip
        from asyncflow.models.mapped import OperatorPartial

        names = list(names)
        self._accepts([*self.kwargs, *names], what)
        for name in names:
            if name in self.kwargs:
                raise DagDefinitionError(
                    f"@task {self.decorator.function.__name__!r}: {name!r} is given to both "
                    f"partial() and {what}: give it once"
                )
        deco = self.decorator
        options = dict(deco.kwargs)
        role = options.pop("_role", None)
        options.pop("multiple_outputs", None)  # a mapped task's XComs are per instance
        group = options.get("task_group") or current_group(options.get("dag") or current_dag())
        dag = options.get("dag") or (group.dag if group is not None else current_dag())
        task_id = unique_task_id(options.pop("task_id", deco.function.__name__), dag, group)
        partial = OperatorPartial(deco.operator_class, {
            **options, "task_id": task_id, "python_callable": deco.function,
            "op_kwargs": dict(self.kwargs),
        })  # fmt: skip
        from asyncflow.models.mapped import _mapped

        op = _mapped(deco.operator_class, partial.kwargs, expand_input_of(task_id),
                     into_op_kwargs=True, conditions=deco.conditions)  # fmt: skip
        _apply_role(op, role)
        return XComArg(op)

    def expand(self, **mapped: Any) -> XComArg:
        from asyncflow.models.mapped import DictOfListsExpandInput

        if not mapped:
            raise DagDefinitionError(
                f"@task {self.decorator.function.__name__!r}: expand() needs an argument"
            )
        return self._make(lambda tid: DictOfListsExpandInput(tid, mapped), mapped, "expand()")

    def expand_kwargs(self, kwargs: Any) -> XComArg:
        from asyncflow.models.mapped import ListOfDictsExpandInput, _check_kwargs_value

        name = self.decorator.function.__name__
        _check_kwargs_value(name, kwargs)
        names: list[str] = []
        if isinstance(kwargs, list | tuple):
            names = [k for entry in kwargs if isinstance(entry, Mapping) for k in entry]
        return self._make(lambda tid: ListOfDictsExpandInput(tid, kwargs), names, "expand_kwargs()")


def _apply_role(op: BaseOperator, role: tuple[str, bool | None] | None) -> None:
    if role is None:
        return
    kind, fail_dagrun = role
    if kind == "setup":
        op.as_setup()
    else:
        op.as_teardown(on_failure_fail_dagrun=fail_dagrun)


def _condition(
    condition: Callable[[Context], Any], run_when: bool, skip_message: str | None
) -> Callable[[TaskDecorator[F]], TaskDecorator[F]]:
    def decorate(decorated: TaskDecorator[F]) -> TaskDecorator[F]:
        if not isinstance(decorated, TaskDecorator):
            word = "run_if" if run_when else "skip_if"
            raise DagDefinitionError(
                f"@task.{word} must be placed above a @task decorator, got {decorated!r}"
            )
        return decorated.with_condition((condition, run_when, skip_message))

    return decorate


def _make(operator_class: type[BaseOperator]) -> Any:
    @overload
    def decorator(python_callable: F) -> TaskDecorator[F]: ...
    @overload
    def decorator(**kwargs: Any) -> Callable[[F], TaskDecorator[F]]: ...
    def decorator(python_callable: Any = None, **kwargs: Any) -> Any:
        if python_callable is not None:
            return TaskDecorator(python_callable, operator_class, kwargs)
        return lambda fn: TaskDecorator(fn, operator_class, kwargs)

    return decorator


class _TaskNamespace:
    """`@task`, `@task(...)`, `@task.python`, `@task.branch`, `@task.short_circuit`,
    `@task.bash`, `@task.sensor`, `@task.virtualenv`, `@task.external_python` (and their
    `branch_` variants); `@task.run_if(condition)` / `@task.skip_if(condition)` above
    one of them."""

    def __init__(self) -> None:
        self.python = _make(DecoratedPythonOperator)
        self.branch = _make(DecoratedBranchOperator)
        self.short_circuit = _make(DecoratedShortCircuitOperator)
        self.bash = _make(DecoratedBashOperator)
        self.sensor = _make(DecoratedSensorOperator)
        self.virtualenv = _make(DecoratedVirtualenvOperator)
        self.external_python = _make(DecoratedExternalPythonOperator)
        self.branch_virtualenv = _make(DecoratedBranchVirtualenvOperator)
        self.branch_external_python = _make(DecoratedBranchExternalPythonOperator)

    def __call__(self, python_callable: Any = None, **kwargs: Any) -> Any:
        return self.python(python_callable, **kwargs)

    @staticmethod
    def run_if(
        condition: Callable[[Context], Any], skip_message: str | None = None
    ) -> Callable[[TaskDecorator[F]], TaskDecorator[F]]:
        """Run the task only when `condition(context)` is true; else it ends `skipped`."""
        return _condition(condition, True, skip_message)

    @staticmethod
    def skip_if(
        condition: Callable[[Context], Any], skip_message: str | None = None
    ) -> Callable[[TaskDecorator[F]], TaskDecorator[F]]:
        """Skip the task when `condition(context)` is true."""
        return _condition(condition, False, skip_message)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise unsupported.task_decorator(name)


task = _TaskNamespace()


def setup(python_callable: Any = None, **kwargs: Any) -> Any:
    """`@setup`: a TaskFlow task that is a setup task (see `BaseOperator.as_setup`)."""
    role = ("setup", None)
    if python_callable is not None:
        return task.python(python_callable, **kwargs, _role=role)
    return task.python(**kwargs, _role=role)


def teardown(
    python_callable: Any = None, *, on_failure_fail_dagrun: bool = False, **kwargs: Any
) -> Any:
    """`@teardown`: a TaskFlow task that is a teardown task (see `BaseOperator.as_teardown`);
    `on_failure_fail_dagrun=True` lets its failure fail the run."""
    role = ("teardown", on_failure_fail_dagrun)
    if python_callable is not None:
        return task.python(python_callable, **kwargs, _role=role)
    return task.python(**kwargs, _role=role)


def dag(dag_id: str | None = None, **dag_kwargs: Any) -> Callable[[Callable[..., Any]], Any]:
    """`@dag(schedule=...)` on a function: calling it builds the DAG; its arguments with
    defaults become the DAG's params, passed to the body as references resolved per run."""

    def decorate(function: Callable[..., Any]) -> Callable[..., DAG]:
        signature = inspect.signature(function)

        @functools.wraps(function)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            bound = signature.bind_partial(*args, **kwargs)
            bound.apply_defaults()
            params = dict(dag_kwargs.get("params") or {})
            for name, value in bound.arguments.items():
                params.setdefault(name, value if isinstance(value, Param) else Param(value))
            options = {**dag_kwargs, "params": params}
            options.setdefault("doc_md", function.__doc__)
            with DAG(dag_id or function.__name__, **options) as new_dag:
                function(**{name: DagParam(name) for name in bound.arguments})
            return new_dag

        return factory

    return decorate
