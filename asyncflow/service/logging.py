"""Configure structlog (and stdlib logging) once, at the entry point.

The library never configures logging on import: only `asyncflow serve` and the CLI call
`configure_logging()`. It writes JSON lines when not on a terminal or under systemd (journald
keeps one line per event), a readable console format on a terminal. Context bound with
`structlog.contextvars.bind_contextvars(dag_id=..., run_id=..., task_id=..., try_number=...)`
shows on every line, also on lines from stdlib loggers (libraries, `logging.getLogger`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import TextIO

import structlog
from structlog.typing import Processor

from asyncflow.exceptions import ConfigError

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


def configure_logging(
    *,
    fmt: str = "auto",
    level: str = "info",
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send structlog and stdlib logging to `stream` (default stderr) at `level` and above.

    `fmt` is "json", "console" or "auto"; `level` one of debug/info/warning/error. Calling it
    again reconfigures (tests); loggers are cached on first use, so call it before logging.
    """
    if fmt not in FORMATS:
        raise ConfigError(f"invalid log_format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if level.lower() not in LEVELS:
        raise ConfigError(f"invalid log_level {level!r}: expected one of {', '.join(LEVELS)}")
    levelno = LEVELS[level.lower()]
    out = sys.stderr if stream is None else stream
    env = os.environ if environ is None else environ
    as_json = wants_json(fmt, out, env)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        timestamper,
    ]
    renderer: Processor
    if as_json:
        # Tracebacks as one string field; the console renderer formats them itself.
        finish: list[Processor] = [
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            structlog.processors.UnicodeDecoder(),
        ]
        renderer = structlog.processors.JSONRenderer()
    else:
        finish = [structlog.processors.StackInfoRenderer()]
        colors = _isatty(out) and "NO_COLOR" not in env
        renderer = structlog.dev.ConsoleRenderer(colors=colors)

    structlog.configure(
        processors=[*shared, *finish, renderer],
        # Methods below `level` are no-ops: a filtered-out call costs one function call.
        wrapper_class=structlog.make_filtering_bound_logger(levelno),
        logger_factory=structlog.WriteLoggerFactory(file=out),
        context_class=dict,
        cache_logger_on_first_use=True,
    )

    handler = _Handler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
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
