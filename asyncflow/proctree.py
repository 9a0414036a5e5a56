"""The processes a task started, found and ended as one tree (Linux; elsewhere: the process
group only).

A task's command may leave its process group and session (`setsid`,
`Popen(start_new_session=True)`), fork twice so that its parent is gone (a "daemonised"
process), or scrub its environment (`env -i`). Signalling the process group misses all of
these. So a task's processes are found in four ways, any one of which is enough:

1. **the tree**: the descendants of the task's first process (`/proc/<pid>/task/*/children`);
2. **what was seen**: while the task runs, its tree is recorded every so often (quickly at
   first: most escapes happen at start), so that a process is still known after it left the
   tree, by (pid, start time) so that a reused pid is not mistaken for it;
3. **the session**: the first process leads a session of its own; what did not call `setsid`
   is still in it, whatever its parent or environment;
4. **the marker**: every process of the attempt inherits ``ASYNCFLOW_ATTEMPT_ID=<opaque id>``
   in its environment; it survives `setsid` and double forks (not `env -i`).

Where to look: when this process is a *child subreaper* (`become_subreaper`, which the daemon
calls at start-up; Linux's `PR_SET_CHILD_SUBREAPER`), an orphan is re-parented to it instead
of to PID 1, so every process any task started stays among its descendants, and only those are
scanned. Otherwise (a library inside another program) every process in `/proc` is.

`end_processes` ends a set of processes: SIGTERM, up to `grace` seconds, SIGKILL; and reaps
those that became our children (orphans re-parented to us), which nobody else waits for.

What is not found: a process that scrubs its environment *and* leaves the session *and* leaves
the tree between two records (e.g. ``env -i setsid sh -c 'cmd &'`` within the first
milliseconds). Under the daemon it is still our descendant, and is ended when the daemon stops
(`end_descendants`).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import anyio

__all__ = [
    "ATTEMPT_MARKER",
    "Proc",
    "ProcessTree",
    "become_subreaper",
    "descendants",
    "end_descendants",
    "end_processes",
    "is_subreaper",
    "read_proc",
]

ATTEMPT_MARKER = "ASYNCFLOW_ATTEMPT_ID"
"""The environment variable that ties a process to the task attempt that started it."""

PROC = Path("/proc")
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37
#: seconds between records of a running task's tree: from the first to the last
RECORD_FIRST, RECORD_EVERY = 0.005, 0.5
#: seconds to wait for ended processes to be re-parented to us, to reap them
REAP_WAIT = 1.0
#: SIGKILL rounds at most (a process stuck in the kernel does not die at once)
KILL_ROUNDS = 100


@dataclass(frozen=True, slots=True)
class Proc:
    pid: int
    ppid: int
    pgid: int
    sid: int
    start: int  # clock ticks after boot: with the pid, names one process
    state: str

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def read_proc(pid: int) -> Proc | None:
    try:
        stat = (PROC / str(pid) / "stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()  # after "pid (comm) "
    return Proc(pid, int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19]),
                fields[0].decode())  # fmt: skip


def children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return found
    for tid in threads:
        with contextlib.suppress(OSError):
            listed = (PROC / str(pid) / "task" / tid / "children").read_bytes()
            found.extend(int(child) for child in listed.split())
    return found


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (not `pid` itself), parents before their children."""
    found: list[int] = []
    todo = children(pid)
    seen = set(todo)
    while todo:
        child = todo.pop()
        found.append(child)
        for grandchild in children(child):
            if grandchild not in seen:
                seen.add(grandchild)
                todo.append(grandchild)
    return found


def _environ_has(pid: int, entry: bytes) -> bool:
    try:
        data = (PROC / str(pid) / "environ").read_bytes()
    except OSError:  # gone, or another user's process
        return False
    return entry in data.split(b"\0")


# -- the subreaper ---------------------------------------------------------------------------------
_subreaper = False


def _prctl(option: int, arg: int | ctypes.c_int | ctypes._Pointer[ctypes.c_int]) -> int:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    result: int = libc.prctl(option, arg, 0, 0, 0)
    if result != 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return result


def become_subreaper() -> bool:
    """Make this process a child subreaper (Linux): orphans of its descendants are
    re-parented to it, so that they can be found and ended. False where that is not possible."""
    global _subreaper
    if not sys.platform.startswith("linux"):
        return False
    try:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    except (OSError, AttributeError):
        return False
    _subreaper = True
    return True


def is_subreaper() -> bool:
    if _subreaper or not sys.platform.startswith("linux"):
        return _subreaper
    value = ctypes.c_int(0)
    try:
        _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.pointer(value))
    except (OSError, AttributeError):
        return False
    return bool(value.value)


def _candidates() -> list[int]:
    """Where a task's escaped processes can be: our descendants when we are a subreaper,
    otherwise every process."""
    if is_subreaper():
        return descendants(os.getpid())
    try:
        return [int(name) for name in os.listdir(PROC) if name.isdigit()]
    except OSError:
        return []


# -- one attempt's processes ---------------------------------------------------------------------
def new_attempt_id() -> str:
    return secrets.token_hex(12)


class ProcessTree:
    """The processes of one task attempt, whose first process is `leader` (started in a session
    of its own, with ``ATTEMPT_MARKER=attempt_id`` in its environment)."""

    def __init__(self, leader: int, attempt_id: str) -> None:
        self.leader = leader
        self.entry = f"{ATTEMPT_MARKER}={attempt_id}".encode()
        self.seen: dict[int, int] = {}  # pid -> start time
        self.ended = False  # its processes were looked for and ended after it exited
        first = read_proc(leader)
        #: no process that started before the leader can be the attempt's (boot ticks)
        self.started = first.start if first is not None else 0
        session = first.sid if first is not None else leader
        #: the leader's own session; None if it shares ours (then the session names nothing)
        self.session = session if session != os.getsid(0) else None
        if first is not None:
            self.seen[leader] = first.start

    def record(self) -> None:
        """Note the processes now in the tree (they may leave it later)."""
        for pid in descendants(self.leader):
            proc = read_proc(pid)
            if proc is not None:
                self.seen.setdefault(pid, proc.start)

    async def keep_recording(self) -> None:
        """Record the tree, often at first, then every RECORD_EVERY seconds; until cancelled."""
        delay = RECORD_FIRST
        while True:
            await anyio.sleep(delay)
            self.record()
            delay = min(delay * 2, RECORD_EVERY)

    def members(self) -> list[Proc]:
        """The attempt's processes, wherever they are now, zombies included (they are still
        to be reaped)."""
        self.record()
        me = os.getpid()
        found: list[Proc] = []
        for pid in _candidates():
            if pid == me:
                continue
            proc = read_proc(pid)
            if proc is None:
                continue
            if (
                self.seen.get(pid) == proc.start
                or proc.sid == self.session
                # the environment is read last, and only of processes young enough to be ours
                or (proc.start >= self.started and _environ_has(pid, self.entry))
            ):
                found.append(proc)
        return found

    async def end(self, grace: float) -> list[Proc]:
        """End every process of the attempt (SIGTERM, `grace`, SIGKILL); what was found."""
        found = await end_processes(self.members, grace, spare=self.leader)
        self.ended = True
        return found


async def end_processes(
    lookup: Callable[[], list[Proc]], grace: float, *, spare: int | None = None
) -> list[Proc]:
    """SIGTERM to each process `lookup()` returns (asked again before SIGKILL, to catch what
    they started meanwhile), SIGKILL to what is left after `grace` seconds; reap those that are
    our children, except `spare` (whose owner waits for it). Returns what was signalled."""
    ended: dict[tuple[int, int], Proc] = {}

    def signal_all(sig: signal.Signals) -> int:
        found = lookup()
        for proc in found:  # zombies too: they are ours to reap
            ended.setdefault((proc.pid, proc.start), proc)
        live = [p for p in found if p.alive]
        for proc in live:
            _kill(proc, sig)
        return len(live)

    if signal_all(signal.SIGTERM) or ended:
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_still(p) for p in ended.values()):
            await anyio.sleep(0.02)
            _reap(ended.values(), spare)
        for _ in range(KILL_ROUNDS):  # what they started meanwhile gets the same
            if not signal_all(signal.SIGKILL):
                break
            await anyio.sleep(0.01)
            _reap(ended.values(), spare)
    # A zombie whose parent was ended too is re-parented to us a moment later: wait for that
    # (bounded) and reap it, so that nothing is left, not even an exit status.
    for _ in range(int(REAP_WAIT / 0.01)):  # polling: /proc has nothing to wait on
        if not _reap(ended.values(), spare):
            break
        await anyio.sleep(0.01)
    return list(ended.values())


def _still(proc: Proc) -> bool:
    now = read_proc(proc.pid)
    return now is not None and now.start == proc.start and now.alive


def _kill(proc: Proc, sig: signal.Signals) -> None:
    now = read_proc(proc.pid)
    if now is None or now.start != proc.start:  # gone, or the pid is another process now
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(proc.pid, sig)


def _reap(procs: Iterable[Proc], spare: int | None) -> int:
    """Collect the exit status of ended processes that are our children: orphans re-parented
    to this subreaper, which nobody else waits for. Returns how many zombies are left whose
    parent has ended (ours to reap in a moment, when we are their subreaper)."""
    me = os.getpid()
    pending = 0
    for proc in procs:
        if proc.pid == spare:
            continue
        now = read_proc(proc.pid)
        if now is None or now.start != proc.start or now.alive:
            continue
        if now.ppid == me:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(proc.pid, os.WNOHANG)
        elif _subreaper:
            parent = read_proc(now.ppid)
            if parent is None or not parent.alive:
                pending += 1
    return pending


async def end_descendants(grace: float) -> list[Proc]:
    """End every process below this one (the daemon's shutdown: nothing a task started
    outlives it)."""

    def below() -> list[Proc]:
        return [p for p in (read_proc(pid) for pid in descendants(os.getpid())) if p is not None]

    ended = await end_processes(below, grace)
    _reap_zombie_children()  # exiting: no one else will wait for these
    return ended


def _reap_zombie_children() -> None:
    for pid in children(os.getpid()):
        proc = read_proc(pid)
        if proc is not None and not proc.alive:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # WNOHANG: a zombie, nothing to wait for


def reap_orphans(previous: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """Reap zombie children that were zombies already at the previous call (so nobody else
    waits for them: orphans that ended on their own). Returns this call's zombies."""
    zombies = set()
    for pid in children(os.getpid()):
        proc = read_proc(pid)
        if proc is not None and proc.state == "Z":
            zombies.add((pid, proc.start))
    for pid, _ in zombies & previous:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    return zombies - previous
