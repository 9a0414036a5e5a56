"""WATCHDOG=1 is sent from the event loop only while the scheduler answers."""

from __future__ import annotations

from datetime import datetime

import anyio
import pytest

from asyncflow import DAG, Engine
from asyncflow.operators import EmptyOperator, PythonOperator
from asyncflow.service.daemon import probe_of, watchdog
from asyncflow.service.systemd import Notifier
from asyncflow.store.base import WriteBatch, WriteResult
from asyncflow.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

INTERVAL = 0.02


class Pings(Notifier):
    def __init__(self) -> None:
        super().__init__(environ={})
        self.count = 0

    def watchdog(self) -> bool:
        self.count += 1
        return True


async def wait_pings(pings: Pings, at_least: int) -> None:
    with anyio.fail_after(5):
        while pings.count < at_least:
            await anyio.sleep(INTERVAL / 2)


async def test_pings_while_the_probe_answers() -> None:
    pings = Pings()

    async def probe() -> None:
        await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watchdog, probe, pings, INTERVAL)
        await wait_pings(pings, 3)
        tg.cancel_scope.cancel()


async def test_no_ping_while_the_probe_hangs() -> None:
    pings = Pings()
    async with anyio.create_task_group() as tg:
        tg.start_soon(watchdog, anyio.sleep_forever, pings, INTERVAL)
        await anyio.sleep(INTERVAL * 10)  # ten intervals without an answer
        tg.cancel_scope.cancel()
    assert pings.count == 0


class StallingStore(SQLiteStore):
    """A store whose writes hang while `stall` is set: a scheduler stuck in a commit."""

    def __init__(self) -> None:
        super().__init__(":memory:")
        self.stall = False
        self.stalled = anyio.Event()
        self.release = anyio.Event()

    async def write(self, batch: WriteBatch) -> WriteResult:
        if self.stall:
            self.stalled.set()
            await self.release.wait()
        return await super().write(batch)


async def test_a_scheduler_stuck_in_a_commit_stops_the_pings() -> None:
    with DAG("stall", start_date=datetime(2024, 1, 1), schedule=None) as dag:
        PythonOperator(task_id="work", python_callable=lambda: 1) >> EmptyOperator(task_id="end")
    store = StallingStore()
    pings = Pings()
    async with (
        Engine(dags=[dag], store=store, run_schedules=False) as engine,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(watchdog, probe_of(engine), pings, INTERVAL)
        await wait_pings(pings, 2)  # the real scheduler answers the probe

        store.stall = True
        tg.start_soon(engine.trigger_dag, "stall")  # its commit hangs
        with anyio.fail_after(5):
            await store.stalled.wait()
        before = pings.count
        await anyio.sleep(INTERVAL * 10)  # ten intervals with the scheduler stuck
        assert pings.count <= before + 1  # at most the probe answered just before

        store.stall = False
        store.release.set()
        await wait_pings(pings, before + 2)  # answers again: pings resume
        tg.cancel_scope.cancel()


async def test_a_failing_probe_is_no_answer_and_no_busy_loop() -> None:
    pings, calls = Pings(), 0

    async def probe() -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("the engine is not running")

    async with anyio.create_task_group() as tg:
        tg.start_soon(watchdog, probe, pings, INTERVAL)
        await anyio.sleep(INTERVAL * 5)
        tg.cancel_scope.cancel()
    assert pings.count == 0
    assert calls <= 6  # once an interval, not in a tight loop
