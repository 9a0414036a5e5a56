"""The parse server: a process that imports DAG files in children it forks, each within a time
limit, and reports what each file defines. Run by `parsing.ParseServer` as
``python -m asyncflow.loading.parseserver``; not meant to be started by hand.

It imports asyncflow once (what DAG files import), then forks one child per file: a fork costs
a few milliseconds where a fresh interpreter costs a few hundred, and every file starts from the
same clean state (nothing a previous file imported or changed is left). The server itself runs
no DAG-file code and has one thread, so forking it is safe.

Each child goes into a process group of its own, imports the file (`dagfile.import_dag_file`:
the exact bytes the daemon sent) and writes its verdict: the dag_ids the file defines, or the
error that keeps them out. A child still running at its deadline is killed with its whole
process group (SIGKILL: the point is to stop code that may ignore anything gentler); one that
dies before reporting (a crash, `os._exit`) is reported so. Up to `parallel` children run at
once; the rest wait in order.

Frames on both pipes are a 4-byte big-endian length and a pickle (both ends are ours). The
server's standard input and output carry them; what DAG files print goes to standard error.
The server ends when its standard input closes (the daemon is gone), killing what still runs.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import pickle
import selectors
import signal
import struct
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEADER = struct.Struct(">I")
#: seconds between checks that children are alive, where pidfds are missing (not Linux)
POLL = 0.05


def frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(data)) + data


class Frames:
    """Collects bytes read from a pipe and yields the complete frames in them."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        self.buffer += data
        found = []
        while len(self.buffer) >= HEADER.size:
            (size,) = HEADER.unpack_from(self.buffer)
            if len(self.buffer) < HEADER.size + size:
                break
            found.append(pickle.loads(self.buffer[HEADER.size : HEADER.size + size]))
            del self.buffer[: HEADER.size + size]
        return found


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass
class Child:
    job: dict[str, Any]
    pid: int
    pipe: int  # read end of the child's verdict pipe
    pidfd: int | None
    started: float
    deadline: float
    frames: Frames = field(default_factory=Frames)
    verdict: dict[str, Any] | None = None


class Server:
    def __init__(self, requests: int, replies: int) -> None:
        self.requests, self.replies = requests, replies
        self.selector = selectors.DefaultSelector()
        self.selector.register(requests, selectors.EVENT_READ, None)
        self.incoming = Frames()
        self.queue: deque[dict[str, Any]] = deque()
        self.children: dict[int, Child] = {}  # pid -> child
        self.parallel = 1
        self.open = True

    def run(self) -> None:
        while self.open or self.children or self.queue:
            if not self.open:  # the daemon is gone: nobody wants these answers
                for child in list(self.children.values()):
                    self._end(child, None)
                return
            while self.queue and len(self.children) < self.parallel:
                self._fork(self.queue.popleft())
            now = time.monotonic()
            waits = [c.deadline - now for c in self.children.values()]
            if any(c.pidfd is None for c in self.children.values()):
                waits.append(POLL)
            timeout = max(0.0, min(waits)) if waits else None
            for key, _ in self.selector.select(timeout):
                if key.fd == self.requests:
                    self._read_requests()
                else:
                    self._child_event(key.data, key.fd)
            self._reap_exited()
            now = time.monotonic()
            for child in [c for c in self.children.values() if c.deadline <= now]:
                self._end(child, _overran(child.job))

    # -- requests ----------------------------------------------------------------------------
    def _read_requests(self) -> None:
        data = os.read(self.requests, 1 << 16)
        if not data:
            self.open = False
            self.selector.unregister(self.requests)
            return
        for job in self.incoming.feed(data):
            self.parallel = max(1, int(job.get("parallel", 1)))
            self.queue.append(job)

    # -- children ------------------------------------------------------------------------------
    def _fork(self, job: dict[str, Any]) -> None:
        read, write = os.pipe()
        started = time.monotonic()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(job, write, (self.requests, self.replies))
        os.close(write)
        with contextlib.suppress(OSError):  # both sides set it: no race with the child
            os.setpgid(pid, pid)
        pidfd = _pidfd(pid)
        child = Child(job, pid, read, pidfd, started, started + float(job["timeout"]))
        self.children[pid] = child
        self.selector.register(read, selectors.EVENT_READ, child)
        if pidfd is not None:
            self.selector.register(pidfd, selectors.EVENT_READ, child)

    def _child_event(self, child: Child, fd: int) -> None:
        if child.pid not in self.children:
            return
        if fd == child.pipe:
            data = os.read(fd, 1 << 16)
            for verdict in child.frames.feed(data):
                child.verdict = verdict
            if child.verdict is not None:
                self._end(child, child.verdict)
            elif not data:  # closed without a verdict: it has ended (or is ending)
                self.selector.unregister(fd)
        # a pidfd turned readable: the child exited; `_reap_exited` collects it

    def _reap_exited(self) -> None:
        for child in list(self.children.values()):
            try:
                pid, status = os.waitpid(child.pid, os.WNOHANG)
            except ChildProcessError:
                pid, status = child.pid, 0
            if pid == 0:
                continue
            # it exited; a verdict written just before may still sit in the pipe
            with contextlib.suppress(OSError):
                while data := os.read(child.pipe, 1 << 16):
                    for verdict in child.frames.feed(data):
                        child.verdict = verdict
            verdict = child.verdict or _died(child.job, status)
            self._end(child, verdict, reaped=True)

    def _end(self, child: Child, verdict: dict[str, Any] | None, *, reaped: bool = False) -> None:
        """Stop the child's whole process group, reap it, and send the verdict."""
        del self.children[child.pid]
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.pid, signal.SIGKILL)
        if not reaped:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(child.pid, 0)
        for fd in (child.pipe, child.pidfd):
            if fd is None:
                continue
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(fd)
            os.close(fd)
        if verdict is not None:
            verdict["id"] = child.job["id"]
            verdict.setdefault("seconds", time.monotonic() - child.started)
            write_all(self.replies, frame(verdict))


def _pidfd(pid: int) -> int | None:
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
    except OSError:
        return None
    return fd


def _overran(job: dict[str, Any]) -> dict[str, Any]:
    timeout = float(job["timeout"])
    return {
        "dag_ids": None,
        "message": (
            f"did not finish importing within {timeout:g} s (dagbag_import_timeout): it was "
            "stopped; look for work at import time (network calls, sleeps, loops, reading "
            "big files) and move it into tasks"
        ),
        "stacktrace": "",
        "seconds": timeout,
    }


def _died(job: dict[str, Any], status: int) -> dict[str, Any]:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            how = f"was killed by {signal.Signals(sig).name}"
        except ValueError:
            how = f"was killed by signal {sig}"
    else:
        how = f"exited with status {os.waitstatus_to_exitcode(status)}"
    return {
        "dag_ids": None,
        "message": f"the import ended its process before it finished: the process {how} "
        "(look for os._exit, os.kill or a crashing extension at import time)",
        "stacktrace": "",
    }


def _child(job: dict[str, Any], verdict_fd: int, private: tuple[int, ...]) -> None:
    """In the forked child: import the file, write the verdict, end (never returns)."""
    code = 0
    try:
        os.setpgid(0, 0)
        for fd in private:  # the DAG file must not read requests or write replies
            os.close(fd)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        verdict = _import(job)
        write_all(verdict_fd, frame(verdict))
    except BaseException:  # the child must end here, whatever happened
        code = 70
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)


def _import(job: dict[str, Any]) -> dict[str, Any]:
    from asyncflow.loading.dagfile import import_dag_file
    from asyncflow.models import dag as dag_module

    for name, value in job["defaults"].items():
        setattr(dag_module.DAG_DEFAULTS, name, value)
    sys.path[:] = job["sys_path"]
    started = time.monotonic()
    path = Path(job["path"])
    outcome = import_dag_file(path, job["source"], Path(job["folder"]))
    seconds = time.monotonic() - started
    if isinstance(outcome, tuple):
        _, dags = outcome
        return {"dag_ids": [dag.dag_id for dag in dags], "message": None, "stacktrace": "",
                "seconds": seconds}  # fmt: skip
    prefix = f"{job['path']}: "
    message = str(outcome)
    return {
        "dag_ids": None,
        "message": message[len(prefix) :] if message.startswith(prefix) else message,
        "stacktrace": outcome.stacktrace,
        "seconds": seconds,
    }


def main() -> None:
    # Keep the protocol's pipes to ourselves: standard input becomes /dev/null, and what DAG
    # files print goes to standard error.
    requests, replies = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the daemon; EOF ends us
    for name in sys.argv[1:]:  # what DAG files import, imported once for every child
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    Server(requests, replies).run()


if __name__ == "__main__":
    main()
