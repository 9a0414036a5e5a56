"""Jinja rendering of an operator's `template_fields` against the task's context.

Fields listed in `template_shell_fields` (BashOperator's `bash_command`) are rendered for a
shell: the value of every `{{ ... }}` is passed through `shlex.quote`, so data from a run's
`conf` or `params` stays data. `{{ value | shell_raw }}` opts out for trusted values.
jinja2 is imported on first use: a DAG without templates never pays for it.
"""

from __future__ import annotations

import copy
import shlex
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import AsyncflowError

if TYPE_CHECKING:
    import jinja2

    from asyncflow.models.baseoperator import BaseOperator, Context
    from asyncflow.models.dag import DAG


class RawShell(str):
    """A string that `shell_raw` marked as safe to paste into a shell command unquoted."""

    __slots__ = ()


def _shell_finalize(value: Any) -> str:
    if isinstance(value, RawShell):
        return str(value)
    return shlex.quote(str(value))


_environments: dict[tuple[int, bool], jinja2.Environment] = {}
_templates: dict[tuple[int, bool, str], jinja2.Template] = {}


def _environment(dag: DAG | None, shell: bool) -> jinja2.Environment:
    custom = dag is not None and bool(dag.user_defined_filters or dag.template_searchpath)
    key = (id(dag) if custom else 0, shell)
    env = _environments.get(key)
    if env is None:
        import jinja2

        searchpath = dag.template_searchpath if custom and dag is not None else None
        loader = jinja2.FileSystemLoader(searchpath) if searchpath else None
        env = jinja2.Environment(
            undefined=jinja2.StrictUndefined,
            loader=loader,
            finalize=_shell_finalize if shell else None,
            keep_trailing_newline=True,
            cache_size=0,
        )
        env.filters["shell_raw"] = RawShell
        if custom and dag is not None:
            env.filters.update(dag.user_defined_filters)
        _environments[key] = env
    return env


def has_template(value: Any) -> bool:
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple | set):
        return any(has_template(v) for v in value)
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    return False


def render(value: Any, context: Context, env: jinja2.Environment, key: int, shell: bool) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        tkey = (key, shell, value)
        template = _templates.get(tkey)
        if template is None:
            if len(_templates) > 4096:
                _templates.clear()
            template = _templates[tkey] = env.from_string(value)
        return template.render(context)
    if isinstance(value, list | tuple | set):
        return type(value)(render(v, context, env, key, shell) for v in value)
    if isinstance(value, dict):
        return {k: render(v, context, env, key, shell) for k, v in value.items()}
    return value


def render_task(task: BaseOperator, context: Context) -> BaseOperator:
    """`task` itself when it has nothing to render, else a copy with its fields rendered."""
    if not task.template_fields or task.__dict__.get("_static_templates"):
        return task
    fields = [f for f in task.template_fields if has_template(getattr(task, f, None))]
    if not fields:
        task.__dict__["_static_templates"] = True  # definitions are immutable once loaded
        return task
    import jinja2

    clone = copy.copy(task)
    for name in fields:
        shell = name in task.template_shell_fields
        env = _environment(task.dag, shell)
        try:
            rendered = render(getattr(task, name), context, env, id(env), shell)
        except jinja2.TemplateError as exc:
            raise AsyncflowError(
                f"task {task.task_id!r}: cannot render template field {name!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        setattr(clone, name, rendered)
    return clone
