"""File waits are woken by the kernel (inotify), not by a poll: a deferred task waiting on a
file resumes when the file appears, with the engine's clock standing still; one watch serves
every wait in a folder; a poll remains only where inotify cannot tell."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncflow import DAG, BaseOperator, Engine, FakeClock
from asyncflow.sensors import FileSensor
from asyncflow.triggers import FileDeleteTrigger, FileTrigger, filewatch
from tests.engine.support import outcome

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux's"),
]
START = datetime(2024, 1, 1, tzinfo=UTC)
HOUR = 3600.0  # a poke interval no test waits for: a wake within it was not a poll


class WaitFile(BaseOperator):
    """Defers on FileTrigger (or FileDeleteTrigger with `take`) and returns the event."""

    def __init__(self, *, path: str, take: bool = False, recursive: bool = False,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.path, self.take, self.recursive = path, take, recursive

    def execute(self, context: Any) -> None:
        trigger = (FileDeleteTrigger(self.path, poke_interval=HOUR) if self.take
                   else FileTrigger(self.path, self.recursive, poke_interval=HOUR))  # fmt: skip
        self.defer(trigger=trigger, method_name="done")

    def done(self, context: Any, event: Any = None) -> Any:
        return event


async def _watching(engine: Engine, waits: int) -> dict[str, int]:
    """Until `waits` file waits are in place and checked: from here only an event wakes them."""
    with anyio.fail_after(10):
        while True:
            stats = engine.statistics()
            if (stats["file_waits"] == waits and stats["file_checking"] == 0
                    and stats["file_watches"] >= 1):  # fmt: skip
                return stats
            await engine.ping()


async def test_a_file_written_after_the_deferral_wakes_its_task_without_a_poll(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)  # stands still: a poll would never come
    target = tmp_path / "data.csv"
    with DAG("w", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(tmp_path / "*.csv"))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("w")
        before = await _watching(engine, 1)
        clock.advance(10 * HOUR)  # a waiting watcher does nothing, however long it waits
        await engine.ping()
        assert engine.statistics()["file_rounds"] == before["file_rounds"]
        target.write_text("a,b\n")
        done = await outcome(engine, "w", run.run_id)
        stats = engine.statistics()
    assert done.states == {"wait": "success"}
    assert done.xcoms["wait"] == str(target)
    assert stats["file_events"] >= 1
    assert (stats["file_polls"], stats["file_polled"]) == (0, 0)
    assert (stats["file_waits"], stats["file_watches"]) == (0, 0)  # the watch went with it


async def test_the_wake_comes_within_milliseconds_on_the_real_clock(tmp_path: Path) -> None:
    with DAG("rt", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(tmp_path / "go"))
    async with Engine(dags=[dag], database=":memory:") as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("rt")
            await _watching(engine, 1)
            written = time.perf_counter()
            (tmp_path / "go").write_text("")
            with anyio.fail_after(10):
                async for event in events:
                    if getattr(event, "task_id", None) == "wait" and \
                            getattr(event, "new_state", None) == "scheduled":  # fmt: skip
                        break
            woken = time.perf_counter() - written
        done = await outcome(engine, "rt", run.run_id)
    assert done.states == {"wait": "success"}
    assert woken < 0.5, f"woken {woken * 1000:.0f} ms after the write: was it a poll?"


async def test_a_file_there_before_the_deferral_fires_at_once(tmp_path: Path) -> None:
    clock = FakeClock(START)
    (tmp_path / "ready.flag").write_text("")
    with DAG("pre", schedule=None) as dag:
        FileSensor(task_id="wait", filepath=str(tmp_path / "ready.flag"), poke_interval=HOUR,
                   deferrable=True)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("pre")
        done = await outcome(engine, "pre", run.run_id)
    assert done.states == {"wait": "success"}


async def test_file_delete_trigger_takes_the_file_when_it_appears(tmp_path: Path) -> None:
    clock = FakeClock(START)
    flag = tmp_path / "go.flag"
    with DAG("take", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(flag), take=True)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("take")
        await _watching(engine, 1)
        flag.write_text("")
        done = await outcome(engine, "take", run.run_id)
    assert done.xcoms["wait"] == str(flag)
    assert not flag.exists()


async def test_a_folder_created_later_is_waited_for_in_its_nearest_parent(
    tmp_path: Path,
) -> None:
    clock = FakeClock(START)
    landing = tmp_path / "in" / "2024" / "01"
    with DAG("later", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(landing / "*.csv"))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("later")
        await _watching(engine, 1)
        landing.mkdir(parents=True)  # one event in tmp_path: the wait moves down the tree
        (landing / "part.txt").write_text("")  # not a match: it waits on
        (landing / "part.csv").write_text("")
        done = await outcome(engine, "later", run.run_id)
        stats = engine.statistics()
    assert done.xcoms["wait"] == str(landing / "part.csv")
    assert stats["file_polls"] == 0


async def test_a_recursive_pattern_sees_files_in_new_subfolders(tmp_path: Path) -> None:
    clock = FakeClock(START)
    with DAG("rec", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(tmp_path / "**" / "*.done"), recursive=True)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("rec")
        await _watching(engine, 1)
        deep = tmp_path / "a" / "b" / "c"
        deep.mkdir(parents=True)
        (deep / "x.done").write_text("")
        done = await outcome(engine, "rec", run.run_id)
    assert done.xcoms["wait"] == str(deep / "x.done")


async def test_a_folder_counts_once_it_is_not_empty(tmp_path: Path) -> None:
    clock = FakeClock(START)
    folder = tmp_path / "batch"
    folder.mkdir()
    with DAG("dir", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(folder))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("dir")
        await _watching(engine, 1)
        (folder / "one").write_text("")
        done = await outcome(engine, "dir", run.run_id)
    assert done.xcoms["wait"] == str(folder)


async def test_many_waits_in_one_folder_share_one_watch(tmp_path: Path) -> None:
    clock = FakeClock(START)
    n = 200
    with DAG("many", schedule=None, max_active_tasks=n) as dag:
        for i in range(n):
            WaitFile(task_id=f"w{i}", path=str(tmp_path / f"f{i}"))
    async with Engine(dags=[dag], database=":memory:", clock=clock, parallelism=n) as engine:
        run = await engine.trigger_dag("many")
        stats = await _watching(engine, n)
        assert stats["file_watches"] == 1
        for i in range(n):
            (tmp_path / f"f{i}").write_text("")
        done = await outcome(engine, "many", run.run_id)
        stats = engine.statistics()
    assert set(done.states.values()) == {"success"}
    assert done.xcoms["w7"] == str(tmp_path / "f7")
    assert (stats["file_watches"], stats["file_polls"]) == (0, 0)


async def test_without_inotify_file_waits_poll_on_the_engines_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filewatch, "HAVE_INOTIFY", False)  # a kernel that cannot tell
    clock = FakeClock(START)
    with DAG("poll", schedule=None) as dag:
        WaitFile(task_id="wait", path=str(tmp_path / "go"))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        run = await engine.trigger_dag("poll")
        with anyio.fail_after(10):
            while engine.statistics()["file_polled"] != 1:
                await engine.ping()
        (tmp_path / "go").write_text("")
        clock.advance(HOUR)  # the poke interval
        done = await outcome(engine, "poll", run.run_id)
        stats = engine.statistics()
    assert done.states == {"wait": "success"}
    assert stats["file_polls"] >= 1 and stats["file_watches"] == 0


def test_network_and_fuse_file_systems_are_polled() -> None:
    mounts = [("/", "ext4"), ("/mnt/share", "nfs4"), ("/mnt/share/local", "tmpfs"),
              ("/home/u/drive", "fuse.sshfs")]  # fmt: skip
    assert filewatch.remote_fs("/mnt/share/in", mounts)
    assert not filewatch.remote_fs("/mnt/share/local/in", mounts)
    assert filewatch.remote_fs("/home/u/drive", mounts)
    assert not filewatch.remote_fs("/mnt/shared", mounts)
    assert not filewatch.remote_fs("/tmp", mounts)
