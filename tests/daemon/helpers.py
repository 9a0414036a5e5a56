"""The real daemon as a subprocess on a temporary DAG folder and database, a fake systemd notify
socket to know when it is ready, and bounded polls of its database."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
import structlog

from asyncflow.models import dag as dag_module
from asyncflow.service.strays import MARKER

T = TypeVar("T")


def wait_for(check: Callable[[], T], *, timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `check()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.03)


def query(database: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """One read beside the daemon (WAL lets it); an absent database reads as empty."""
    if not database.exists():
        return []
    conn = sqlite3.connect(database, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):  # the daemon has not created the schema yet
            return []
        raise
    finally:
        conn.close()


def run_states(database: Path, dag_id: str) -> list[str]:
    return [r[0] for r in query(database, "SELECT state FROM dag_run WHERE dag_id=?", (dag_id,))]


def ti_states(database: Path, dag_id: str) -> dict[str, str]:
    rows = query(database, "SELECT task_id, state FROM task_instance WHERE dag_id=?", (dag_id,))
    return dict(rows)


class NotifySocket:
    """The systemd side of sd_notify: a bound AF_UNIX datagram socket (short path)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="af-"))
        self.path = str(self.dir / "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages: list[str] = []

    def wait_for(self, assignment: str, timeout: float = 15.0) -> str:
        """The first datagram (since the last match) holding `assignment`, e.g. READY=1."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {assignment} within {timeout} s; got {self.messages}")
            self.sock.settimeout(remaining)
            try:
                message = self.sock.recv(4096).decode()
            except TimeoutError:
                continue
            self.messages.append(message)
            if assignment in message.split("\n"):
                return message

    def close(self) -> None:
        self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Daemon:
    """`asyncflow serve` on `root/dags` and `root/state/asyncflow.db`."""

    root: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    notify: NotifySocket | None = None
    log_name: str = "daemon.log"
    #: a script run in place of `-m asyncflow.cli.main` (e.g. tests/daemon/faults.py)
    script: Path | None = None

    @property
    def dags(self) -> Path:
        return self.root / "dags"

    @property
    def database(self) -> Path:
        return self.root / "state" / "asyncflow.db"

    @property
    def stderr_path(self) -> Path:
        return self.root / self.log_name

    def write_dag(self, name: str, source: str) -> Path:
        self.dags.mkdir(parents=True, exist_ok=True)
        path = self.dags / name
        path.write_text(textwrap.dedent(source))
        return path

    def command(self, *extra: str) -> list[str]:
        entry = ["-m", "asyncflow.cli.main"] if self.script is None else [str(self.script)]
        return [
            sys.executable, *entry, "serve", "--dags-folder", str(self.dags),
            "--database", str(self.database), *extra,
        ]  # fmt: skip

    def start(self, *extra: str, env: dict[str, str] | None = None, ready: bool = True) -> None:
        """Start it; with `ready`, return once it sent READY=1."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.dags.mkdir(parents=True, exist_ok=True)
        if self.notify is None:
            self.notify = NotifySocket()
        environ = {**self.env, "NOTIFY_SOCKET": self.notify.path, **(env or {})}
        with open(self.stderr_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(*extra), cwd=self.root, env=environ, stdout=log, stderr=log
            )
        if ready:
            self.notify.wait_for("READY=1")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def log(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def wait(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"daemon still running after {timeout} s:\n{self.log()}") from None

    def terminate(self, timeout: float = 15.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.kill()
        assert self.process.wait(10) == -signal.SIGKILL

    def close(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        if self.notify is not None:
            self.notify.close()


def daemon_env(root: Path, **settings: str) -> dict[str, str]:
    """The test process's environment without anything asyncflow or systemd would read, plus
    fast intervals and `settings` (as ASYNCFLOW_<NAME>)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ASYNCFLOW_", "NOTIFY_", "WATCHDOG_", "STATE_DIRECTORY"))
        and k not in ("INVOCATION_ID", "JOURNAL_STREAM")
    }
    env.update(
        ASYNCFLOW_HOME=str(root / "state"),
        ASYNCFLOW_LOG_FORMAT="json",
        ASYNCFLOW_DAG_DIR_LIST_INTERVAL="0.2",
        ASYNCFLOW_DRAIN_TIMEOUT="1",
        ASYNCFLOW_PARALLELISM="8",
        ASYNCFLOW_WEB_LISTEN="off",  # tests that want the web server pass web_listen=
        PYTHONUNBUFFERED="1",
    )
    env.update({f"ASYNCFLOW_{k.upper()}": v for k, v in settings.items()})
    return env


@contextlib.contextmanager
def daemon(root: Path, **settings: str) -> Iterator[Daemon]:
    d = Daemon(root, daemon_env(root, **settings))
    try:
        yield d
    finally:
        d.close()


@dataclass
class Result:
    code: int
    out: str
    err: str


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    """`asyncflow ARGS` in this process (much faster than a subprocess)."""
    from asyncflow.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    saved = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(list(args))
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return Result(code, out.getvalue(), err.getvalue())


@pytest.fixture(autouse=True)
def restore_process_state() -> Iterator[None]:
    """Commands run in this process configure logging, DAG defaults, the strays marker and the
    capture of task output: put them back so that other tests see what they expect."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    marker = os.environ.get(MARKER)
    defaults = dag_module.DagDefaults(**vars(dag_module.DAG_DEFAULTS))
    streams = (sys.stdout, sys.stderr)
    yield
    sys.stdout, sys.stderr = streams
    structlog.reset_defaults()
    root.handlers[:] = handlers
    root.setLevel(level)
    if marker is None:
        os.environ.pop(MARKER, None)
    else:
        os.environ[MARKER] = marker
    for name, value in vars(defaults).items():
        setattr(dag_module.DAG_DEFAULTS, name, value)
