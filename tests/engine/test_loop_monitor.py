"""A task that holds the event loop (sync code in `async def`) is seen and named, and an attempt
whose result arrives after its execution_timeout is a timeout, never a success."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import anyio
import pytest

from asyncflow import DAG, Engine
from asyncflow.engine import monitor
from asyncflow.operators import PythonOperator
from tests.engine.support import finish

pytestmark = pytest.mark.anyio


class Warnings:
    """Stands in for the monitor's structlog logger."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.seen.append((event, fields))

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture
def warnings(monkeypatch: pytest.MonkeyPatch) -> Warnings:
    recorder = Warnings()
    monkeypatch.setattr(monitor, "log", recorder)
    return recorder


async def blocker() -> None:
    time.sleep(1.5)  # sync code holding the loop: the point


async def test_a_task_that_holds_the_loop_is_named_with_how_long(warnings: Warnings) -> None:
    with DAG("holds_loop", schedule=None) as dag:
        PythonOperator(task_id="sleeper", python_callable=blocker)

    async with Engine(dags=[dag], database=":memory:", loop_stall_threshold=0.3) as engine:
        outcome = await finish(engine, "holds_loop")
        with anyio.fail_after(5):  # the warning is logged at the loop's next beat
            while not warnings.seen:
                await anyio.sleep(0.05)
        stats = engine.statistics()

    assert outcome.states == {"sleeper": "success"}
    [(event, fields)] = warnings.seen
    assert "the event loop was held for 1.5 s by task holds_loop.sleeper" in event
    assert f"(run {outcome.run.run_id}, try 1)" in event
    assert "make it a `def` task" in event
    assert 1.4 <= fields["seconds"] < 2.5
    assert fields["where"].endswith("in blocker")
    assert "test_loop_monitor.py" in fields["where"]
    assert stats["loop_stalls"] == 1
    assert 1.4 <= stats["loop_stall_longest"] < 2.5


async def test_a_loop_that_turns_reports_nothing(warnings: Warnings) -> None:
    async def polite() -> None:
        for _ in range(20):
            await anyio.sleep(0.05)

    with DAG("polite", schedule=None) as dag:
        PythonOperator(task_id="t", python_callable=polite)

    async with Engine(dags=[dag], database=":memory:", loop_stall_threshold=0.3) as engine:
        await finish(engine, "polite")
        stats = engine.statistics()

    assert warnings.seen == []
    assert stats["loop_stalls"] == 0


async def test_a_result_after_the_execution_timeout_is_a_timeout() -> None:
    async def overruns() -> str:
        time.sleep(1.2)  # never yields, so it cannot be cancelled in time
        return "too late"

    with DAG("late", schedule=None) as dag:
        PythonOperator(
            task_id="t", python_callable=overruns, execution_timeout=timedelta(seconds=0.5)
        )

    async with Engine(dags=[dag], database=":memory:") as engine:
        outcome = await finish(engine, "late")

    assert outcome.states == {"t": "failed"}
    assert outcome.xcoms == {"t": None}
    ti = outcome.tis["t"]
    error = getattr(ti, "error", None) or ""
    assert "execution_timeout of 0:00:00.500000 exceeded: the task returned after 1.2 s" in error
