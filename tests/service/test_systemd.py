"""sd_notify over a real AF_UNIX datagram socket, the watchdog interval, the child environment."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncflow.service.systemd import Notifier, child_environ, notify, watchdog_interval


class Receiver:
    """The systemd side: a bound datagram socket and the NOTIFY_SOCKET value that names it."""

    def __init__(self, sock: socket.socket, value: str) -> None:
        self.sock = sock
        self.environ = {"NOTIFY_SOCKET": value}

    def receive(self) -> str:
        return self.sock.recv(4096).decode()


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # AF_UNIX paths are limited to 108 bytes: pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="af-sd-"))
    yield path
    shutil.rmtree(path)


@pytest.fixture(params=["path", "abstract"])
def receiver(request: pytest.FixtureRequest, short_dir: Path) -> Iterator[Receiver]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.settimeout(5)
    if request.param == "path":
        path = str(short_dir / "notify")
        sock.bind(path)
        value = path
    else:
        name = f"asyncflow-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name)
        value = "@" + name
    with sock:
        yield Receiver(sock, value)


def test_notify_sends_one_datagram(receiver: Receiver) -> None:
    assert notify("READY=1", environ=receiver.environ) is True
    assert receiver.receive() == "READY=1"


def test_notifier_payloads(receiver: Receiver) -> None:
    with Notifier(receiver.environ) as notifier:
        assert notifier.enabled
        assert notifier.ready()
        assert receiver.receive() == "READY=1"
        assert notifier.ready("serving 3 DAGs")
        assert receiver.receive() == "READY=1\nSTATUS=serving 3 DAGs"
        assert notifier.status("loading\nREADY=1")  # a newline must not smuggle in READY
        assert receiver.receive() == "STATUS=loading READY=1"
        assert notifier.watchdog()
        assert receiver.receive() == "WATCHDOG=1"
        assert notifier.stopping()
        assert receiver.receive() == "STOPPING=1"
        assert notifier.stopping("draining 2 tasks")
        assert receiver.receive() == "STOPPING=1\nSTATUS=draining 2 tasks"
        assert notifier.extend_timeout(1.5)
        assert receiver.receive() == "EXTEND_TIMEOUT_USEC=1500000"
        assert notifier.reloading()
        reloading, monotonic = receiver.receive().split("\n")
        assert reloading == "RELOADING=1"
        assert monotonic.startswith("MONOTONIC_USEC=")
        assert int(monotonic.partition("=")[2]) > 0


def test_no_socket_means_not_under_systemd() -> None:
    assert notify("READY=1", environ={}) is False
    notifier = Notifier({})
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False
    assert notifier.watchdog_interval is None


def test_notify_reads_os_environ_by_default(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", receiver.environ["NOTIFY_SOCKET"])
    assert notify("STATUS=from os.environ")
    assert receiver.receive() == "STATUS=from os.environ"
    monkeypatch.delenv("NOTIFY_SOCKET")
    assert notify("READY=1") is False


def test_unusable_socket_value_is_off(caplog: pytest.LogCaptureFixture) -> None:
    assert notify("READY=1", environ={"NOTIFY_SOCKET": "vsock:2:1234"}) is False
    assert "not a unix socket path" in caplog.text


def test_send_failure_is_logged_not_raised(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    missing = str(short_dir / "nobody-listens")
    with caplog.at_level(logging.WARNING):
        assert notify("READY=1", environ={"NOTIFY_SOCKET": missing}) is False
    assert "could not notify systemd" in caplog.text
    assert missing in caplog.text


def test_send_never_blocks_on_a_full_socket(short_dir: Path) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(short_dir / "full")
    sock.bind(path)  # nobody reads: the queue fills up
    results: list[bool] = []

    def flood() -> None:
        with Notifier({"NOTIFY_SOCKET": path}) as notifier:
            for _ in range(100_000):
                if not notifier.watchdog():
                    results.append(False)
                    return
            results.append(True)

    with sock:
        thread = threading.Thread(target=flood, daemon=True)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "a send blocked on the full socket"
    assert results == [False]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
    ids=["no-pid", "our-pid", "other-pid", "bad-pid", "zero", "garbage", "unset"],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ) == expected
    assert Notifier(environ).watchdog_interval == expected


def test_child_environ_strips_notify_variables() -> None:
    environ = {
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": "1234",
        "PATH": "/usr/bin",
        "ASYNCFLOW_HOME": "/var/lib/asyncflow",
    }
    child = child_environ(environ)
    assert child == {"PATH": "/usr/bin", "ASYNCFLOW_HOME": "/var/lib/asyncflow"}
    assert "NOTIFY_SOCKET" in environ  # a copy: the daemon keeps its own


def test_child_environ_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/systemd/notify")
    monkeypatch.setenv("WATCHDOG_USEC", "1000")
    child = child_environ()
    assert "NOTIFY_SOCKET" not in child
    assert "WATCHDOG_USEC" not in child
    assert child["PATH"] == os.environ["PATH"]
