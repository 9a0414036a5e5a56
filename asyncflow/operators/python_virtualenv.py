"""Python callables run by another interpreter: `PythonVirtualenvOperator` (a virtualenv built
for the task's requirements, kept for the next run) and `ExternalPythonOperator` (a Python that
already exists), with their branching variants.

As Airflow: the callable's source is shipped (`inspect.getsource`, dedented, its decorators
removed), so it must be self-contained: imports inside the function, no names from the DAG
file. Its arguments and the context keys it names go to the child as JSON in a file, and its
return value comes back the same way (Airflow pickles; JSON is what a different interpreter
can always read, so `serializer=` is accepted and JSON is used whatever it says). The child's
output lands in the attempt log; a timeout or a clear ends the child's whole process group.

A virtualenv is built with ``python -m venv`` from the Python running asyncflow (so
`python_version`, when given, must be that one) plus ``pip install`` of the requirements, in a
folder named by a hash of (Python version, requirements, pip options, system_site_packages)
under the venv cache: `venv_cache_path`, else ``venvs/`` beside the engine's database (the
home of `asyncflow serve`), else ``~/.cache/asyncflow/venvs``. It is built once (later tasks
reuse it) and counts as built only when complete (a marker file written last), so a build
cut short is started afresh.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import shlex
import shutil
import sys
import tempfile
import textwrap
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

import anyio

from asyncflow.exceptions import AsyncflowError
from asyncflow.models import checks
from asyncflow.models.baseoperator import Context, RunsIn
from asyncflow.models.engine_access import current_engine
from asyncflow.operators.bash import run_command
from asyncflow.operators.branch import follow_branches
from asyncflow.operators.python import PythonOperator, context_kwargs

__all__ = [
    "BranchExternalPythonOperator",
    "BranchPythonVirtualenvOperator",
    "ExternalPythonOperator",
    "PythonVirtualenvOperator",
]

_RUNNER = """from __future__ import annotations  # the function's annotations are never evaluated
import asyncio, inspect, json, sys

{source}

with open(sys.argv[1], encoding="utf-8") as _f:
    _data = json.load(_f)
_result = {name}(*_data["args"], **_data["kwargs"])
if inspect.isawaitable(_result):
    _result = asyncio.run(_result)
try:
    _text = json.dumps(_result)
except (TypeError, ValueError) as _exc:
    raise SystemExit(
        "the return value of {name}() cannot be sent back as JSON: " + str(_exc)
    )
with open(sys.argv[2], "w", encoding="utf-8") as _f:
    _f.write(_text)
"""


def callable_source(func: Callable[..., Any], where: checks.Where) -> tuple[str, str]:
    """(name, source) of a `def` function, dedented, without its decorators."""
    name = getattr(func, "__name__", "")
    if not inspect.isfunction(func) or name == "<lambda>":
        raise where.error(
            f"python_callable={checks.show(func)} must be a function defined with `def`: its "
            "source is what runs in the other Python"
        )
    try:
        source = textwrap.dedent(inspect.getsource(func))
    except (OSError, TypeError) as exc:
        raise where.error(f"the source of {name}() cannot be read ({exc})") from None
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == name:
            node.decorator_list = []
            return name, ast.unparse(node)
    raise where.error(f"the source of {name}() does not define it")


def _json_arguments(
    task: PythonOperator, args: Sequence[Any], kwargs: Mapping[str, Any], context: Context
) -> str:
    func = task.python_callable
    explicit = set(inspect.signature(func).parameters)
    wanted = context_kwargs(func, len(args), kwargs, context)
    passed: dict[str, Any] = dict(kwargs)
    for key, value in wanted.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            if key in explicit:
                raise TypeError(
                    f"DAG {task.dag_id!r}, task {task.task_id!r}: the context key {key!r} "
                    f"({type(value).__name__}) cannot be passed to another Python as JSON: "
                    "take a string form instead (ds, ts, run_id, params...)"
                ) from None
            continue  # **kwargs: only the keys that travel
        passed[key] = value
    try:
        return json.dumps({"args": list(args), "kwargs": passed})
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"DAG {task.dag_id!r}, task {task.task_id!r}: the arguments of "
            f"{func.__name__}() cannot be passed to another Python as JSON: {exc}"
        ) from None


class _OtherPython(PythonOperator):
    """What both operators share: ship the source, run it, read the result."""

    runs_in: RunsIn = "process"

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        serializer: str | None = None,
        use_dill: bool = False,
        expect_airflow: bool = True,
        string_args: Iterable[str] | None = None,
        env_vars: Mapping[str, str] | None = None,
        inherit_env: bool = True,
        skip_on_exit_code: int | Sequence[int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(python_callable=python_callable, **kwargs)
        where = self.where()
        self._name, self._source = callable_source(python_callable, where)
        if serializer not in (None, "pickle", "cloudpickle", "dill"):
            raise where.error(f"serializer={serializer!r} is not pickle, cloudpickle or dill")
        self.serializer = serializer
        self.use_dill = bool(use_dill)
        self.expect_airflow = bool(expect_airflow)
        self.string_args = list(string_args or ())
        self.env_vars = checks.mapping(where, "env_vars", env_vars) if env_vars else None
        self.inherit_env = bool(inherit_env)
        self.skip_on_exit_code = checks.exit_codes(where, skip_on_exit_code)

    async def interpreter(self, context: Context) -> Path:
        raise NotImplementedError

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ) if self.inherit_env else {}
        env.update(self.env_vars or {})
        return env

    async def execute_callable(
        self, args: Sequence[Any], kwargs: Mapping[str, Any], context: Context
    ) -> Any:
        from asyncflow.exceptions import AsyncflowSkipException

        data = _json_arguments(self, args, kwargs, context)
        python = await self.interpreter(context)
        with tempfile.TemporaryDirectory(prefix="asyncflow-python-") as folder:
            work = Path(folder)
            (work / "script.py").write_text(
                _RUNNER.format(source=self._source, name=self._name), encoding="utf-8"
            )
            (work / "input.json").write_text(data, encoding="utf-8")
            command = [str(python), "script.py", "input.json", "output.json", *self.string_args]
            code, _ = await run_command(
                shlex.join(command), env=self._environment(), cwd=folder, encoding="utf-8",
                grace=5.0, ti=context.get("ti"),
            )  # fmt: skip
            if code in self.skip_on_exit_code:
                raise AsyncflowSkipException(f"{python} exited with {code}: task skipped")
            if code != 0:
                raise AsyncflowError(
                    f"{self._name}() failed in {python} (exit code {code}): its output is in "
                    "the attempt log"
                )
            output = work / "output.json"
            return json.loads(output.read_text(encoding="utf-8")) if output.exists() else None


def _python_version() -> str:
    return f"{sys.version_info.major}.{sys.version_info.minor}"


def _requirements(where: checks.Where, value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        lines = value.splitlines()
    elif isinstance(value, Iterable):
        lines = [str(v) for v in value]
    else:
        raise where.error(f"requirements={checks.show(value)} is not a list of requirements")
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def venv_cache(explicit: str | os.PathLike[str] | None) -> Path:
    """Where virtualenvs are kept: the operator's `venv_cache_path`, else beside the engine's
    database (its home under `asyncflow serve`), else the user's cache folder."""
    if explicit is not None:
        return Path(explicit)
    engine = current_engine.get()
    home = engine.home() if engine is not None else None
    if home is not None:
        return home / "venvs"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asyncflow" / "venvs"


#: one build of one virtualenv at a time in this process (others wait for it, then reuse it)
_building: dict[Path, anyio.Lock] = {}


class PythonVirtualenvOperator(_OtherPython):
    template_fields: ClassVar[Sequence[str]] = (*PythonOperator.template_fields, "requirements")

    def __init__(
        self,
        *,
        requirements: Iterable[str] | str | None = None,
        python_version: str | float | None = None,
        system_site_packages: bool = True,
        pip_install_options: Iterable[str] | None = None,
        index_urls: Iterable[str] | str | None = None,
        venv_cache_path: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = self.where()
        if python_version is not None and str(python_version) not in (
            _python_version(), str(sys.version_info.major),
        ):  # fmt: skip
            raise where.error(
                f"python_version={python_version!r}: asyncflow builds virtualenvs with the "
                f"Python it runs on ({_python_version()}); leave python_version out, or use "
                "ExternalPythonOperator with a path to that Python"
            )
        self.requirements = _requirements(where, requirements)
        self.python_version = python_version
        self.system_site_packages = bool(system_site_packages)
        self.pip_install_options = [str(o) for o in pip_install_options or ()]
        urls = [index_urls] if isinstance(index_urls, str) else list(index_urls or ())
        self.index_urls = [str(u) for u in urls]
        self.venv_cache_path = venv_cache_path

    def _key(self) -> str:
        spec = {
            "python": sys.version,
            "executable": sys.executable,
            "requirements": self.requirements,
            "pip": self.pip_install_options,
            "index_urls": self.index_urls,
            "system_site_packages": self.system_site_packages,
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:16]

    async def interpreter(self, context: Context) -> Path:
        cache = venv_cache(self.venv_cache_path)
        target = cache / f"venv-{self._key()}"
        python = target / "bin" / "python"
        lock = _building.setdefault(target, anyio.Lock())
        async with lock:
            if not (target / ".complete").exists():
                await self._build(cache, target, context)
        return python

    async def _build(self, cache: Path, target: Path, context: Context) -> None:
        await anyio.Path(cache).mkdir(parents=True, exist_ok=True)
        if await anyio.Path(target).exists():  # a build cut short: start afresh
            await anyio.to_thread.run_sync(lambda: shutil.rmtree(target, ignore_errors=True))
        try:
            venv = [sys.executable, "-m", "venv"]
            if self.system_site_packages:
                venv.append("--system-site-packages")
            if not self.requirements:
                venv.append("--without-pip")  # nothing to install: skip ensurepip (seconds)
            await self._step([*venv, str(target)], "creating the virtualenv", context)
            if self.requirements:
                (target / "requirements.txt").write_text("\n".join(self.requirements) + "\n")
                pip = [str(target / "bin" / "python"), "-m", "pip", "install", "--quiet"]
                for i, url in enumerate(self.index_urls):
                    pip += ["--index-url" if i == 0 else "--extra-index-url", url]
                pip += [*self.pip_install_options, "-r", str(target / "requirements.txt")]
                await self._step(pip, "installing the requirements", context)
            (target / ".complete").write_text(json.dumps(self.requirements) + "\n")
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(lambda: shutil.rmtree(target, ignore_errors=True))
            raise

    async def _step(self, command: list[str], what: str, context: Context) -> None:
        code, last = await run_command(
            shlex.join(command), env=dict(os.environ), cwd=None, encoding="utf-8", grace=5.0,
            ti=context.get("ti"),
        )  # fmt: skip
        if code != 0:
            detail = last.text("utf-8") if last is not None else "no output"
            raise AsyncflowError(
                f"DAG {self.dag_id!r}, task {self.task_id!r}: {what} failed (exit code "
                f"{code}): {detail}; the whole output is in the attempt log"
            )


class ExternalPythonOperator(_OtherPython):
    template_fields: ClassVar[Sequence[str]] = (*PythonOperator.template_fields, "python")

    def __init__(self, *, python: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        where = self.where()
        if not isinstance(python, str) or not python:
            raise where.error(f"python={checks.show(python)} is not the path of a Python")
        self.python = python

    async def interpreter(self, context: Context) -> Path:
        path = Path(self.python)
        if not (await anyio.Path(path).is_file() and os.access(path, os.X_OK)):
            raise AsyncflowError(
                f"DAG {self.dag_id!r}, task {self.task_id!r}: python={self.python!r} is not an "
                "executable file: give the full path of the interpreter (…/bin/python)"
            )
        return path


class BranchPythonVirtualenvOperator(PythonVirtualenvOperator):
    """The callable, run in a virtualenv, returns the task_id(s) to follow."""

    async def execute(self, context: Context) -> Any:
        chosen = await super().execute(context)
        follow_branches(self, chosen, context)
        return chosen


class BranchExternalPythonOperator(ExternalPythonOperator):
    """The callable, run by another Python, returns the task_id(s) to follow."""

    async def execute(self, context: Context) -> Any:
        chosen = await super().execute(context)
        follow_branches(self, chosen, context)
        return chosen
