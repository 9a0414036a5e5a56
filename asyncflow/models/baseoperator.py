"""`BaseOperator`: one task of a DAG. Subclass it and implement `execute(context)`.

`execute` may be `async def` (it runs on the event loop) or plain `def` (it runs in a worker
thread). `default_args` of the DAG fill every constructor argument the operator accepts and the
caller did not pass, as in Airflow.
"""

from __future__ import annotations

import copy
import functools
import inspect
import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NoReturn

from asyncflow.exceptions import (
    CrossDagDependencyError,
    DagDefinitionError,
    InvalidTriggerRuleError,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
)
from asyncflow.models import checks
from asyncflow.models.asset import BaseAsset, outlets_of
from asyncflow.models.dag import DAG, current_dag
from asyncflow.models.dependency import Relatable
from asyncflow.models.docs import read_doc_md, warn_unsent_email
from asyncflow.models.param import Param, as_params, check_defaults
from asyncflow.models.priority import PriorityWeightStrategy, load_weight_rule
from asyncflow.models.retry_policy import RetryPolicy
from asyncflow.models.taskgroup import TaskGroup, current_group
from asyncflow.models.trigger_rule import TriggerRule, WeightRule

if TYPE_CHECKING:
    from asyncflow.models.mapped_group import MappedTaskGroup
    from asyncflow.models.xcom_arg import XComArg
    from asyncflow.triggers.base import BaseTrigger, StartTriggerArgs

Context = dict[str, Any]
TaskCallback = Callable[[Context], Any]
#: `pre_execute=`: called with the context right before `execute`
PreExecuteHook = Callable[[Context], Any]
#: `post_execute=`: called with the context and execute's result right after it
PostExecuteHook = Callable[[Context, Any], Any]
DependencyTarget = "BaseOperator | XComArg | Sequence[BaseOperator | XComArg]"


def _accepted_arguments(cls: type) -> frozenset[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        init = getattr(init, "__wrapped__", init)
        for param in inspect.signature(init).parameters.values():
            if param.kind in (param.KEYWORD_ONLY, param.POSITIONAL_OR_KEYWORD):
                names.add(param.name)
    names.discard("self")
    return frozenset(names)


def _apply_defaults(init: Callable[..., None]) -> Callable[..., None]:
    @functools.wraps(init)
    def wrapper(self: BaseOperator, *args: Any, **kwargs: Any) -> None:
        if "_defaults_applied" in self.__dict__:
            init(self, *args, **kwargs)
            return
        self.__dict__["_defaults_applied"] = True
        if args:
            raise DagDefinitionError(
                f"{type(self).__name__} takes keyword arguments only, got positional {args!r}",
                task_id=kwargs.get("task_id"),
            )
        _check_owners(kwargs)
        group = kwargs.get("task_group") or current_group(kwargs.get("dag") or current_dag())
        dag = kwargs.get("dag") or (group.dag if group is not None else current_dag())
        defaults = dict(dag.default_args) if dag is not None else {}
        defaults.update(group.default_args if group is not None else {})
        where = checks.Where(dag.dag_id if dag else None, dag.fileloc if dag else None)
        defaults.update(checks.mapping(where, "default_args", kwargs.pop("default_args", None)))
        accepted = type(self)._accepted_args
        for key, value in defaults.items():
            if key in accepted and key not in kwargs:
                kwargs[key] = value
        init(self, **kwargs)
        self._wire_references()

    return wrapper


def _check_owners(kwargs: dict[str, Any]) -> None:
    """`dag=` and `task_group=` are what they say, before anything reads them."""
    dag, group = kwargs.get("dag"), kwargs.get("task_group")
    owner = dag if isinstance(dag, DAG) else current_dag()
    where = checks.Where(
        owner.dag_id if owner else None,
        owner.fileloc if owner else None,
        kwargs.get("task_id") if isinstance(kwargs.get("task_id"), str) else None,
    )
    if dag is not None and not isinstance(dag, DAG):
        raise where.error(f"dag={checks.show(dag)} is not a DAG")
    if group is not None and not isinstance(group, TaskGroup):
        raise where.error(f"task_group={checks.show(group)} is not a TaskGroup")


def _operator_logger(cls: type[Any]) -> logging.Logger:
    logger = logging.getLogger(f"asyncflow.task.operators.{cls.__module__}.{cls.__qualname__}")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # INFO lines reach the attempt log (root is WARNING)
    return logger


#: where an attempt does its work (see `BaseOperator.runs_in`)
RunsIn = Literal["loop", "thread", "process"]


class BaseOperator(Relatable):
    """The base of every operator. Identity is `task_id` within its DAG."""

    template_fields: ClassVar[Sequence[str]] = ()
    #: template fields rendered for a shell: every `{{ ... }}` value is shell-quoted
    template_shell_fields: ClassVar[Sequence[str]] = ()
    #: a template field's string value ending with one of these names a template file, read
    #: from the DAG file's folder or the DAG's template_searchpath (``"run.sh"``)
    template_ext: Sequence[str] = ()
    ui_color: ClassVar[str] = "#fff"
    _accepted_args: ClassVar[frozenset[str]] = frozenset()
    _is_async: ClassVar[bool] = False
    #: a MappedOperator (models/mapped.py), or a task of a mapped task group: one instance per
    #: item of what it (or its group) maps over
    is_mapped: bool = False
    #: the mapped task group this task is in (models/mapped_group.py), if any
    mapped_group: MappedTaskGroup | None = None
    #: XCom keys of this task that a mapped task maps over: each must be a list or dict
    map_source_keys: frozenset[str] = frozenset()
    #: setup / teardown tasks (`as_setup()`, `as_teardown()`, `@setup`, `@teardown`)
    is_setup: bool = False
    is_teardown: bool = False
    #: a teardown whose failure fails the run (by default a teardown's outcome does not count)
    on_failure_fail_dagrun: bool = False

    @property
    def runs_in(self) -> RunsIn:
        """Where an attempt does its work, which decides the slots it takes: `loop` (an
        `async def` on the event loop: cheap, thousands at once), `thread` (sync code in a
        worker thread) or `process` (a subprocess, bounded by the machine's CPUs)."""
        return "loop" if self._is_async else "thread"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _apply_defaults(cls.__dict__["__init__"])  # type: ignore[method-assign]
        cls._accepted_args = _accepted_arguments(cls)
        cls._is_async = inspect.iscoroutinefunction(cls.execute)

    def __init__(
        self,
        *,
        task_id: str,
        dag: DAG | None = None,
        owner: str = "asyncflow",
        retries: int = 0,
        retry_delay: timedelta | float = timedelta(seconds=300),
        retry_exponential_backoff: bool = False,
        max_retry_delay: timedelta | float | None = None,
        retry_policy: RetryPolicy | None = None,
        execution_timeout: timedelta | float | None = None,
        trigger_rule: str = TriggerRule.ALL_SUCCESS,
        depends_on_past: bool = False,
        wait_for_downstream: bool = False,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        pool: str | None = None,
        pool_slots: int = 1,
        priority_weight: int = 1,
        weight_rule: str | PriorityWeightStrategy = WeightRule.DOWNSTREAM,
        max_active_tis_per_dag: int | None = None,
        params: dict[str, Any] | None = None,
        do_xcom_push: bool = True,
        multiple_outputs: bool = False,
        on_success_callback: TaskCallback | Sequence[TaskCallback] | None = None,
        on_failure_callback: TaskCallback | Sequence[TaskCallback] | None = None,
        on_retry_callback: TaskCallback | Sequence[TaskCallback] | None = None,
        on_execute_callback: TaskCallback | Sequence[TaskCallback] | None = None,
        pre_execute: PreExecuteHook | None = None,
        post_execute: PostExecuteHook | None = None,
        doc_md: str | None = None,
        queue: str | None = None,
        email: str | Iterable[str] | None = None,
        email_on_failure: bool = True,
        email_on_retry: bool = True,
        task_group: TaskGroup | None = None,
        task_display_name: str | None = None,
        outlets: Any = None,
        inlets: Any = None,
        **kwargs: Any,
    ) -> None:
        _check_owners({"dag": dag, "task_group": task_group, "task_id": task_id})
        group = task_group or current_group(dag or current_dag())
        dag = dag or (group.dag if group is not None else None)
        owner_dag = dag or current_dag() or _NoDag
        if not isinstance(task_id, str) or not checks.KEY.fullmatch(task_id):
            raise DagDefinitionError(
                f"task_id={checks.show(task_id)} is not a valid task_id: use 1 to 250 letters, "
                "digits, dashes, dots and underscores",
                dag_id=owner_dag.dag_id,
                fileloc=owner_dag.fileloc,
            )
        where = checks.Where(owner_dag.dag_id, owner_dag.fileloc, task_id)
        if kwargs:
            raise where.error(
                f"{type(self).__name__} got unknown arguments {sorted(kwargs)}: "
                "check their spelling against the operator's signature"
            )
        if group is not None:
            task_id = group.child_id(task_id)
            where = checks.Where(owner_dag.dag_id, owner_dag.fileloc, task_id)
        self.task_id = task_id
        self.task_group = group
        self.task_display_name = (
            checks.optional_string(where, "task_display_name", task_display_name) or task_id
        )
        self.owner = checks.optional_string(where, "owner", owner) or "asyncflow"
        self.retries = checks.count(where, "retries", retries)
        self.retry_delay = checks.duration(where, "retry_delay", retry_delay)
        self.retry_exponential_backoff = bool(retry_exponential_backoff)
        self.max_retry_delay = checks.optional_duration(where, "max_retry_delay", max_retry_delay)
        if retry_policy is not None and not isinstance(retry_policy, RetryPolicy):
            raise where.error(f"retry_policy={checks.show(retry_policy)} is not a RetryPolicy")
        self.retry_policy = retry_policy
        self.execution_timeout = checks.optional_duration(
            where, "execution_timeout", execution_timeout, positive=True
        )
        try:
            self.trigger_rule = TriggerRule(trigger_rule)
        except Exception:  # ValueError, or whatever hashing a strange object raises
            raise InvalidTriggerRuleError(
                f"trigger_rule {checks.show(trigger_rule)} is unknown: use one of "
                f"{[r.value for r in TriggerRule]}",
                dag_id=where.dag_id,
                fileloc=where.fileloc,
                task_id=task_id,
            ) from None
        try:  # a built-in rule, or a PriorityWeightStrategy (models/priority.py)
            self.weight_rule: WeightRule | PriorityWeightStrategy = load_weight_rule(weight_rule)
        except ValueError as exc:
            raise where.error(f"weight_rule {checks.show(weight_rule)} {exc}") from None
        self.depends_on_past = bool(depends_on_past or wait_for_downstream)
        self.wait_for_downstream = bool(wait_for_downstream)
        self.start_date = checks.moment(where, "start_date", start_date)
        self.end_date = checks.moment(where, "end_date", end_date)
        self.pool = checks.optional_string(where, "pool", pool)
        self.pool_slots = checks.count(where, "pool_slots", pool_slots, minimum=1)
        self.priority_weight = checks.clamp_count(where, "priority_weight", priority_weight)
        self.max_active_tis_per_dag = checks.optional_count(
            where, "max_active_tis_per_dag", max_active_tis_per_dag
        )
        self.params: dict[str, Param] = as_params(checks.mapping(where, "params", params))
        scheduled = isinstance(owner_dag, DAG) and owner_dag.timetable.can_be_scheduled
        check_defaults(self.params, where, required=scheduled)
        self.do_xcom_push = bool(do_xcom_push)
        self.multiple_outputs = bool(multiple_outputs)
        self.on_success_callback = checks.callbacks(
            where, "on_success_callback", on_success_callback
        )
        self.on_failure_callback = checks.callbacks(
            where, "on_failure_callback", on_failure_callback
        )
        self.on_retry_callback = checks.callbacks(where, "on_retry_callback", on_retry_callback)
        self.on_execute_callback = checks.callbacks(
            where, "on_execute_callback", on_execute_callback
        )
        for name, hook in (("pre_execute", pre_execute), ("post_execute", post_execute)):
            if hook is not None and not callable(hook):
                raise where.error(f"{name}={checks.show(hook)} is not a callable")
        self.pre_execute_hook = pre_execute
        self.post_execute_hook = post_execute
        self.doc_md = read_doc_md(checks.optional_string(where, "doc_md", doc_md), where.fileloc)
        self.queue = checks.optional_string(where, "queue", queue)
        self.email = email
        self.email_on_failure = bool(email_on_failure)
        self.email_on_retry = bool(email_on_retry)
        warn_unsent_email(
            email,
            email_on_failure=self.email_on_failure,
            email_on_retry=self.email_on_retry,
            dag_id=where.dag_id,
            fileloc=where.fileloc,
            task_id=task_id,
        )
        try:  # the assets this task updates on success, and those it reads
            self.outlets: list[BaseAsset] = outlets_of(outlets, what="outlets")
            self.inlets: list[BaseAsset] = outlets_of(inlets, what="inlets")
        except ValueError as exc:
            raise where.error(str(exc)) from None
        self.upstream_task_ids: set[str] = set()
        self.downstream_task_ids: set[str] = set()
        self._dag: DAG | None = None
        dag = dag or current_dag()
        if dag is not None:
            self.dag = dag
        if group is not None:
            group.add(self)

    # -- identity -----------------------------------------------------------------------
    @property
    def dag(self) -> DAG | None:
        return self._dag

    @dag.setter
    def dag(self, dag: DAG) -> None:
        if self._dag is dag:
            return
        if self._dag is not None:
            raise CrossDagDependencyError(
                f"task is already in DAG {self._dag.dag_id!r} and cannot move to {dag.dag_id!r}",
                task_id=self.task_id,
            )
        dag.add_task(self)
        self._dag = dag

    def where(self) -> checks.Where:
        """This task's place, for the errors its arguments' checks raise."""
        dag = self._dag
        return checks.Where(self.dag_id, dag.fileloc if dag else None, self.task_id)

    @property
    def dag_id(self) -> str:
        return self._dag.dag_id if self._dag is not None else "(no DAG)"

    def __repr__(self) -> str:
        return f"<Task({type(self).__name__}): {self.task_id}>"

    # -- mapped instances (a task of a mapped task group; MappedOperator overrides) -------
    def map_length(self, context: Context) -> int:
        """How many instances this mapped task has in the run of `context`."""
        if self.mapped_group is None:
            raise TypeError(f"task {self.task_id!r} is not mapped")
        return self.mapped_group.expand_input.length(context)

    def unmap(self, context: Context) -> BaseOperator:
        """The operator instance `context["ti"].map_index` runs: for a task of a mapped group,
        a copy of this one (its arguments resolve per instance when rendered)."""
        return copy.copy(self)

    # -- the work -----------------------------------------------------------------------
    def execute(self, context: Context) -> Any:
        """Do the task's work; the return value becomes its XCom `return_value`."""
        raise NotImplementedError(f"{type(self).__name__} must implement execute(context)")

    # -- deferral (Airflow's): wait on a trigger without holding a slot ---------------
    #: begin deferred on `start_trigger_args`, without running execute (Airflow's)
    start_from_trigger: bool = False
    start_trigger_args: StartTriggerArgs | None = None

    def defer(self, *, trigger: BaseTrigger, method_name: str,
              kwargs: dict[str, Any] | None = None,
              timeout: timedelta | float | None = None) -> NoReturn:  # fmt: skip
        """Give the slot back and wait on `trigger`; when it fires, `method_name(context,
        event=<payload>, **kwargs)` runs as the rest of this try. Past `timeout` the task
        fails (its retries apply)."""
        if isinstance(timeout, (int, float)):
            timeout = timedelta(seconds=timeout)
        raise TaskDeferred(trigger=trigger, method_name=method_name, kwargs=kwargs,
                           timeout=timeout)  # fmt: skip

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None,
                         context: Context) -> Any:  # fmt: skip
        """Run the method a deferral named; `__fail__` is the engine saying the trigger
        failed or timed out."""
        kwargs = dict(next_kwargs or {})
        if next_method == "__fail__":
            error = kwargs.get("error", "unknown")
            traceback = kwargs.get("traceback")
            if error == "timeout":
                raise TaskDeferralTimeout(f"task {self.task_id!r}: the trigger did not fire "
                                          "within the deferral's timeout")  # fmt: skip
            detail = f"\n{traceback}" if traceback else ""
            raise TaskDeferralError(f"task {self.task_id!r}: the trigger failed: {error}{detail}")
        method = getattr(self, next_method, None)
        if method is None:
            raise TaskDeferralError(
                f"task {self.task_id!r} deferred to resume in {next_method}(), which "
                f"{type(self).__name__} does not have: check method_name in self.defer()"
            )
        return method(context, **kwargs)

    def pre_execute(self, context: Context) -> Any:
        """Called right before `execute` (after the `pre_execute=` callable): override it to
        prepare; raising fails the attempt."""

    def post_execute(self, context: Context, result: Any = None) -> Any:
        """Called right after `execute` returned `result` (after the `post_execute=`
        callable): override it to act on the result; raising fails the attempt."""

    def on_kill(self) -> None:
        """Called when a running attempt is stopped (cleared, marked, timed out, shut down):
        release what execute started outside the process (a remote job, say)."""

    @property
    def log(self) -> logging.Logger:
        """The operator's logger (Airflow's `self.log`): inside a running attempt its lines,
        INFO and up, land in that attempt's log."""
        return _operator_logger(type(self))

    @property
    def output(self) -> XComArg:
        from asyncflow.models.xcom_arg import XComArg

        return XComArg(self)

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """Dynamic task mapping: `Op.partial(task_id=..., shared=...).expand(arg=[...])` makes
        one task with an instance per item (see models/mapped.py)."""
        from asyncflow.models.mapped import OperatorPartial

        return OperatorPartial(cls, kwargs)

    # -- setup and teardown -------------------------------------------------------------
    def as_setup(self) -> BaseOperator:
        """This task sets up resources that teardown tasks release (Airflow's setup task)."""
        self._frozen_check()
        if self.is_teardown:
            raise self.where().error("a task cannot be both a setup and a teardown")
        self.is_setup = True
        return self

    def as_teardown(
        self, *, setups: Any = None, on_failure_fail_dagrun: bool | None = None
    ) -> BaseOperator:
        """This task releases what `setups` made: it runs once its upstream are done and at
        least one of its setups succeeded, even when the work between them failed; its own
        outcome does not decide the run's unless `on_failure_fail_dagrun=True`."""
        from asyncflow.models.xcom_arg import XComArg

        self._frozen_check()
        if self.is_setup:
            raise self.where().error("a task cannot be both a setup and a teardown")
        self.is_teardown = True
        self.trigger_rule = TriggerRule.ALL_DONE_SETUP_SUCCESS
        if on_failure_fail_dagrun is not None:
            self.on_failure_fail_dagrun = bool(on_failure_fail_dagrun)
        if setups is not None:
            items = setups if isinstance(setups, list | tuple | set) else [setups]
            for item in items:
                task = item.operator if isinstance(item, XComArg) else item
                if not isinstance(task, BaseOperator):
                    raise self.where().error(f"setups={item!r} is not a task")
                task.as_setup()
                task >> self
        return self

    def _frozen_check(self) -> None:
        if self._dag is not None and self._dag.frozen:
            raise self.where().error("cannot change the task: the DAG is loaded and immutable")

    def __enter__(self) -> BaseOperator:
        """`with teardown.as_teardown(setups=setup): work`: the tasks made inside the block
        run after the setups and before the teardown."""
        dag = self._dag or current_dag()
        if dag is None:
            raise self.where().error("`with task:` needs the task to be in a DAG")
        self.__dict__.setdefault("_blocks", []).append(len(dag.task_dict))
        return self

    def __exit__(self, *exc: object) -> None:
        dag = self._dag or current_dag()
        start = self.__dict__["_blocks"].pop()
        if exc[0] is not None or dag is None:
            return
        made = [t for t in list(dag.task_dict.values())[start:] if t is not self]
        inside = {t.task_id for t in made}
        setups = [self] if self.is_setup else [
            dag.task_dict[t] for t in self.upstream_task_ids if dag.task_dict[t].is_setup
        ]  # fmt: skip
        for task in made:
            if not task.upstream_task_ids & inside:
                for setup in setups:
                    if setup is not task:
                        setup >> task
            if self.is_teardown and not task.downstream_task_ids & inside:
                task >> self

    # -- dependencies -------------------------------------------------------------------
    def _wire_references(self) -> None:
        """An XComArg anywhere in a template field (`op_args=[a.output]`, `env={"X":
        a.output}`, `bash_command=a.output`) makes its task upstream of this one, as in
        Airflow; the field resolves to the pulled value when this task runs."""
        from asyncflow.models.xcom_arg import iter_references

        for name in self.template_fields:
            for ref in iter_references(getattr(self, name, None)):
                if ref.operator is not self:
                    self.set_upstream(ref.operator)

    def _relate(self, other: Any, *, upstream: bool) -> None:
        from asyncflow.models.edges import EdgeModifier
        from asyncflow.models.xcom_arg import XComArg

        items = other if isinstance(other, list | tuple | set) else [other]
        if any(isinstance(item, TaskGroup | EdgeModifier) for item in items):
            for item in items:
                if isinstance(item, TaskGroup | EdgeModifier):
                    item._relate_task(self, upstream=not upstream)
                else:
                    self._relate(item, upstream=upstream)
            return
        for item in items:
            task = item.operator if isinstance(item, XComArg) else item
            if not isinstance(task, BaseOperator):
                raise DagDefinitionError(
                    f"cannot set a dependency on {item!r}: expected a task, XComArg or a list",
                    dag_id=self.dag_id,
                    task_id=self.task_id,
                )
            self._same_dag(task)
            if upstream:
                self.upstream_task_ids.add(task.task_id)
                task.downstream_task_ids.add(self.task_id)
            else:
                self.downstream_task_ids.add(task.task_id)
                task.upstream_task_ids.add(self.task_id)

    def _same_dag(self, other: BaseOperator) -> None:
        mine, theirs = self._dag, other._dag
        if mine is not None and theirs is not None and mine is not theirs:
            raise CrossDagDependencyError(
                f"cannot link {self.task_id!r} (DAG {mine.dag_id!r}) with {other.task_id!r} "
                f"(DAG {theirs.dag_id!r}): a dependency must stay inside one DAG",
                dag_id=mine.dag_id,
                fileloc=mine.fileloc,
            )
        if mine is None and theirs is not None:
            self.dag = theirs
        elif theirs is None and mine is not None:
            other.dag = mine
        if self._dag is not None and self._dag.frozen:
            raise DagDefinitionError(
                "cannot change dependencies: the DAG is loaded and immutable",
                dag_id=self._dag.dag_id,
                task_id=self.task_id,
            )

    def render_template(self, content: Any, context: Context) -> Any:
        """`content` (a string, or strings inside lists and dicts) rendered with Jinja against
        `context`, in this task's DAG's environment (user_defined_macros, filters...)."""
        from importlib import import_module

        templating = import_module("asyncflow.engine.templating")  # the engine renders
        if isinstance(content, str):
            return templating.render_string(self, content, context)
        if isinstance(content, list | tuple | set):
            return type(content)(self.render_template(v, context) for v in content)
        if isinstance(content, dict):
            return {k: self.render_template(v, context) for k, v in content.items()}
        return content

    def set_upstream(self, other: Any) -> None:
        self._relate(other, upstream=True)

    def set_downstream(self, other: Any) -> None:
        self._relate(other, upstream=False)


class _NoDag:
    dag_id: str | None = None
    fileloc: str | None = None


BaseOperator.__init__ = _apply_defaults(BaseOperator.__init__)  # type: ignore[method-assign]
BaseOperator._accepted_args = _accepted_arguments(BaseOperator)
