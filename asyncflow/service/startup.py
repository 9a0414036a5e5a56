"""Why the daemon cannot start, in one line, with the exit status that tells the supervisor
whether to try again.

A database path that is a folder, a read-only database or folder, a corrupt file, a schema
newer than this asyncflow: only a person can fix these, so they exit 78 (EX_CONFIG), which the
systemd unit lists in `RestartPreventExitStatus=`: restarting every few seconds would only fill
the journal. A full disk exits 74 (EX_IOERR): space may come back (a log rotated, a cleanup
job), and the unit's restart then starts the daemon without anyone's help.

`preflight` looks before the daemon touches anything (cheap checks of the path); `explain`
reads an error raised while starting (the lock file, SQLite) for the same cases, so that what
the checks cannot see (a disk that fills up meanwhile, a page corrupt deep in the file) is
reported the same way. Each message names the file, the problem and the fix.
"""

from __future__ import annotations

import errno
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from asyncflow.exitcodes import EX_CONFIG, EX_IOERR

__all__ = ["StartupFailure", "explain", "preflight"]

#: the first bytes of every SQLite database file
SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True, slots=True)
class StartupFailure:
    message: str
    code: int


def _read_only(path: Path | str, detail: str) -> StartupFailure:
    return StartupFailure(
        f"{path} is read-only ({detail}): asyncflow writes its database, its -wal/-shm files "
        "and its lock there; make the folder and the database writable by the user asyncflow "
        "runs as, or point --database (or ASYNCFLOW_HOME) at a writable folder",
        EX_CONFIG,
    )


def _full(path: Path | str, detail: str) -> StartupFailure:
    return StartupFailure(
        f"the disk holding {path} is full ({detail}): free some space; the daemon starts again "
        "by itself under systemd (exit 74 is restarted), nothing in the database was lost",
        EX_IOERR,
    )


def _corrupt(path: Path | str, detail: str) -> StartupFailure:
    return StartupFailure(
        f"database {path} is corrupt ({detail}): restore it from a backup, or move it aside to "
        "start with an empty database (its history is lost); `asyncflow db check` tells more",
        EX_CONFIG,
    )


def _a_folder(path: Path | str) -> StartupFailure:
    return StartupFailure(
        f"database path {path} is a folder, not a file: point --database (or "
        f"ASYNCFLOW_DATABASE) at a file, e.g. {Path(path) / 'asyncflow.db'}",
        EX_CONFIG,
    )


def preflight(database: str) -> StartupFailure | None:
    """What is wrong with the database path before anything is opened (None: nothing seen)."""
    if database == ":memory:" or database.startswith("file:"):
        return None
    path = Path(database)
    if path.is_dir():
        return _a_folder(path)
    folder = _existing_ancestor(path.parent)
    if not os.access(folder, os.W_OK | os.X_OK):
        return _read_only(folder, _access_error(folder))
    if not path.exists():
        return None
    if not os.access(path, os.R_OK | os.W_OK):
        return _read_only(path, _access_error(path))
    try:
        with path.open("rb") as file:
            head = file.read(len(SQLITE_HEADER))
    except OSError as exc:
        return explain(exc, database)
    if head and head != SQLITE_HEADER:  # an empty file is a new database
        return _corrupt(path, "it does not start like an SQLite database")
    return None


def _existing_ancestor(folder: Path) -> Path:
    """The folder itself, or the nearest parent that exists (the rest would be created)."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def _access_error(path: Path) -> str:
    """Why `path` cannot be written: a read-only file system or missing permissions."""
    try:
        stat = os.statvfs(path)
    except OSError:
        return "no write permission"
    if stat.f_flag & os.ST_RDONLY:
        return "read-only file system"
    return "no write permission"


def explain(exc: BaseException, database: str) -> StartupFailure | None:
    """The start-up failure behind `exc` (or its causes), if it is one of ours to explain."""
    for error in _chain(exc):
        if isinstance(error, OSError) and error.errno is not None:
            where = error.filename or database
            if error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
                return _read_only(where, os.strerror(error.errno))
            if error.errno in (errno.ENOSPC, errno.EDQUOT):
                return _full(where, os.strerror(error.errno))
            if error.errno == errno.EISDIR:
                return _a_folder(where)
        if isinstance(error, sqlite3.Error):
            text = str(error)
            if "full" in text:
                return _full(database, text)
            if "readonly" in text or "read-only" in text:
                return _read_only(database, text)
            if "not a database" in text or "malformed" in text:
                return _corrupt(database, text)
            if "unable to open" in text and Path(database).is_dir():
                return _a_folder(database)
        if "newer than this asyncflow knows" in str(error):
            return StartupFailure(f"{error}, or restore a database of this version", EX_CONFIG)
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """`exc`, the exceptions inside it (groups) and their causes, each once."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        error = todo.pop(0)
        if any(error is seen for seen in found):
            continue
        found.append(error)
        if isinstance(error, BaseExceptionGroup):
            todo.extend(error.exceptions)
        for linked in (error.__cause__, error.__context__):
            if linked is not None:
                todo.append(linked)
    return found
