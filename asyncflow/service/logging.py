"""Configure logging once, at the entry point.

The library never configures logging (its loggers go to stdlib `logging`: `asyncflow.logs`):
only `asyncflow serve` and the CLI call `configure_logging()`. It writes JSON lines when not on
a terminal or under systemd (journald keeps one line per event), a readable console format on a
terminal (colours, tracebacks as they print). Context bound with
`structlog.contextvars.bind_contextvars(dag_id=..., run_id=..., task_id=..., try_number=...)`
shows on every line, also on lines from stdlib loggers (libraries, `logging.getLogger`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor

from asyncflow.engine.tasklog import current_log
from asyncflow.exceptions import ConfigError
from asyncflow.logs import EVENT_ATTRIBUTE

__all__ = ["LEVELS", "configure_logging", "wants_json"]

LEVELS: Mapping[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS = ("auto", "json", "console")


class _Handler(logging.StreamHandler):  # type: ignore[type-arg]
    """Our handler on the root logger, so that a second configure replaces, not adds, it."""


def wants_json(fmt: str, stream: TextIO, environ: Mapping[str, str]) -> bool:
    """JSON when asked, or on "auto" when the stream is no terminal or systemd runs us."""
    if fmt != "auto":
        return fmt == "json"
    under_systemd = bool(environ.get("JOURNAL_STREAM") or environ.get("INVOCATION_ID"))
    return under_systemd or not _isatty(stream)


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty(), or a closed stream
        return False


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """Renders asyncflow's events from their fields (`asyncflow.logs`), other records (a
    library's, a DAG's) through the same renderer, as structlog's ProcessorFormatter does."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, EVENT_ATTRIBUTE, None)
        if event is not None:
            record = logging.makeLogRecord(record.__dict__)
            fields = dict(event)
            if record.exc_info:
                fields["exc_info"] = record.exc_info
                record.exc_info = None
            record.msg, record.args = fields, ()
            record._logger = None  # ProcessorFormatter's marks
            record._name = record.levelname.lower()
        return super().format(record)


def _not_task_output(record: logging.LogRecord) -> bool:
    """What a task logs goes to its attempt log, not to the daemon's console; asyncflow's own
    lines (a failed attempt, a warning of the engine's) always come through."""
    return current_log.get() is None or record.name.startswith("asyncflow")


def _add_logger_name(logger: Any, method: str, event: EventDict) -> EventDict:
    record = event.get("_record")
    if record is not None and "logger" not in event:
        event["logger"] = record.name
    return event


def configure_logging(
    *,
    fmt: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send asyncflow's logs, structlog's and stdlib logging to `stream` (default stderr) at
    `level` and above: one handler on the root logger, which every event goes through.

    `fmt` is "json", "console" or "auto"; `level` one of debug/info/warning/error. On the
    console, a traceback (a task's, without asyncflow's frames) follows its line as it would
    print; in JSON it is the `exception` field. Calling it again reconfigures (tests).
    """
    if fmt not in FORMATS:
        raise ConfigError(f"invalid log_format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if level.lower() not in LEVELS:
        raise ConfigError(f"invalid log_level {level!r}: expected one of {', '.join(LEVELS)}")
    levelno = LEVELS[level.lower()]
    out = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    as_json = wants_json(fmt, out, env)

    renderer: Processor
    finish: list[Processor]
    if as_json:
        finish = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
        ]
        renderer = structlog.processors.JSONRenderer()
    else:
        finish = [structlog.processors.StackInfoRenderer()]
        colors = _isatty(out) and "NO_COLOR" not in env
        renderer = structlog.dev.ConsoleRenderer(
            colors=colors, exception_formatter=structlog.dev.plain_traceback
        )

    # Whatever logs with structlog's own loggers (a DAG's code, in the daemon) goes the same way.
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.contextvars.merge_contextvars,
            structlog.stdlib.add_log_level,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        wrapper_class=structlog.stdlib.BoundLogger,
        logger_factory=structlog.stdlib.LoggerFactory(),
        context_class=dict,
        cache_logger_on_first_use=False,
    )

    handler = _Handler(out)
    handler.addFilter(_not_task_output)
    handler.setFormatter(
        _Formatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_log_level,
            ],
            processors=[
                structlog.processors.TimeStamper(fmt="iso", utc=True),
                _add_logger_name,
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                *finish,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
