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

Each new or changed file is first parsed in a child process (`parsing.py`: several at once,
each within `import_timeout`, killed when it overruns); only a file that imported cleanly there
is then imported here, from the same bytes, under its own module name, with its folder (and the
DAG folder) on `sys.path`. That second import is bounded by `import_timeout` too, in a daemon
thread that is abandoned if it overruns (a file that behaves differently the second time).
A file is read again only when its mtime or size changes. An import error, a DAG that fails
`validate()`, or a dag_id already taken by an earlier file (in sorted order) keeps every DAG of
that file out of the bag.

`collect_for(dag_id)` loads only the files whose text holds the dag_id (the whole folder when
none of them defines it): what a CLI command that needs one DAG uses.

`collect()` and `refresh()` block (file IO, imports, user code): from async code call them in a
worker thread, ``await anyio.to_thread.run_sync(bag.refresh)``, or use `load_dags()`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType

import anyio.to_thread

from asyncflow.exceptions import DagFileError, DagNotFound
from asyncflow.loading.dagfile import import_dag_file
from asyncflow.loading.parsing import ParseRequest, ParseServer, shared_server
from asyncflow.logs import get_logger
from asyncflow.models.dag import DAG

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


class DagBag:
    """The DAGs of one folder. Not thread-safe: call `collect`/`refresh` from one thread at a time;
    readers see either the previous or the new result (each refresh swaps in new dicts).

    `parser` is the parse server that checks files in child processes (by default the one this
    interpreter shares)."""

    def __init__(
        self,
        folder: str | Path,
        *,
        import_timeout: float = 30.0,
        safe_mode: bool = True,
        parser: ParseServer | None = None,
    ) -> None:
        if import_timeout <= 0:
            raise ValueError(f"import_timeout must be positive, got {import_timeout!r}")
        self.folder = Path(folder).absolute()
        self.import_timeout = import_timeout
        self.safe_mode = safe_mode
        self.parser = parser
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

    def collect_for(self, dag_id: str) -> None:
        """Load only the files that may define `dag_id`: those whose text holds it. When none
        of them does (a dag_id built at import, `f"etl_{name}"`), load the whole folder
        (blocking)."""
        needle = dag_id.encode()
        candidates = []
        for path in self._discover():
            try:
                if needle in path.read_bytes():
                    candidates.append(path)
            except OSError:
                continue
        for state in self._files.values():
            _unregister(state)
        self._files = {}
        self._refresh(candidates)
        if dag_id not in self._dags:
            self.collect()

    def refresh(self) -> BagChanges:
        """Re-scan the folder; re-import only new files and files whose mtime or size changed
        (blocking). DAGs of unchanged files stay the same objects."""
        return self._refresh(self._discover())

    def _refresh(self, paths: Iterable[Path]) -> BagChanges:
        files: dict[str, _FileState] = {}
        todo: list[tuple[Path, tuple[int, int]]] = []
        for path in paths:
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
            todo.append((path, key))
        files.update(self._load(todo))
        for fileloc in self._files.keys() - files.keys():
            _unregister(self._files[fileloc])
        self._files = dict(sorted(files.items()))
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
    def _load(self, todo: list[tuple[Path, tuple[int, int]]]) -> dict[str, _FileState]:
        """Read each file, parse those that look like DAG files in child processes (at once),
        then import here the ones that passed."""
        states: dict[str, _FileState] = {}
        requests: list[ParseRequest] = []
        stats: dict[str, tuple[int, int]] = {}
        for path, stat in todo:
            fileloc = str(path)
            try:
                source = path.read_bytes()
            except OSError as exc:
                error = DagFileError(fileloc, f"cannot read the file: {exc}")
                states[fileloc] = _FileState(stat, error=error)
                continue
            if self.safe_mode and not _looks_like_a_dag_file(source):
                states[fileloc] = _FileState(stat)
                continue
            requests.append(ParseRequest(path, source))
            stats[fileloc] = stat
        parser = self.parser or shared_server()
        verdicts = parser.check(requests, folder=self.folder, timeout=self.import_timeout)
        for request in requests:
            fileloc = str(request.path)
            stat, verdict = stats[fileloc], verdicts[fileloc]
            if verdict.error is not None:
                states[fileloc] = _FileState(stat, imported=True, error=verdict.error)
            elif not verdict.dag_ids:  # nothing to run: no need to run its code here
                states[fileloc] = _FileState(stat, imported=True)
            else:
                states[fileloc] = self._import_here(request, stat)
        return states

    def _import_here(self, request: ParseRequest, stat: tuple[int, int]) -> _FileState:
        """Import a file that passed its parse, in a thread bounded by `import_timeout`."""
        fileloc = str(request.path)
        outcome: list[tuple[ModuleType, tuple[DAG, ...]] | DagFileError] = []

        def run() -> None:
            outcome.append(import_dag_file(request.path, request.source, self.folder))

        thread = threading.Thread(
            target=run, name=f"asyncflow-dagbag-import:{request.path.name}", daemon=True
        )
        thread.start()
        thread.join(self.import_timeout)
        if thread.is_alive() or not outcome:
            message = (
                f"imported within its limit in a parse process, but did not finish importing "
                f"within {self.import_timeout:g} s in this process (its import does not behave "
                "the same twice): look for work at import time (network calls, sleeps, loops) "
                "and move it into tasks"
            )
            return _FileState(stat, imported=True, error=DagFileError(fileloc, message))
        result = outcome[0]
        if isinstance(result, DagFileError):
            return _FileState(stat, imported=True, error=result)
        module, dags = result
        sys.modules[module.__name__] = module
        return _FileState(stat, imported=True, dags=dags, module=module)

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


def _looks_like_a_dag_file(source: bytes) -> bool:
    """Airflow's safe-mode heuristic: the text names the package and a DAG."""
    text = source.lower()
    return (b"asyncflow" in text or b"airflow" in text) and b"dag" in text


def _unregister(state: _FileState) -> None:
    module = state.module
    if module is not None and sys.modules.get(module.__name__) is module:
        del sys.modules[module.__name__]


async def load_dags(
    folder: str | Path,
    *,
    import_timeout: float = 30.0,
    safe_mode: bool = True,
    parser: ParseServer | None = None,
) -> DagBag:
    """Build a `DagBag` and run its first `collect()` in a worker thread."""
    bag = DagBag(folder, import_timeout=import_timeout, safe_mode=safe_mode, parser=parser)
    await anyio.to_thread.run_sync(bag.collect)
    return bag
