"""systemd's notify protocol (`sd_notify(3)`) in pure Python, without python-systemd.

Under `Type=notify` systemd passes the path of a datagram socket in `$NOTIFY_SOCKET`; the
daemon sends newline-separated `KEY=value` assignments to it: `READY=1` once it serves,
`STATUS=...` for `systemctl status`, `WATCHDOG=1` as a keep-alive, `STOPPING=1` when it drains.
Outside systemd the variable is unset and every call is a cheap no-op that returns False.

The watchdog ping is driven by the daemon's event loop, never by a thread, so that a hung loop
stops the pings and systemd restarts the service: `watchdog_interval()` says how often to ping,
`Notifier.watchdog()` sends one ping. Task subprocesses must not inherit the variables (a child
could otherwise ping on the daemon's behalf): build their environment with `child_environ()`.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping
from types import TracebackType

__all__ = ["NOTIFY_VARIABLES", "Notifier", "child_environ", "notify", "watchdog_interval"]

NOTIFY_VARIABLES = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID")
"""The variables through which systemd talks to the main process only."""

_log = logging.getLogger(__name__)


def _address(environ: Mapping[str, str] | None) -> str | None:
    """The socket address from `$NOTIFY_SOCKET`, or None when there is none we can use."""
    value = (os.environ if environ is None else environ).get("NOTIFY_SOCKET", "")
    if value.startswith("@"):  # abstract namespace: a leading NUL byte instead of '@'
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    if value:  # e.g. systemd 253's 'vsock:CID:PORT', which a host service never gets
        _log.warning("NOTIFY_SOCKET=%r is not a unix socket path: notifications are off", value)
    return None


def _open_socket() -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
    sock.setblocking(False)
    return sock


def _send(sock: socket.socket, address: str, message: str) -> bool:
    try:
        sock.sendto(message.encode(), address)
    except OSError as exc:
        # A full socket buffer (EAGAIN) or a vanished systemd must not take the daemon down:
        # the caller goes on, and a missed READY/WATCHDOG shows in systemd's own log.
        _log.warning("could not notify systemd at %r (%s): %s", address, message, exc)
        return False
    return True


def notify(message: str, *, environ: Mapping[str, str] | None = None) -> bool:
    """Send one datagram `message` (e.g. ``"READY=1"``) to `$NOTIFY_SOCKET`.

    Returns True when it was sent, False when not running under systemd (no socket) or when
    the send failed (logged). Never blocks.
    """
    address = _address(environ)
    if address is None:
        return False
    with _open_socket() as sock:
        return _send(sock, address, message)


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send `WATCHDOG=1`, in seconds: half of `$WATCHDOG_USEC`.

    None when the watchdog is off: `$WATCHDOG_USEC` unset or not a positive integer, or
    `$WATCHDOG_PID` set to another process (the variables were inherited, not meant for us).
    """
    env = os.environ if environ is None else environ
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    pid = env.get("WATCHDOG_PID")
    if pid is not None:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    return usec / 2_000_000


def child_environ(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of `environ` (default `os.environ`) without systemd's notify variables."""
    env = os.environ if environ is None else environ
    return {key: value for key, value in env.items() if key not in NOTIFY_VARIABLES}


def _one_line(text: str) -> str:
    # A newline would start a new assignment: 'STATUS=x\nREADY=1' must not happen by accident.
    return " ".join(text.splitlines())


class Notifier:
    """Sends notifications to systemd over one socket kept open; all no-ops outside systemd.

    Read the environment once at start-up::

        notifier = Notifier()
        notifier.ready("serving 12 DAGs")
        ...
        notifier.stopping("draining 3 running tasks")
    """

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._address = _address(environ)
        self._socket: socket.socket | None = None
        self.watchdog_interval: float | None = watchdog_interval(environ)
        """Seconds between `watchdog()` calls, or None when systemd wants none."""

    @property
    def enabled(self) -> bool:
        """Whether there is a systemd to talk to."""
        return self._address is not None

    def notify(self, message: str) -> bool:
        """Send `message` as is; True when sent."""
        if self._address is None:
            return False
        if self._socket is None:
            self._socket = _open_socket()
        return _send(self._socket, self._address, message)

    def ready(self, status: str | None = None) -> bool:
        """Start-up is complete: systemd considers the service started."""
        if status is None:
            return self.notify("READY=1")
        return self.notify(f"READY=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> bool:
        """A one-line status shown by `systemctl status`."""
        return self.notify(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> bool:
        """The daemon has begun to shut down (drain)."""
        if status is None:
            return self.notify("STOPPING=1")
        return self.notify(f"STOPPING=1\nSTATUS={_one_line(status)}")

    def reloading(self) -> bool:
        """A reload began; send `ready()` when it is done (as `Type=notify-reload` wants)."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify(f"RELOADING=1\nMONOTONIC_USEC={usec}")

    def watchdog(self) -> bool:
        """The keep-alive ping; call it from the event loop every `watchdog_interval` seconds."""
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        """Ask for `seconds` more before systemd's start/stop timeout fires (a long drain)."""
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, round(seconds * 1_000_000))}")

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> Notifier:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
