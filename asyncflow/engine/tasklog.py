"""Each task attempt's output in its own file: `<logs>/<dag_id>/<run_id>/<task_id>/attempt=<n>.log`.

What a task prints, logs through `logging`, or its subprocess writes, goes to the file of the
attempt whose context it runs in (a context variable, so it follows the task into its worker
thread). The file is created on the first line, so a silent task costs nothing.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

import structlog

from asyncflow.models.secrets import redact
from asyncflow.privatefiles import create_private_file, private_folders

log = structlog.get_logger("asyncflow.tasklog")
current_log: ContextVar[TaskLog | None] = ContextVar("current_task_log", default=None)


def attempt_log_path(logs_folder: Path, dag_id: str, run_id: str, task_id: str, n: int) -> Path:
    safe_run = run_id.replace("/", "_")
    return logs_folder / dag_id / safe_run / task_id / f"attempt={n}.log"


class TaskLog:
    """One attempt's log file. Logging never ends an attempt: when the file cannot be
    created or written (a full disk, an unwritable folder, a name too long), the lines are
    dropped, one warning says so, and the attempt goes on and reports as usual."""

    __slots__ = ("_file", "dropped", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self.dropped = 0  # lines lost to a failing file

    def write(self, text: str) -> None:
        if self.dropped:
            self.dropped += 1
            return
        try:
            if self._file is None:
                private_folders(self.path.parent)
                fd = create_private_file(self.path, os.O_WRONLY | os.O_APPEND)
                self._file = open(fd, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._file.write(redact(text))
        except (OSError, ValueError) as exc:
            self.dropped = 1
            self._discard()
            log.warning(
                "attempt log cannot be written; its lines are dropped, the task goes on",
                path=str(self.path), error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip

    def line(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        self.write(f"[{stamp}] {text}\n")

    def close(self) -> None:
        try:
            if self._file is not None:
                self._file.close()
        except OSError as exc:  # the last buffered line could not be flushed
            log.warning("attempt log could not be closed", path=str(self.path), error=str(exc))
        self._file = None

    def _discard(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            with contextlib.suppress(OSError):
                file.close()


class _RoutedStream(io.TextIOBase):
    """Stands in for sys.stdout/sys.stderr: writes go to the current attempt's log, if any."""

    def __init__(self, fallback: TextIO) -> None:
        self._fallback = fallback

    def write(self, text: str) -> int:
        log = current_log.get()
        if log is None:
            return self._fallback.write(text)
        log.write(text)
        return len(text)

    def flush(self) -> None:
        if current_log.get() is None:
            self._fallback.flush()

    def isatty(self) -> bool:
        return self._fallback.isatty()

    def fileno(self) -> int:
        return self._fallback.fileno()


class _RoutedHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        log = current_log.get()
        if log is not None:
            log.line(f"{record.levelname} {record.name}: {self.format(record)}")


def install_capture() -> None:
    """Route print() and stdlib logging of task code to attempt logs. Idempotent, and checked
    at every engine start: whoever replaced sys.stdout since (an application, a test runner)
    gets its stream wrapped in turn rather than bypassed."""
    if not isinstance(sys.stdout, _RoutedStream):
        sys.stdout = _RoutedStream(sys.stdout)
    if not isinstance(sys.stderr, _RoutedStream):
        sys.stderr = _RoutedStream(sys.stderr)
    root = logging.getLogger()
    if not any(isinstance(h, _RoutedHandler) for h in root.handlers):
        root.addHandler(_RoutedHandler())
