"""The CLI as a client of the running daemon: state changes go through its HTTP API, which the
engine carries out at once (no request table polled once a second).

The daemon is found by the database, as its lock is: the lock file names the holder's pid and
`<database>.api.json` (written by that same pid once its web server listens) gives the address
and the token file (`asyncflow.service.apifile`). No daemon, a daemon with `web_listen = off`,
or an address file left by a daemon that died: `connect` returns None and the command acts on
the database itself (`asyncflow.engine.commands`). The standard library's `http.client` is
enough for one request on loopback or a unix socket, and costs no import time.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, urlsplit

from asyncflow.cli.output import CommandError
from asyncflow.exitcodes import EX_UNAVAILABLE

if TYPE_CHECKING:
    from asyncflow.cli.context import Cli

__all__ = ["DaemonApi", "DaemonUnreachable", "connect", "segment", "through_daemon"]

T = TypeVar("T")

#: seconds to wait for an answer: state changes are carried out at once
TIMEOUT = 30.0


class DaemonUnreachable(Exception):
    """The daemon named by the address file did not answer (stopping, or its web server
    failed): the caller may act on the database instead."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.unix_path)
        self.sock = sock


def segment(value: str) -> str:
    """One path segment (a dag_id, a run_id that may hold '/')."""
    return quote(value, safe="")


class DaemonApi:
    def __init__(self, url: str, token: str, pid: int) -> None:
        self.url, self.token, self.pid = url, token, pid

    def _connection(self) -> http.client.HTTPConnection:
        if self.url.startswith("unix:"):
            return _UnixConnection(self.url.removeprefix("unix:"), TIMEOUT)
        parts = urlsplit(self.url)
        return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, TIMEOUT)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """The decoded JSON answer; `CommandError` with the daemon's message on a refusal;
        `DaemonUnreachable` when it cannot be reached."""
        headers = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        conn = self._connection()
        try:
            conn.request(method, path, body=data, headers=headers)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise DaemonUnreachable(f"the daemon (PID {self.pid}) at {self.url} did not "
                                    f"answer: {exc}") from None  # fmt: skip
        finally:
            conn.close()
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = {"detail": raw.decode("utf-8", errors="replace")[:500]}
        if response.status >= 400:
            detail = answer.get("detail") if isinstance(answer, dict) else answer
            if response.status == 401:
                raise CommandError(f"the daemon refused the API token: {detail}", EX_UNAVAILABLE)
            raise CommandError(str(detail), 1)
        return answer


def connect(cli: Cli) -> DaemonApi | None:
    """The running daemon's API for this database, or None (act on the database)."""
    from asyncflow.service.apifile import read_api_file

    database = cli.settings.database
    address = read_api_file(database, pid=cli.daemon_pid())
    if address is None:
        return None
    try:
        token = address.token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise CommandError(
            f"a daemon (PID {address.pid}) serves {database} but its API token "
            f"{address.token_file} cannot be read ({exc.strerror or exc}): run the command as "
            "the daemon's user",
            EX_UNAVAILABLE,
        ) from None
    return DaemonApi(address.url, token, address.pid)


def through_daemon(cli: Cli, fn: Callable[[DaemonApi], T]) -> T | None:
    """`fn(api)` when a daemon serves the database and answers; None when the command must act
    on the database itself (no daemon, no web server, or it did not answer: said on stderr)."""
    api = connect(cli)
    if api is None:
        return None
    try:
        return fn(api)
    except DaemonUnreachable as exc:
        cli.out.note(f"note: {exc}; acting on the database instead")
        return None
