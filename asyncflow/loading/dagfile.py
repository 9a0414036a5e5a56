"""Importing one DAG file in this interpreter: its code, its DAGs, and the error that says why
it has none.

`import_dag_file` runs the exact bytes it is given (not whatever the file holds by then), so
that the daemon imports what a parse process checked (see `parsing.py`), under a module name of
its own, with the file's folder and the DAG folder on `sys.path` and Airflow's import paths
served (`asyncflow.compat.airflow`). Both the parse process and the daemon call it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from contextlib import suppress
from pathlib import Path
from types import ModuleType, TracebackType

from asyncflow.compat.airflow import activate as airflow_imports
from asyncflow.exceptions import DagDefinitionError, DagFileError
from asyncflow.models.dag import DAG, collect_dags

__all__ = ["import_dag_file", "module_name", "source_digest"]


def source_digest(source: bytes) -> str:
    """What identifies a version of a DAG file: a hash of its bytes."""
    return hashlib.sha256(source).hexdigest()


def module_name(fileloc: str) -> str:
    return "asyncflow_dag_" + hashlib.sha1(fileloc.encode(), usedforsecurity=False).hexdigest()[:16]


def import_dag_file(
    path: Path, source: bytes, folder: Path
) -> tuple[ModuleType, tuple[DAG, ...]] | DagFileError:
    """Run `source` as the module of `path`; its validated DAGs, or why it has none. The
    module is left out of `sys.modules` (the caller registers it when it keeps the DAGs)."""
    fileloc = str(path)
    try:
        module, dags = _execute(path, source, folder)
    except BaseException as exc:  # anything a DAG file raises, SystemExit too
        return _import_error(fileloc, exc)
    return _invalid(fileloc, dags) or (module, dags)


def _execute(path: Path, source: bytes, folder: Path) -> tuple[ModuleType, tuple[DAG, ...]]:
    name = module_name(str(path))
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ImportError(f"no module spec for {path}")
    module = importlib.util.module_from_spec(spec)
    search = list(dict.fromkeys([str(path.parent), str(folder)]))
    sys.modules[name] = module
    sys.path[:0] = search
    try:
        with collect_dags() as collected, airflow_imports():
            code = compile(source, str(path), "exec", dont_inherit=True)
            exec(code, module.__dict__)  # running the DAG file is the point
    finally:
        for entry in search:
            with suppress(ValueError):
                sys.path.remove(entry)
        if sys.modules.get(name) is module:
            del sys.modules[name]
    found = {id(dag): dag for dag in collected}
    for value in list(vars(module).values()):
        if isinstance(value, DAG):
            found.setdefault(id(value), value)
    return module, tuple(found.values())


def _user_tb(tb: TracebackType | None) -> TracebackType | None:
    """Drop the leading frames of this module and of importlib: keep the user's frames."""
    while tb is not None and (
        tb.tb_frame.f_code.co_filename == __file__
        or tb.tb_frame.f_code.co_filename.startswith("<frozen ")
    ):
        tb = tb.tb_next
    return tb


def _import_error(fileloc: str, exc: BaseException) -> DagFileError:
    """'line N: Type: message', plus the innermost file and line when that is another file."""
    tb = _user_tb(exc.__traceback__)
    frames = [(frame.filename, frame.lineno) for frame in traceback.extract_tb(tb)]
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, SyntaxError) and exc.filename:
        frames.append((exc.filename, exc.lineno))
        text = f"{type(exc).__name__}: {exc.msg}"
    own = [line for name, line in frames if name == fileloc]
    location = f"line {own[-1]}" if own else "at import"
    if frames and frames[-1][0] != fileloc:
        location += f" (in {frames[-1][0]}, line {frames[-1][1]})"
    stacktrace = "".join(traceback.format_exception(type(exc), exc, tb))
    return DagFileError(fileloc, f"{location}: {text}", stacktrace)


def _invalid(fileloc: str, dags: tuple[DAG, ...]) -> DagFileError | None:
    """Validate (and freeze) each DAG of a file; the first problem is the file's error."""
    seen: set[str] = set()
    for dag in dags:
        if dag.dag_id in seen:
            message = f"DAG {dag.dag_id!r} is defined twice in this file: dag_ids must be unique"
            return DagFileError(fileloc, message)
        seen.add(dag.dag_id)
        try:
            dag.validate()
        except DagDefinitionError as exc:
            stacktrace = "".join(
                traceback.format_exception(type(exc), exc, _user_tb(exc.__traceback__))
            )
            message = str(exc)
            if exc.fileloc == fileloc:  # DagFileError names the file already
                message = str(
                    DagDefinitionError(exc.detail, dag_id=exc.dag_id, task_id=exc.task_id)
                )
            return DagFileError(fileloc, message, stacktrace)
    return None
