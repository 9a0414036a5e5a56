"""Jinja rendering of an operator's `template_fields` against the task's context.

Fields listed in `template_shell_fields` (BashOperator's `bash_command`) are rendered for a
shell, and there no rendered value ever becomes shell text: each `{{ ... }}` value is put in an
environment variable of the subprocess (`ASYNCFLOW_TPL_<n>`), and the command refers to it with
the quoting its place calls for: `"${ASYNCFLOW_TPL_0}"` outside quotes, `${ASYNCFLOW_TPL_0}`
inside double quotes, `'"${ASYNCFLOW_TPL_0}"'` inside single quotes. A shell expands a variable
once and never re-reads its value as syntax, so a run's `conf` or `params` stays data wherever
the template puts it. `{{ value | shell_raw }}` pastes a trusted value as shell text.
jinja2 is imported on first use: a DAG without templates never pays for it.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncflow.engine.shellquote import ShellScanner
from asyncflow.exceptions import AsyncflowError
from asyncflow.models.xcom_arg import DagParam, XComArg

if TYPE_CHECKING:
    import jinja2

    from asyncflow.models.baseoperator import BaseOperator, Context
    from asyncflow.models.dag import DAG


class RawShell(str):
    """A string that `shell_raw` marked as safe to paste into a shell command as it is."""

    __slots__ = ()


TEMPLATE_VAR = "ASYNCFLOW_TPL_"
_EXPRESSION = re.compile(r"\{\{(-?)(.*?)(-?)\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_REFERENCE = {
    "bare": '"${{{}}}"',
    "double": "${{{}}}",
    "arith": "${{{}}}",
    "ansi": "'\"${{{}}}\"$'",
    "heredoc": "${{{}}}",
    "single": "'\"${{{}}}\"'",
}


#: values the engine makes from dates: digits, `-`, `:`, `T`, `+` (no shell syntax in them)
_ENGINE_VALUES = frozenset({"ds", "ds_nodash", "ts", "ts_nodash", "ts_nodash_with_tz"})
_TRUSTED = re.compile(r"(?s).*\|\s*shell_raw\s*$")


class ShellPositionError(ValueError):
    """A `{{ ... }}` stands where bash would read its value again as code."""

    def __init__(self, expression: str, position: str) -> None:
        self.expression = expression
        self.position = position
        super().__init__(
            f"{{{{ {expression} }}}} stands in {position}, where bash reads a value again as "
            "code (a value like x[$(touch F)] or `touch F` would run). Pass the value in "
            f"env= (env={{'VALUE': '{{{{ {expression} }}}}'}}) and use it as a quoted \"$VALUE\" "
            "in a place bash does not evaluate: an argument (bash -c 'echo \"$1\"' _ "
            '"$VALUE"), not an eval/-c string; check it before any arithmetic '
            "([[ $VALUE =~ ^[0-9]+$ ]]). If the value is trusted, mark it {{ ... | shell_raw }}."
        )


def _trusted(expression: str) -> bool:
    stripped = expression.strip()
    return stripped in _ENGINE_VALUES or bool(_TRUSTED.match(stripped))


def shell_template(source: str) -> str:
    """Rewrite each `{{ expr }}` of a shell template to pass through the filter for its place
    in the shell syntax (see shellquote). Raises ShellPositionError when an expression not
    marked `shell_raw` stands where bash would evaluate its value again."""
    scanner, last = ShellScanner(), 0
    pieces: list[tuple[str, re.Match[str] | None, str | None]] = []
    for match in _EXPRESSION.finditer(source):
        literal = source[last : match.start()]
        scanner.feed(literal)
        pieces.append((literal, None, None))
        if match.group(2) is None:  # {% ... %} or {# ... #}: left as it is
            pieces.append((match.group(0), None, None))
        else:
            pieces.append(("", match, scanner.heredoc_delimiter))
            scanner.value()
        last = match.end()
    scanner.feed(source[last:])
    sites = iter(scanner.finish())
    out: list[str] = []
    for text, found, delimiter in pieces:
        if found is None:
            out.append(text)
            continue
        left, expr, right = found.group(1), found.group(2), found.group(3)
        place, danger = next(sites)
        if danger is not None and not _trusted(expr):
            raise ShellPositionError(expr.strip(), danger)
        if place == "heredoc_raw":
            out.append(f"{{{{{left} ({expr}) | __shell_heredoc_raw({delimiter!r}) {right}}}}}")
        else:
            out.append(f"{{{{{left} ({expr}) | __shell_{place} {right}}}}}")
    out.append(source[last:])
    return "".join(out)


def _heredoc_raw(value: Any, delimiter: str) -> str:
    """Inside a quoted here-document nothing is expanded: the value is pasted as text, unless
    it holds the delimiter on a line of its own, which would end the document early."""
    text = "" if value is None else str(value)
    if any(line.strip("\t") == delimiter for line in text.splitlines()):
        raise ValueError(
            f"a template value contains the here-document delimiter {delimiter!r} on a line "
            "of its own: it would end the document early; use an unquoted delimiter"
        )
    return text


def _shell_filter(kind: str) -> Any:
    import jinja2

    @jinja2.pass_context
    def to_reference(context: Any, value: Any) -> str:
        if isinstance(value, RawShell):
            return str(value)
        variables: dict[str, str] = context["__shell_env"]
        name = f"{TEMPLATE_VAR}{len(variables)}"
        variables[name] = "" if value is None else str(value)
        return _REFERENCE[kind].format(name)

    return to_reference


_environments: dict[tuple[int, bool], jinja2.Environment] = {}
_templates: dict[tuple[int, bool, str], jinja2.Template] = {}


def _environment(dag: DAG | None, shell: bool) -> jinja2.Environment:
    """The Jinja environment of `dag`'s fields: with `render_template_as_native_obj`, a
    NativeEnvironment (a field renders to the object its expression gives, as in Airflow),
    except for shell fields, which stay text to be quoted."""
    native = dag is not None and dag.render_template_as_native_obj and not shell
    custom = dag is not None and (
        native or bool(dag.user_defined_filters or dag.template_searchpath)
    )
    key = (id(dag) if custom else 0, shell)
    env = _environments.get(key)
    if env is None:
        import jinja2
        import jinja2.nativetypes

        searchpath = dag.template_searchpath if custom and dag is not None else None
        loader = jinja2.FileSystemLoader(searchpath) if searchpath else None
        environment = jinja2.nativetypes.NativeEnvironment if native else jinja2.Environment
        env = environment(
            undefined=jinja2.StrictUndefined,
            loader=loader,
            keep_trailing_newline=True,
            cache_size=0,
        )
        env.filters["shell_raw"] = RawShell
        if shell:
            for kind in _REFERENCE:
                env.filters[f"__shell_{kind}"] = _shell_filter(kind)
            env.filters["__shell_heredoc_raw"] = _heredoc_raw
        if custom and dag is not None:
            env.filters.update(dag.user_defined_filters)
        _environments[key] = env
    return env


def has_template(value: Any) -> bool:
    """Whether rendering changes `value`: a Jinja string, or an XComArg / DagParam."""
    if isinstance(value, XComArg | DagParam):
        return True
    if isinstance(value, str):
        return "{{" in value or "{%" in value
    if isinstance(value, list | tuple | set):
        return any(has_template(v) for v in value)
    if isinstance(value, dict):
        return any(has_template(v) for v in value.values())
    return False


def render(value: Any, context: Context, env: jinja2.Environment, key: int, shell: bool) -> Any:
    if isinstance(value, XComArg | DagParam):  # the value itself, not rendered again (Airflow)
        return value.resolve(context)
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        tkey = (key, shell, value)
        template = _templates.get(tkey)
        if template is None:
            if len(_templates) > 4096:
                _templates.clear()
            source = shell_template(value) if shell else value
            template = _templates[tkey] = env.from_string(source)
        return template.render(context)
    if isinstance(value, list | tuple | set):
        return type(value)(render(v, context, env, key, shell) for v in value)
    if isinstance(value, dict):
        return {k: render(v, context, env, key, shell) for k, v in value.items()}
    return value


def prepare_templates(dag: DAG) -> None:
    """Mark, once per loaded DAG, the tasks whose templated fields hold nothing to render (no
    template, no template file's name), so that each of their attempts skips rendering."""
    for task in dag.tasks:
        exts = tuple(task.template_ext)
        if task.template_fields and not any(
            has_template(value := getattr(task, f, None)) or names_file(value, exts)
            for f in task.template_fields
        ):
            task.__dict__["_static_templates"] = True  # definitions are immutable once loaded


def names_file(value: Any, exts: tuple[str, ...]) -> bool:
    """Whether `value` (or a string inside it) is a template file's name."""
    if not exts:
        return False
    if isinstance(value, str):
        return value.endswith(exts)
    if isinstance(value, list | tuple | set):
        return any(names_file(v, exts) for v in value)
    if isinstance(value, dict):
        return any(names_file(v, exts) for v in value.values())
    return False


def searchpath(dag: DAG | None) -> list[Path]:
    """Where template files are looked for: the DAG file's folder, then template_searchpath."""
    if dag is None:
        return []
    folders = [Path(dag.fileloc).parent] if dag.fileloc else []
    return folders + [Path(p) for p in dag.template_searchpath]


def read_files(value: Any, exts: tuple[str, ...], folders: list[Path], task_id: str) -> Any:
    """`value` with each string that names a template file replaced by the file's text."""
    if isinstance(value, str):
        if not value.endswith(exts):
            return value
        for folder in folders:
            path = folder / value
            if path.is_file():
                return path.read_text(encoding="utf-8")
        where = ", ".join(str(f) for f in folders) or "nowhere (the task has no DAG)"
        raise AsyncflowError(
            f"task {task_id!r}: template file {value!r} (its name ends with one of "
            f"{list(exts)}) is not in {where}: fix the path, add its folder to the DAG's "
            "template_searchpath, or end the value with a space to pass it as text"
        )
    if isinstance(value, list | tuple | set):
        return type(value)(read_files(v, exts, folders, task_id) for v in value)
    if isinstance(value, dict):
        return {k: read_files(v, exts, folders, task_id) for k, v in value.items()}
    return value


def render_string(task: BaseOperator, source: str, context: Context) -> Any:
    """`task.render_template(source, context)`: one string rendered in the task's DAG's
    environment (its macros, filters and template_searchpath)."""
    env = _environment(task.dag, False)
    return render(source, context, env, id(env), False)


def render_task(task: BaseOperator, context: Context) -> BaseOperator:
    """`task` itself when it has nothing to render, else a copy with its fields rendered."""
    if not task.template_fields or task.__dict__.get("_static_templates"):
        return task
    exts = tuple(task.template_ext)
    fields = [
        f
        for f in task.template_fields
        if has_template(value := getattr(task, f, None)) or names_file(value, exts)
    ]
    if not fields:
        task.__dict__["_static_templates"] = True  # definitions are immutable once loaded
        return task
    import jinja2

    clone = copy.copy(task)
    shell_env: dict[str, str] = {}
    for name in fields:
        shell = name in task.template_shell_fields
        env = _environment(task.dag, shell)
        try:
            value = getattr(task, name)
            if names_file(value, exts):
                value = read_files(value, exts, searchpath(task.dag), task.task_id)
            scope = {**context, "__shell_env": shell_env} if shell else context
            rendered = render(value, scope, env, id(env), shell)
        except ShellPositionError as exc:
            raise AsyncflowError(f"task {task.task_id!r}: field {name!r}: {exc}") from exc
        except jinja2.TemplateError as exc:
            raise AsyncflowError(
                f"task {task.task_id!r}: cannot render template field {name!r}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        setattr(clone, name, rendered)
    if shell_env:
        clone.template_env = shell_env  # type: ignore[attr-defined]
    return clone
