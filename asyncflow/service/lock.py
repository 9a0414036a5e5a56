"""One daemon per database: an exclusive `flock` on `<database>.lock` beside the database.

The kernel drops a `flock` when its holder's file is closed, which includes the process dying
(`kill -9`, OOM): a lock file left behind by a dead daemon never blocks the next one, so nothing
has to clean it up. The holder writes its PID, host and start time into the file so that the
next one can say who holds the database. The descriptor is close-on-exec: a task subprocess
that outlives a killed daemon does not keep holding the lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from asyncflow.exceptions import EngineLockedError
from asyncflow.privatefiles import create_private_file, private_folders

__all__ = ["DatabaseLock", "lock_path"]


def lock_path(database: str | os.PathLike[str]) -> Path | None:
    """The lock file of `database`, or None for an in-memory database (nothing to share)."""
    text = os.fspath(database)
    if text == ":memory:" or not text:
        return None
    return Path(text + ".lock")


class DatabaseLock:
    """Held while one daemon uses `database`; a second holder gets `EngineLockedError`.

    Use as a context manager or call `acquire()` / `release()`. A ':memory:' database needs no
    lock: both are no-ops. The lock is per open file, so a second `DatabaseLock` on the same
    database fails even within one process.
    """

    def __init__(self, database: str | os.PathLike[str]) -> None:
        self.database = os.fspath(database)
        self.path = lock_path(database)
        self._fd: int | None = None

    @property
    def locked(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock without waiting; raise `EngineLockedError` if another holds it."""
        if self.path is None:
            return
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this DatabaseLock")
        private_folders(self.path.parent)
        fd = create_private_file(self.path)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise EngineLockedError(
                f"database {self.database} is in use by another asyncflow process "
                f"({holder}; lock file {self.path}): stop that process or use another "
                "--database"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        _write_holder(fd)

    def release(self) -> None:
        """Give the lock up; a no-op when not held."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)  # the next reader must not take us for the holder
        finally:
            os.close(fd)  # closing drops the flock

    def __enter__(self) -> DatabaseLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        state = "locked" if self.locked else "unlocked"
        return f"<DatabaseLock {self.path or self.database} {state}>"


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    data = (json.dumps(holder) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)


def _read_holder(fd: int) -> str:
    """Who holds the lock, as written by `_write_holder`, for the error message."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        pid, host, started = holder["pid"], holder["hostname"], holder["started"]
    except (OSError, ValueError, KeyError, TypeError):
        # The holder has just taken the lock and not written yet, or wrote something else.
        return "holder PID unknown"
    this = " (this process)" if pid == os.getpid() and host == socket.gethostname() else ""
    return f"PID {pid}{this} on {host}, since {started}"
