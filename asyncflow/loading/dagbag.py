"""`DagBag`: the DAG folder. Finds DAG files, imports each in isolation, reloads what changed.

Discovery takes every ``.py`` file under the folder, recursively, in sorted order, except what an
``.asyncflowignore`` file excludes. An ignore file holds one glob pattern a line (``#`` starts a
comment) and applies to its own folder and everything below it, like Airflow's ``.airflowignore``
in its glob syntax (a gitignore subset):

- a pattern without ``/`` matches a file or folder name at any depth (``*_test.py``, ``scratch``);
- a pattern with ``/`` is anchored at the ignore file's folder (``vendor/*.py``, ``/old``);
- ``*``, ``?`` and ``[abc]`` stay within one path segment, ``**`` matches any number of segments;
- a trailing ``/`` matches folders only. ``!`` negation is not supported.

In `safe_mode` (the default), a file is imported only when its text contains ``asyncflow`` (or
``airflow``: Airflow's import paths work while a file loads, see `asyncflow.compat.airflow`) and
``dag`` (any case), Airflow's heuristic to skip helper modules; other files are skipped
silently.

Each file is imported under its own module name, with its folder (and the DAG folder) on
`sys.path`, in a daemon thread bounded by `import_timeout`. A file still importing after that is
reported as an import error and its thread is abandoned: Python cannot kill a thread, so it runs
on (holding whatever it holds) until it ends, and its DAGs are discarded. It is retried only when
the file changes. An import error, a DAG that fails `validate()`, or a dag_id already taken by an
earlier file (in sorted order) keeps every DAG of that file out of the bag.

`collect()` and `refresh()` block (file IO, imports, user code): from async code call them in a
worker thread, ``await anyio.to_thread.run_sync(bag.refresh)``, or use `load_dags()`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
import traceback
from contextlib import suppress
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType, TracebackType

import anyio.to_thread

from asyncflow.compat.airflow import activate as airflow_imports
from asyncflow.exceptions import DagDefinitionError, DagFileError, DagNotFound
from asyncflow.logs import get_logger
from asyncflow.models.dag import DAG, collect_dags

__all__ = ["IGNORE_FILE", "BagChanges", "DagBag", "load_dags"]

IGNORE_FILE = ".asyncflowignore"

log = get_logger("asyncflow.dagbag")


@dataclass(frozen=True, slots=True)
class BagChanges:
    """What a `DagBag.refresh()` changed, as sorted dag_ids."""

    added: list[str]
    changed: list[str]
    removed: list[str]
    errors_changed: bool


@dataclass(frozen=True, slots=True)
class _Pattern:
    base: Path
    parts: tuple[str, ...]  # one glob per path segment; "**" for any number of segments
    dirs_only: bool

    def matches(self, path: Path, is_dir: bool) -> bool:
        if self.dirs_only and not is_dir:
            return False
        return _match_parts(self.parts, path.relative_to(self.base).parts)


def _match_parts(pattern: tuple[str, ...], parts: tuple[str, ...]) -> bool:
    if not pattern:
        return not parts
    if pattern[0] == "**":
        return any(_match_parts(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
    return (
        bool(parts) and fnmatchcase(parts[0], pattern[0]) and _match_parts(pattern[1:], parts[1:])
    )


def _read_ignore(folder: Path) -> list[_Pattern]:
    try:
        text = (folder / IGNORE_FILE).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        log.warning(
            "ignore file unreadable, not applied", file=str(folder / IGNORE_FILE), error=str(exc)
        )
        return []
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        dirs_only = line.endswith("/")
        line = line.rstrip("/")
        parts = tuple(part for part in line.split("/") if part)
        if len(parts) == 1 and not line.startswith("/"):  # not anchored: a name at any depth
            parts = ("**", *parts)
        if parts:
            patterns.append(_Pattern(folder, parts, dirs_only))
    return patterns


@dataclass(frozen=True, slots=True)
class _FileState:
    """One file as last read: its (mtime_ns, size), and its DAGs or its error."""

    stat: tuple[int, int]
    imported: bool = False
    dags: tuple[DAG, ...] = ()
    error: DagFileError | None = None
    module: ModuleType | None = None


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


def _module_name(fileloc: str) -> str:
    return "asyncflow_dag_" + hashlib.sha1(fileloc.encode(), usedforsecurity=False).hexdigest()[:16]


class DagBag:
    """The DAGs of one folder. Not thread-safe: call `collect`/`refresh` from one thread at a time;
    readers see either the previous or the new result (each refresh swaps in new dicts)."""

    def __init__(
        self, folder: str | Path, *, import_timeout: float = 30.0, safe_mode: bool = True
    ) -> None:
        if import_timeout <= 0:
            raise ValueError(f"import_timeout must be positive, got {import_timeout!r}")
        self.folder = Path(folder).absolute()
        self.import_timeout = import_timeout
        self.safe_mode = safe_mode
        self._files: dict[str, _FileState] = {}
        self._dags: dict[str, DAG] = {}
        self._errors: dict[str, DagFileError] = {}
        self._dag_files: dict[str, list[str]] = {}

    @property
    def dags(self) -> dict[str, DAG]:
        return dict(self._dags)

    @property
    def import_errors(self) -> dict[str, DagFileError]:
        """File path -> why none of its DAGs are loaded."""
        return dict(self._errors)

    @property
    def dag_files(self) -> dict[str, list[str]]:
        """Each imported file without error -> the dag_ids it defines (possibly none)."""
        return {path: list(ids) for path, ids in self._dag_files.items()}

    def get_dag(self, dag_id: str) -> DAG:
        try:
            return self._dags[dag_id]
        except KeyError:
            raise DagNotFound(dag_id) from None

    def collect(self) -> None:
        """Load the whole folder from scratch (blocking)."""
        for state in self._files.values():
            _unregister(state)
        self._files = {}
        self.refresh()

    def refresh(self) -> BagChanges:
        """Re-scan the folder; re-import only new files and files whose mtime or size changed
        (blocking). DAGs of unchanged files stay the same objects."""
        files: dict[str, _FileState] = {}
        for path in self._discover():
            fileloc = str(path)
            try:
                stat = path.stat()
            except OSError:  # deleted since the scan
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            old = self._files.get(fileloc)
            if old is not None and old.stat == key:
                files[fileloc] = old
                continue
            if old is not None:
                _unregister(old)
            files[fileloc] = self._load(path, key)
        for fileloc in self._files.keys() - files.keys():
            _unregister(self._files[fileloc])
        self._files = files
        old_dags, old_errors = self._dags, {k: str(v) for k, v in self._errors.items()}
        self._dags, self._errors, self._dag_files = self._assemble()
        errors = {k: str(v) for k, v in self._errors.items()}
        for fileloc, error in errors.items():
            if old_errors.get(fileloc) != error:
                log.warning("DAG file failed to load", file=fileloc, error=error)
        return BagChanges(
            added=sorted(self._dags.keys() - old_dags.keys()),
            changed=sorted(
                dag_id
                for dag_id in self._dags.keys() & old_dags.keys()
                if self._dags[dag_id] is not old_dags[dag_id]
            ),
            removed=sorted(old_dags.keys() - self._dags.keys()),
            errors_changed=old_errors != errors,
        )

    # -- discovery ------------------------------------------------------------------------
    def _discover(self) -> list[Path]:
        found: list[Path] = []
        seen: set[str] = set()

        def walk(folder: Path, patterns: list[_Pattern]) -> None:
            real = os.path.realpath(folder)
            if real in seen:  # a symlink loop
                return
            seen.add(real)
            patterns = patterns + _read_ignore(folder)
            try:
                entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
            except OSError as exc:
                log.warning("DAG folder unreadable", folder=str(folder), error=str(exc))
                return
            for entry in entries:
                path, is_dir = Path(entry.path), entry.is_dir()
                if entry.name == "__pycache__" or any(p.matches(path, is_dir) for p in patterns):
                    continue
                if is_dir:
                    walk(path, patterns)
                elif entry.name.endswith(".py") and entry.is_file():
                    found.append(path)

        walk(self.folder, [])
        return sorted(found)

    # -- import -----------------------------------------------------------------------------
    def _load(self, path: Path, stat: tuple[int, int]) -> _FileState:
        fileloc = str(path)
        if self.safe_mode:
            try:
                text = path.read_bytes().lower()
            except OSError as exc:
                return _FileState(stat, error=DagFileError(fileloc, f"cannot read the file: {exc}"))
            if (b"asyncflow" not in text and b"airflow" not in text) or b"dag" not in text:
                return _FileState(stat)
        outcome: list[tuple[ModuleType, tuple[DAG, ...]] | DagFileError] = []
        thread = threading.Thread(
            target=self._import_in_thread,
            args=(path, outcome),
            name=f"asyncflow-dagbag-import:{path.name}",
            daemon=True,
        )
        thread.start()
        thread.join(self.import_timeout)
        if thread.is_alive() or not outcome:
            message = (
                f"import did not finish within {self.import_timeout} s: a DAG file must not "
                "block at import time (move network/IO into tasks)"
            )
            return _FileState(stat, imported=True, error=DagFileError(fileloc, message))
        result = outcome[0]
        if isinstance(result, DagFileError):
            return _FileState(stat, imported=True, error=result)
        module, dags = result
        sys.modules[module.__name__] = module
        return _FileState(stat, imported=True, dags=dags, module=module)

    def _import_in_thread(
        self, path: Path, outcome: list[tuple[ModuleType, tuple[DAG, ...]] | DagFileError]
    ) -> None:
        fileloc = str(path)
        try:
            module, dags = self._execute(path)
        except BaseException as exc:  # anything a DAG file raises, SystemExit too
            outcome.append(_import_error(fileloc, exc))
            return
        outcome.append(_invalid(fileloc, dags) or (module, dags))

    def _execute(self, path: Path) -> tuple[ModuleType, tuple[DAG, ...]]:
        name = _module_name(str(path))
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"no loader for {path}")
        module = importlib.util.module_from_spec(spec)
        search = list(dict.fromkeys([str(path.parent), str(self.folder)]))
        sys.modules[name] = module
        sys.path[:0] = search
        try:
            with collect_dags() as collected, airflow_imports():
                spec.loader.exec_module(module)
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

    def _assemble(self) -> tuple[dict[str, DAG], dict[str, DagFileError], dict[str, list[str]]]:
        """The bag's view of the files, in sorted order: the first file to define a dag_id wins."""
        dags: dict[str, DAG] = {}
        owners: dict[str, str] = {}
        errors: dict[str, DagFileError] = {}
        dag_files: dict[str, list[str]] = {}
        for fileloc, state in self._files.items():
            if state.error is not None:
                errors[fileloc] = state.error
                continue
            if not state.imported:
                continue
            taken = [dag.dag_id for dag in state.dags if dag.dag_id in dags]
            if taken:
                first, again = (
                    os.path.relpath(f, self.folder) for f in (owners[taken[0]], fileloc)
                )
                message = f"DAG {taken[0]!r} is defined in {first} and again in {again}: "
                message += "dag_ids must be unique"
                errors[fileloc] = DagFileError(fileloc, message)
                continue
            for dag in state.dags:
                dags[dag.dag_id] = dag
                owners[dag.dag_id] = fileloc
            dag_files[fileloc] = [dag.dag_id for dag in state.dags]
        return dags, errors, dag_files


def _unregister(state: _FileState) -> None:
    module = state.module
    if module is not None and sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]


async def load_dags(
    folder: str | Path, *, import_timeout: float = 30.0, safe_mode: bool = True
) -> DagBag:
    """Build a `DagBag` and run its first `collect()` in a worker thread."""
    bag = DagBag(folder, import_timeout=import_timeout, safe_mode=safe_mode)
    await anyio.to_thread.run_sync(bag.collect)
    return bag
