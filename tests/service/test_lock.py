"""DatabaseLock: one daemon per database, a clear error naming the holder, no stale locks."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

import asyncflow.service.lock
from asyncflow.exceptions import EngineLockedError
from asyncflow.service.lock import DatabaseLock, lock_path

REPO = Path(asyncflow.service.lock.__file__).resolve().parents[2]

HOLDER = """
import os, subprocess, sys, time
from asyncflow.service.lock import DatabaseLock
lock = DatabaseLock(sys.argv[1])
lock.acquire()
child = None
if len(sys.argv) > 2:  # a task subprocess that outlives us, with every inheritable fd
    child = subprocess.Popen(["sleep", "60"], close_fds=False)
print(os.getpid(), child.pid if child else 0, flush=True)
time.sleep(60)
"""


class Holder:
    def __init__(self, database: Path, *, with_child: bool = False) -> None:
        args = [sys.executable, "-c", textwrap.dedent(HOLDER), str(database)]
        if with_child:
            args.append("child")
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # printed once the lock is held
        assert line, f"holder exited with {self.process.wait(10)}"
        pid, child = line.split()
        self.pid, self.child = int(pid), int(child)

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: no cleanup runs
        assert self.process.wait(10) == -signal.SIGKILL

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        if self.child:
            os.kill(self.child, signal.SIGKILL)
            os.waitpid(self.child, 0)  # ours through the subreaper fixture: leave no zombie
        assert self.process.stdout is not None
        self.process.stdout.close()


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "asyncflow.db"


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Adopt orphaned grandchildren (a killed holder's task subprocess) to reap them."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_child_subreaper = 36
    assert prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0
    yield
    prctl(pr_set_child_subreaper, 0, 0, 0, 0)


@pytest.fixture
def holders() -> Iterator[list[Holder]]:
    started: list[Holder] = []
    yield started
    for holder in started:
        holder.close()


def test_lock_file_sits_beside_the_database_and_names_the_holder(database: Path) -> None:
    with DatabaseLock(database) as lock:
        assert lock.locked
        assert lock.path == Path(str(database) + ".lock")
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid()
        assert holder["hostname"]
        assert holder["started"].endswith("+00:00")
    assert not lock.locked
    assert lock.path.read_text() == ""  # released: no stale holder shown to the next one


def test_second_lock_in_the_same_process_fails(database: Path) -> None:
    with DatabaseLock(database), pytest.raises(EngineLockedError) as info:
        DatabaseLock(database).acquire()
    message = str(info.value)
    assert f"PID {os.getpid()} (this process)" in message
    assert f"{database}.lock" in message
    assert "stop that process or use another --database" in message


def test_lock_held_by_another_process_names_its_pid(database: Path, holders: list[Holder]) -> None:
    holder = Holder(database)
    holders.append(holder)
    with pytest.raises(EngineLockedError) as info:
        DatabaseLock(database).acquire()
    message = str(info.value)
    assert f"PID {holder.pid} on " in message
    assert "(this process)" not in message
    assert str(database) in message
    assert "stop that process or use another --database" in message
    assert isinstance(info.value, RuntimeError)


def test_lock_of_a_killed_process_does_not_block(database: Path, holders: list[Holder]) -> None:
    holder = Holder(database)
    holders.append(holder)
    holder.kill()
    lock_file = Path(f"{database}.lock")
    assert json.loads(lock_file.read_text())["pid"] == holder.pid  # the stale file is there
    with DatabaseLock(database) as lock:
        assert json.loads(lock_file.read_text())["pid"] == os.getpid()
        assert lock.locked


def test_a_surviving_task_subprocess_does_not_keep_the_lock(
    database: Path, subreaper: None, holders: list[Holder]
) -> None:
    holder = Holder(database, with_child=True)
    holders.append(holder)
    holder.kill()
    os.kill(holder.child, 0)  # the task subprocess is still alive
    with DatabaseLock(database) as lock:
        assert lock.locked


def test_released_lock_can_be_taken_again(database: Path) -> None:
    first = DatabaseLock(database)
    first.acquire()
    first.release()
    first.release()  # idempotent
    with DatabaseLock(database) as second:
        assert second.locked
    first.acquire()
    first.release()


def test_context_manager_releases_on_error(database: Path) -> None:
    with pytest.raises(KeyError), DatabaseLock(database):
        raise KeyError("x")
    with DatabaseLock(database) as again:
        assert again.locked


def test_acquiring_twice_is_a_bug(database: Path) -> None:
    with DatabaseLock(database) as lock, pytest.raises(RuntimeError, match="already held"):
        lock.acquire()


def test_memory_database_needs_no_lock() -> None:
    assert lock_path(":memory:") is None
    with DatabaseLock(":memory:") as first, DatabaseLock(":memory:") as second:
        assert first.path is None
        assert not first.locked
        assert not second.locked


def test_missing_state_folder_is_created(tmp_path: Path) -> None:
    database = tmp_path / "state" / "deep" / "asyncflow.db"
    with DatabaseLock(database) as lock:
        assert lock.path is not None
        assert lock.path.exists()
