"""Operators that call a Python function: plain, branching and short-circuiting.

A sync callable runs in a worker thread, an async one on the event loop. A callable that
declares `**context` (or names keys such as `ds`, `ti`, `params`) receives the template context.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from asyncflow.models.baseoperator import BaseOperator, Context, RunsIn
from asyncflow.models.checks import mapping, show
from asyncflow.models.xcom_arg import has_references, resolve_references
from asyncflow.operators.branch import follow_branches
from asyncflow.threads import run_sync


@functools.lru_cache(maxsize=4096)
def _signature(
    func: Callable[..., Any],
) -> tuple[bool, tuple[str, ...], tuple[str, ...], bool]:
    """(takes **kwargs, positional-or-keyword names, keyword-only names, is a coroutine
    function), once per callable."""
    params = inspect.signature(func).parameters.values()
    var_kw = any(p.kind is p.VAR_KEYWORD for p in params)
    positional = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    keyword_only = tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY)
    return var_kw, positional, keyword_only, inspect.iscoroutinefunction(func)


def context_kwargs(
    func: Callable[..., Any], n_args: int, given: Mapping[str, Any], context: Context
) -> dict[str, Any]:
    """The context entries `func` asks for, beyond what its arguments already fill.
    Positional arguments fill positional parameters only, never keyword-only ones."""
    var_kw, positional, keyword_only, _ = _signature(func)
    if var_kw:
        taken = set(positional[:n_args]) | set(given)
        return {k: v for k, v in context.items() if k not in taken}
    open_names = (*positional[n_args:], *keyword_only)
    return {n: context[n] for n in open_names if n in context and n not in given}


async def call_callable(
    func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any], context: Context
) -> Any:
    extra = context_kwargs(func, len(args), kwargs, context)
    all_kwargs = {**kwargs, **extra} if extra else kwargs
    if _signature(func)[3]:
        return await func(*args, **all_kwargs)
    return await run_sync(functools.partial(func, *args, **all_kwargs))


class PythonOperator(BaseOperator):
    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")
    ui_color = "#ffefeb"

    @property
    def runs_in(self) -> RunsIn:
        return "loop" if inspect.iscoroutinefunction(self.python_callable) else "thread"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        templates_exts: Sequence[str] | None = None,
        show_return_value_in_logs: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = self.where()
        if templates_exts is not None:  # a value ending so is a template file's name
            if isinstance(templates_exts, str) or not (
                isinstance(templates_exts, Sequence)
                and all(isinstance(ext, str) for ext in templates_exts)
            ):
                raise where.error(
                    f"templates_exts={show(templates_exts)} is not a list of file name endings "
                    "such as ['.sql']"
                )
            self.template_ext = tuple(templates_exts)
        if not callable(python_callable):
            raise where.error(f"python_callable must be callable, got {show(python_callable)}")
        self.python_callable = python_callable
        if op_args is not None and (
            isinstance(op_args, str | bytes | Mapping) or not isinstance(op_args, Sequence)
        ):
            raise where.error(f"op_args={show(op_args)} is not a list of arguments")
        self.op_args = list(op_args or ())
        self.op_kwargs = mapping(where, "op_kwargs", op_kwargs)
        if not all(isinstance(key, str) for key in self.op_kwargs):
            raise where.error(f"op_kwargs={show(op_kwargs)} has keys that are not strings")
        self.templates_dict = (
            mapping(where, "templates_dict", templates_dict) if templates_dict is not None else None
        )
        self.show_return_value_in_logs = bool(show_return_value_in_logs)
        self._has_refs = has_references(self.op_args) or has_references(self.op_kwargs)

    async def execute(self, context: Context) -> Any:
        args: Sequence[Any] = self.op_args
        kwargs: Mapping[str, Any] = self.op_kwargs
        if self._has_refs:
            args = resolve_references(args, context)
            kwargs = resolve_references(kwargs, context)
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        return await self.execute_callable(args, kwargs, context)

    async def execute_callable(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], context: Context
    ) -> Any:
        return await call_callable(self.python_callable, args, kwargs, context)


def _downstream_closure(task: BaseOperator) -> set[str]:
    dag = task.dag
    assert dag is not None
    seen: set[str] = set()
    todo = list(task.downstream_task_ids)
    while todo:
        tid = todo.pop()
        if tid not in seen:
            seen.add(tid)
            todo.extend(dag.task_dict[tid].downstream_task_ids)
    return seen


class BranchPythonOperator(PythonOperator):
    """The callable returns the task_id (or list of task_ids) to follow; the other direct
    downstream tasks are skipped, and their downstream follow their trigger rules.

    As in Airflow, a direct downstream task that is also downstream of a followed task is not
    skipped: in `branch >> [task1, join]; task1 >> join`, following `task1` runs `join` too."""

    async def execute(self, context: Context) -> Any:
        chosen = await super().execute(context)
        follow_branches(self, chosen, context)
        return chosen


class ShortCircuitOperator(PythonOperator):
    """A falsy return value skips the downstream: every task below when
    `ignore_downstream_trigger_rules` (the default), else only the direct downstream."""

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    async def execute(self, context: Context) -> Any:
        condition = await super().execute(context)
        if not condition:
            if self.ignore_downstream_trigger_rules:
                context["ti"].skip(_downstream_closure(self))
            else:
                context["ti"].skip(self.downstream_task_ids)
        return condition
