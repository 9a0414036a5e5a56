"""configure_logging: JSON lines with bound context, console on a terminal, stdlib routed too."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
import structlog

from asyncflow.exceptions import ConfigError
from asyncflow.service.logging import configure_logging, wants_json


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_bound_context() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, environ={})
    structlog.contextvars.bind_contextvars(dag_id="etl", run_id="manual__1", task_id="load")
    structlog.contextvars.bind_contextvars(try_number=2)
    structlog.get_logger().info("task started", rows=10)
    [line] = lines(out)
    assert line["event"] == "task started"
    assert line["rows"] == 10
    assert line["level"] == "info"
    assert (line["dag_id"], line["run_id"], line["task_id"], line["try_number"]) == (
        "etl",
        "manual__1",
        "load",
        2,
    )
    assert line["timestamp"].endswith("Z")
    assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None


def test_stdlib_records_go_through_the_same_renderer() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, environ={})
    structlog.contextvars.bind_contextvars(dag_id="etl")
    logging.getLogger("some.library").warning("retrying %s in %ds", "GET", 3)
    [line] = lines(out)
    assert line["event"] == "retrying GET in 3s"
    assert line["level"] == "warning"
    assert line["logger"] == "some.library"
    assert line["dag_id"] == "etl"
    assert line["timestamp"].endswith("Z")


def test_exceptions_are_formatted_into_the_json_line() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", stream=out, environ={})
    try:
        raise ValueError("boom")
    except ValueError:
        structlog.get_logger().exception("task failed")
        logging.getLogger("lib").exception("library failed")
    first, second = lines(out)
    assert "ValueError: boom" in first["exception"]
    assert "Traceback" in first["exception"]
    assert "ValueError: boom" in second["exception"]


class Exploding:
    def __repr__(self) -> str:
        raise AssertionError("a filtered-out event was rendered")


def test_levels_below_the_threshold_are_dropped_before_any_work() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level="warning", stream=out, environ={})
    log = structlog.get_logger()
    log.info("quiet", obj=Exploding())
    log.debug("quieter", obj=Exploding())
    logging.getLogger("lib").info("quiet too")
    log.warning("loud")
    logging.getLogger("lib").error("loud too")
    assert [line["event"] for line in lines(out)] == ["loud", "loud too"]


def test_debug_level_shows_debug() -> None:
    out = io.StringIO()
    configure_logging(fmt="json", level="DEBUG", stream=out, environ={})
    structlog.get_logger().debug("detail")
    logging.getLogger("lib").debug("lib detail")
    assert [line["event"] for line in lines(out)] == ["detail", "lib detail"]


def test_console_format_is_readable_not_json() -> None:
    out = Terminal()
    configure_logging(fmt="console", stream=out, environ={"NO_COLOR": "1"})
    structlog.contextvars.bind_contextvars(dag_id="etl")
    structlog.get_logger().info("task started")
    text = out.getvalue()
    assert "task started" in text
    assert "dag_id=etl" in text
    assert "\x1b[" not in text  # NO_COLOR
    with pytest.raises(json.JSONDecodeError):
        json.loads(text.splitlines()[0])


def test_console_uses_colors_only_on_a_terminal() -> None:
    terminal = Terminal()
    configure_logging(fmt="console", stream=terminal, environ={})
    structlog.get_logger().info("colored")
    assert "\x1b[" in terminal.getvalue()
    pipe = io.StringIO()
    configure_logging(fmt="console", stream=pipe, environ={})
    structlog.get_logger().info("plain")
    assert "\x1b[" not in pipe.getvalue()


@pytest.mark.parametrize(
    ("fmt", "tty", "environ", "expected"),
    [
        ("auto", False, {}, True),
        ("auto", True, {}, False),
        ("auto", True, {"JOURNAL_STREAM": "8:12345"}, True),
        ("auto", True, {"INVOCATION_ID": "abc"}, True),
        ("json", True, {}, True),
        ("console", False, {"INVOCATION_ID": "abc"}, False),
    ],
    ids=["pipe", "terminal", "journal", "systemd", "json", "console"],
)
def test_auto_format(fmt: str, tty: bool, environ: dict[str, str], expected: bool) -> None:
    stream = Terminal() if tty else io.StringIO()
    assert wants_json(fmt, stream, environ) is expected
    configure_logging(fmt=fmt, stream=stream, environ={**environ, "NO_COLOR": "1"})
    structlog.get_logger().info("hello")
    first = stream.getvalue().splitlines()[0]
    assert first.startswith("{") is expected


def test_reconfiguring_replaces_the_stdlib_handler() -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging(fmt="json", stream=first, environ={})
    configure_logging(fmt="json", stream=second, environ={})
    logging.getLogger("lib").warning("once")
    assert first.getvalue() == ""
    assert len(lines(second)) == 1


@pytest.mark.parametrize(("fmt", "level"), [("xml", "info"), ("json", "verbose")])
def test_bad_format_or_level(fmt: str, level: str) -> None:
    with pytest.raises(ConfigError, match=repr(fmt) if fmt == "xml" else repr(level)):
        configure_logging(fmt=fmt, level=level, stream=io.StringIO(), environ={})
