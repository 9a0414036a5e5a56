"""Each task attempt's output in its own file: `<logs>/<dag_id>/<run_id>/<task_id>/attempt=<n>.log`.

What a task prints, logs through `logging`, or its subprocess writes, goes to the file of the
attempt whose context it runs in (a context variable, so it follows the task into its worker
thread), one format for every line (`TaskLog`). The file is created on the first line, so a
silent task costs nothing.
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

from asyncflow.logs import get_logger
from asyncflow.models.secrets import redact
from asyncflow.privatefiles import create_private_file, private_folders

log = get_logger("asyncflow.tasklog")
current_log: ContextVar[TaskLog | None] = ContextVar("current_task_log", default=None)


def attempt_log_path(
    logs_folder: Path, dag_id: str, run_id: str, task_id: str, n: int, map_index: int = -1
) -> Path:
    """`<dag>/<run>/<task>/attempt=<n>.log`; a mapped instance's under `map_index=<i>/`."""
    safe_run = run_id.replace("/", "_")
    folder = logs_folder / dag_id / safe_run / task_id
    if map_index >= 0:
        folder = folder / f"map_index={map_index}"
    return folder / f"attempt={n}.log"


#: where a line came from, when it is not a logger: print() / sys.stdout, sys.stderr,
#: a subprocess's output, the engine itself
STDOUT, STDERR, OUTPUT, ENGINE = "stdout", "stderr", "output", "asyncflow"
#: stdlib loggers named after a DAG file's module (the loader names modules by a hash):
#: their lines are attributed to the task
_DAG_MODULE = "asyncflow_dag_"


def format_line(stamp: datetime, level: str, source: str, text: str) -> str:
    """One line of an attempt log: `[time] LEVEL source: text` (the only format)."""
    return f"[{stamp.isoformat(timespec='milliseconds')}] {level} {source}: {text}\n"


class TaskLog:
    """One attempt's log file, every line `[time] LEVEL source: text` (`format_line`): what
    the task prints (`stdout`, `stderr`), logs (the logger's name, or the task's id for a
    logger of the DAG file), or its subprocess writes (`output`), and the engine's own lines.
    A multi-line message (a traceback) gets the prefix on each line.

    Logging never ends an attempt: when the file cannot be created or written (a full disk, an
    unwritable folder, a name too long), the lines are dropped, one warning says so, and the
    attempt goes on and reports as usual."""

    __slots__ = ("_file", "_partial", "dropped", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO | None = None
        self._partial: dict[str, str] = {}  # a stream's text since its last newline
        self.dropped = 0  # lines lost to a failing file

    @property
    def task_id(self) -> str:
        return self.path.parent.name

    def line(self, text: str, *, level: str = "INFO", source: str = ENGINE) -> None:
        """`text` (one line or several) with the time, the level and the source."""
        stamp = datetime.now(UTC)
        self._write("".join(format_line(stamp, level, source, part)
                            for part in text.rstrip("\n").split("\n")))  # fmt: skip

    def stream(self, text: str, source: str) -> None:
        """Text written to a stream (print()): complete lines now, the rest at its newline."""
        pending = self._partial.pop(source, "") + text
        complete, _, rest = pending.rpartition("\n")
        if rest:
            self._partial[source] = rest
        if complete or pending.endswith("\n"):
            self.line(complete, level="INFO" if source == STDOUT else "WARNING", source=source)

    def _write(self, text: str) -> None:
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

    def close(self) -> None:
        for source in list(self._partial):  # a last line without its newline
            self.stream("\n", source)
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

    def __init__(self, fallback: TextIO, source: str) -> None:
        self._fallback = fallback
        self._source = source

    def write(self, text: str) -> int:
        log = current_log.get()
        if log is None:
            return self._fallback.write(text)
        log.stream(text, self._source)
        return len(text)

    def flush(self) -> None:
        if current_log.get() is None:
            self._fallback.flush()

    def isatty(self) -> bool:
        return self._fallback.isatty()

    def fileno(self) -> int:
        return self._fallback.fileno()


class _RoutedHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        log = current_log.get()
        if log is None:
            return
        name = record.name
        source = log.task_id if name.startswith(_DAG_MODULE) or name == "root" else name
        try:
            text = self.format(record)
        except Exception:  # a bad format string of the task's: say so, as logging would
            text = f"{record.msg!r} % {record.args!r} (could not be formatted)"
        log.line(text, level=record.levelname, source=source)


def install_capture() -> None:
    """Route print() and stdlib logging of task code to attempt logs. Idempotent, and checked
    at every engine start: whoever replaced sys.stdout since (an application, a test runner)
    gets its stream wrapped in turn rather than bypassed."""
    if not isinstance(sys.stdout, _RoutedStream):
        sys.stdout = _RoutedStream(sys.stdout, STDOUT)
    if not isinstance(sys.stderr, _RoutedStream):
        sys.stderr = _RoutedStream(sys.stderr, STDERR)
    root = logging.getLogger()
    if not any(isinstance(h, _RoutedHandler) for h in root.handlers):
        root.addHandler(_RoutedHandler())
