"""The library's loggers: structlog in front, the standard library's `logging` behind.

asyncflow logs with structlog's API (`log.info("run finished", dag_id=...)`), but every event
goes to a stdlib logger named `asyncflow.<part>`, as structlog recommends for libraries. So an
application that embeds the engine and configures no logging sees nothing (the `asyncflow`
logger has a `NullHandler`, and structlog's global configuration is never touched), and one that
does (`logging.basicConfig`, its own handlers) gets readable lines: `event key=value ...`.

`asyncflow serve` and the CLI configure the handlers at their entry points
(`asyncflow.service.logging.configure_logging`); their formatter renders the event's fields
(kept on the record as `asyncflow_event`) as JSON or as a console line.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlog.typing import EventDict, Processor, WrappedLogger

__all__ = ["EVENT_ATTRIBUTE", "get_logger"]

#: the LogRecord attribute that carries the structured event (its fields, unrendered)
EVENT_ATTRIBUTE = "asyncflow_event"

logging.getLogger("asyncflow").addHandler(logging.NullHandler())


def _to_stdlib(
    logger: WrappedLogger, method: str, event: EventDict
) -> tuple[tuple[str], dict[str, Any]]:
    """Hand the event to the stdlib logger: a readable message for any handler, the fields
    themselves for ours."""
    exc_info = event.pop("exc_info", None)
    text = str(event.get("event", ""))
    multiline = []
    fields = []
    for key, value in event.items():
        if key in ("event", "level"):
            continue
        if isinstance(value, str) and "\n" in value:
            multiline.append(value.rstrip("\n"))
        else:
            fields.append(f"{key}={value!r}")
    message = " ".join([text, *fields])
    if multiline:
        message = "\n".join([message, *multiline])
    kwargs: dict[str, Any] = {"extra": {EVENT_ATTRIBUTE: event}}
    if exc_info:
        kwargs["exc_info"] = exc_info
    return (message,), kwargs


def _wrap(name: str) -> Any:
    import structlog  # here, not at import: with rich installed it costs ~70 ms to import

    processors: list[Processor] = [
        structlog.stdlib.filter_by_level,
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        _to_stdlib,
    ]
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=processors,
        wrapper_class=structlog.stdlib.BoundLogger,
        context_class=dict,
        cache_logger_on_first_use=True,
    )


class _Logger:
    """Builds the structlog logger when first used, so that `import asyncflow` (and a CLI
    command that logs nothing) never imports structlog."""

    __slots__ = ("_logger", "_name")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Any = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            self._logger = _wrap(self._name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> Any:
    """A structlog logger for asyncflow's module `name` (e.g. "asyncflow.scheduler") whose
    events go to `logging.getLogger(name)`, whatever structlog's global configuration is."""
    return _Logger(name)
