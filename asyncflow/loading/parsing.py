"""DAG files are parsed in child processes before the daemon imports them.

Why: a DAG file is other people's code, run at import. One that spins (`while True: pass`),
sleeps or waits on the network at import cannot be stopped inside the daemon: Python cannot kill
a thread, so a thread that imports it is only abandoned, and keeps a core (and whatever locks it
holds) for the life of the process. A process can be killed.

How the parsed DAG reaches the scheduler (the design, and why):

1. The loader reads each new or changed file's bytes and sends them to the parse server
   (`parseserver.py`), which forks a child per file, up to `processes` at once, each with the
   file's own time limit. The child imports those bytes and reports a verdict: the dag_ids the
   file defines, or the error that keeps them out (a file still importing at its deadline is
   killed with its process group, and its error says so).
2. Only a file whose verdict is good is then imported in the daemon, from the *same bytes* the
   child ran (`dagfile.import_dag_file` runs the bytes it is given, not the file as it is by
   then), and only once per version: the verdict is checked again only when the file's mtime
   or size changes.

The DAG objects themselves cannot travel from the child: tasks are live Python objects (async
functions run on the daemon's loop, closures, lambdas, callbacks) that pickling cannot carry,
and unpickling would run user code in the daemon anyway. So the child is a gate: it proves the
file imports within its limit, with these DAGs, without ending its process, before the daemon
runs it; and a file that fails never runs in the daemon at all. The file's import work is done
twice (it is usually milliseconds). What the gate cannot catch is a file that behaves
differently the second time (it reads the clock, the network, a random number): the daemon's
own import stays bounded by the same time limit in a thread, and a file that overruns there is
reported as such, but that thread can only be abandoned.

The parse server is one long-lived child process per interpreter, started on first use (it
imports asyncflow once, a few hundred milliseconds) and started again if it dies. Blocking
calls: use them from a worker thread, as `DagBag` is.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asyncflow.exceptions import DagFileError
from asyncflow.loading.parseserver import Frames, frame
from asyncflow.logs import get_logger
from asyncflow.models import dag as dag_module

__all__ = ["ParseServer", "Verdict", "default_processes", "shared_server"]

log = get_logger("asyncflow.dagbag")

#: what the parse server imports once, before forking (what DAG files import)
PRELOAD = (
    "asyncflow", "asyncflow.models.taskflow", "asyncflow.models.taskgroup", "asyncflow.operators",
    "asyncflow.sensors", "asyncflow.compat.airflow",
)  # fmt: skip
#: the daemon's stray marker (asyncflow.service.strays.MARKER; the service layer sits above us)
ENGINE_MARKER = "ASYNCFLOW_ENGINE_ID"
#: seconds the server may take beyond a file's own limit to answer before it is replaced
SLACK = 10.0


def default_processes() -> int:
    """Parse processes at once: the CPU count, at least 2 and at most 8."""
    return max(2, min(8, os.cpu_count() or 2))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a parse process found in one version of a file."""

    dag_ids: tuple[str, ...]
    error: DagFileError | None
    seconds: float


@dataclass(frozen=True, slots=True)
class ParseRequest:
    path: Path
    source: bytes


class ParseServer:
    """The client side: one server process, started on first use. Thread-safe (one batch at a
    time)."""

    def __init__(self, processes: int | None = None, preload: Sequence[str] = PRELOAD) -> None:
        self.processes = processes or default_processes()
        #: modules the server imports once before forking (an embedder may add its own import
        #: hooks or heavy libraries its DAG files share)
        self.preload = tuple(preload)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._next_id = 0

    def check(
        self, files: Sequence[ParseRequest], *, folder: Path, timeout: float
    ) -> dict[str, Verdict]:
        """Parse each file in a child process; path -> verdict (blocking)."""
        if not files:
            return {}
        with self._lock:
            try:
                return self._check(files, folder, timeout)
            except OSError as first:  # the server died or broke: once more with a new one
                log.warning("DAG parse process failed: starting a new one", error=str(first))
                self._stop()
                try:
                    return self._check(files, folder, timeout)
                except OSError as exc:
                    self._stop()
                    message = f"the DAG parse process failed ({exc}); the file was not loaded"
                    return {
                        str(f.path): Verdict((), DagFileError(str(f.path), message), 0.0)
                        for f in files
                    }

    def close(self) -> None:
        with self._lock:
            self._stop()

    # -- the exchange --------------------------------------------------------------------------
    def _check(
        self, files: Sequence[ParseRequest], folder: Path, timeout: float
    ) -> dict[str, Verdict]:
        process = self._ensure()
        assert process.stdin is not None and process.stdout is not None
        defaults = dict(vars(dag_module.DAG_DEFAULTS))
        waiting: dict[int, str] = {}
        batch = bytearray()
        for request in files:
            self._next_id += 1
            waiting[self._next_id] = str(request.path)
            batch += frame({
                "id": self._next_id, "path": str(request.path), "source": request.source,
                "folder": str(folder), "timeout": timeout, "defaults": defaults,
                "sys_path": list(sys.path), "parallel": self.processes,
            })  # fmt: skip
        verdicts: dict[str, Verdict] = {}
        frames = Frames()
        out, pending = process.stdin.fileno(), memoryview(bytes(batch))
        os.set_blocking(out, False)  # requests and replies flow together: no pipe fills up
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout.fileno(), selectors.EVENT_READ)
            selector.register(out, selectors.EVENT_WRITE)
            deadline = time.monotonic() + timeout + SLACK
            while waiting:
                events = selector.select(max(0.0, deadline - time.monotonic()))
                if not events:
                    raise OSError(f"no answer within {timeout + SLACK:g} s")
                for key, _ in events:
                    if key.fd == out:
                        pending = pending[_send(out, pending) :]
                        if not pending:
                            selector.unregister(out)
                        continue
                    data = os.read(key.fd, 1 << 16)
                    if not data:
                        raise OSError(f"the parse process ended (status {process.poll()})")
                    for reply in frames.feed(data):
                        path = waiting.pop(reply["id"], None)
                        if path is not None:
                            verdicts[path] = _verdict(path, reply)
                            deadline = time.monotonic() + timeout + SLACK
        return verdicts

    def _ensure(self) -> subprocess.Popen[bytes]:
        process = self._process
        if process is not None and process.poll() is None:
            return process
        environment = dict(os.environ)
        # not a task process: a daemon that finds it after a crash must not take it for one
        # (it ends by itself when the daemon is gone: its input closes)
        environment.pop(ENGINE_MARKER, None)
        environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        self._process = subprocess.Popen(
            [sys.executable, "-m", "asyncflow.loading.parseserver", *self.preload],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=environment,
        )
        return self._process

    def _stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        for stream in (process.stdin, process.stdout):
            with contextlib.suppress(OSError):
                if stream is not None:
                    stream.close()
        try:
            process.wait(2.0)  # closing its input ends it, killing what it still parses
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _send(fd: int, data: memoryview) -> int:
    try:
        return os.write(fd, data)
    except BlockingIOError:
        return 0
    except OSError as exc:
        raise OSError(f"the parse process is gone: {exc}") from exc


def _verdict(path: str, reply: dict[str, Any]) -> Verdict:
    seconds = float(reply.get("seconds", 0.0))
    if reply.get("dag_ids") is None:
        error = DagFileError(path, str(reply.get("message")), str(reply.get("stacktrace", "")))
        return Verdict((), error, seconds)
    return Verdict(tuple(reply["dag_ids"]), None, seconds)


_shared: ParseServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> ParseServer:
    """The process's parse server (one per interpreter, shared by its DagBags)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = ParseServer()
        return _shared
