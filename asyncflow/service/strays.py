"""Task subprocesses left running by a daemon that died (`kill -9`, OOM, power cut of a VM).

Subprocess tasks run in their own session and process group, so that a timeout or a shutdown
can end a whole group; the price is that they outlive a daemon killed without a chance to end
them. To find them again, the daemon exports `ASYNCFLOW_ENGINE_ID=<opaque id>` into its own
environment at start-up, and every task subprocess inherits it
(`BashOperator` adds it even to an explicit `env=`). The next daemon on the same database,
*after* it has taken the database lock (so no live daemon owns them), scans `/proc/*/environ`
for processes carrying exactly that marker and ends their process groups: SIGTERM, a short
grace, then SIGKILL. The id is a hash of the database's absolute path, not the path: a task
learns nothing from it that would lead it to the database (and other DAGs' conf and XComs).

A process that scrubbed its environment (`env -i`) is not found; neither is one in another PID
namespace. Linux only: without `/proc` the scan finds nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from asyncflow.logs import get_logger

__all__ = ["MARKER", "Stray", "find_strays", "kill_strays", "marker_value"]

MARKER = "ASYNCFLOW_ENGINE_ID"
"""The environment variable that ties a task subprocess to the database of its daemon."""

log = get_logger("asyncflow.strays")


def marker_value(database: str | os.PathLike[str]) -> str:
    """The marker's value for `database`: an opaque id, a hash of its absolute path (symlinks
    not resolved), so that the path itself is not in every task's environment."""
    path = os.path.abspath(os.fspath(database)).encode(errors="surrogateescape")
    return hashlib.sha256(b"asyncflow-engine\0" + path).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Stray:
    pid: int
    pgid: int
    command: str


def _environ_has(pid_dir: Path, entry: bytes) -> bool:
    try:
        data = (pid_dir / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return False
    return entry in data.split(b"\0")


def _command(pid_dir: Path) -> str:
    try:
        raw = (pid_dir / "cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:200]


def find_strays(database: str | os.PathLike[str], *, proc: Path = Path("/proc")) -> list[Stray]:
    """Processes (other than this one) whose environment holds the marker of `database`."""
    entry = f"{MARKER}={marker_value(database)}".encode()
    me = os.getpid()
    found: list[Stray] = []
    try:
        pid_dirs = [p for p in proc.iterdir() if p.name.isdigit()]
    except OSError:
        return found
    for pid_dir in pid_dirs:
        pid = int(pid_dir.name)
        if pid == me or not _environ_has(pid_dir, entry):
            continue
        try:
            pgid = os.getpgid(pid)
        except ProcessLookupError:
            continue
        found.append(Stray(pid, pgid, _command(pid_dir)))
    return sorted(found, key=lambda s: s.pid)


def _alive(pid: int, proc: Path) -> bool:
    """Running or stopped; a zombie has ended (only its parent's wait() is missing)."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return False
    state = stat.rsplit(")", 1)[-1].split()[0:1]
    return state != ["Z"] and state != ["X"]


def _signal(stray: Stray, sig: signal.Signals, own_group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if stray.pgid == own_group:  # never signal our own group: it holds us
            os.kill(stray.pid, sig)
        else:
            os.killpg(stray.pgid, sig)


def kill_strays(
    database: str | os.PathLike[str], *, grace: float = 2.0, proc: Path = Path("/proc")
) -> list[Stray]:
    """End every stray of `database`: SIGTERM to its group, SIGKILL after `grace` seconds.
    Blocking (at most `grace` plus a little); returns what it found. Call it only while holding
    the database lock, so that no live daemon owns these processes."""
    strays = find_strays(database, proc=proc)
    if not strays:
        return strays
    own_group = os.getpgid(0)
    for stray in strays:
        log.warning(
            "ending a task process left by a previous daemon",
            pid=stray.pid,
            pgid=stray.pgid,
            command=stray.command,
        )
        _signal(stray, signal.SIGTERM, own_group)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not any(_alive(s.pid, proc) for s in strays):
            return strays
        time.sleep(0.02)
    for stray in strays:
        if _alive(stray.pid, proc):
            log.warning("task process ignored SIGTERM: killing it", pid=stray.pid)
            _signal(stray, signal.SIGKILL, own_group)
    return strays
