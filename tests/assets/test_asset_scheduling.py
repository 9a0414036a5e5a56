"""Asset events recorded with a task's success, and the asset-triggered runs they create, on
both loops, with a FakeClock; restart safety with a file database and engines in sequence."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncflow import (
    DAG,
    Asset,
    AssetAlias,
    AssetWatcher,
    DagRunType,
    Engine,
    FakeClock,
    asset,
    task,
)
from tests.assets.helpers import ChannelTrigger, send
from tests.engine.support import finish

pytestmark = pytest.mark.anyio
START = datetime(2024, 1, 1, tzinfo=UTC)
RAW, CLEAN = Asset("s3://lake/raw"), Asset(name="clean", uri="file:///srv/clean.csv")
SEEN: list[Any] = []


def producer(dag_id: str, outlet: Any, extra: dict[str, Any] | None = None) -> DAG:
    with DAG(dag_id, schedule=None, start_date=START) as dag:

        @task(outlets=[outlet])
        def make(*, outlet_events: Any = None) -> None:
            if extra is not None and isinstance(outlet, Asset):
                outlet_events[outlet].extra = extra
            elif isinstance(outlet, AssetAlias):
                outlet_events[outlet].add(RAW, extra={"via": "alias"})

        make()
    return dag


def consumer(dag_id: str, schedule: Any) -> DAG:
    with DAG(dag_id, schedule=schedule, start_date=START) as dag:

        @task
        def use(*, triggering_asset_events: Any = None, data_interval_start: Any = None) -> None:
            SEEN.append((dag_id, [(e.uri, e.extra, e.source_dag_id)
                                  for events in triggering_asset_events.values()
                                  for e in events]))  # fmt: skip

        use()
    return dag


async def produce(engine: Engine, dag_id: str) -> Any:
    """A manual run of a producer, a second after the last (each needs its own logical date)."""
    clock = engine.clock
    assert isinstance(clock, FakeClock)
    clock.advance(1)
    return await finish(engine, dag_id)


async def asset_runs(engine: Engine, dag_id: str) -> list[Any]:
    return [r for r in await engine.get_dag_runs(dag_id)
            if r.run_type is DagRunType.ASSET_TRIGGERED]  # fmt: skip


async def wait_runs(engine: Engine, dag_id: str, count: int) -> list[Any]:
    with anyio.fail_after(10):
        while len(runs := await asset_runs(engine, dag_id)) < count:
            await anyio.sleep(0.01)
    for run in runs:
        await engine.wait_for_run(dag_id, run.run_id, timeout=10)
    return await asset_runs(engine, dag_id)


async def test_a_task_with_an_outlet_triggers_the_dag_scheduled_on_it() -> None:
    SEEN.clear()
    dags = [producer("p", RAW, {"rows": 3}), consumer("c", [RAW])]
    async with Engine(dags=dags, database=":memory:", clock=FakeClock(START)) as engine:
        done = await produce(engine, "p")
        (run,) = await wait_runs(engine, "c", 1)
        assert run.state.value == "success"
        # the consumer's interval spans the producing run's; its logical date is the event's
        assert (run.data_interval_start, run.data_interval_end) == (
            done.run.data_interval_start, done.run.data_interval_end)  # fmt: skip
        assert run.run_id.startswith("asset_triggered__")
        assert SEEN == [("c", [("s3://lake/raw", {"rows": 3}, "p")])]
        events = await engine.store.get_asset_events(uri=RAW.uri)
        assert [(e.source_dag_id, e.source_task_id) for e in events] == [("p", "make")]


async def test_all_waits_for_every_asset_and_any_for_one() -> None:
    SEEN.clear()
    dags = [producer("p_raw", RAW), producer("p_clean", CLEAN),
            consumer("both", RAW & CLEAN), consumer("either", RAW | CLEAN)]  # fmt: skip
    async with Engine(dags=dags, database=":memory:", clock=FakeClock(START)) as engine:
        await produce(engine, "p_raw")
        assert len(await wait_runs(engine, "either", 1)) == 1
        assert await asset_runs(engine, "both") == []
        await produce(engine, "p_clean")
        assert len(await wait_runs(engine, "both", 1)) == 1
        assert len(await wait_runs(engine, "either", 2)) == 2
        await produce(engine, "p_raw")  # a new event: `both` needs clean again
        assert len(await wait_runs(engine, "either", 3)) == 3
        assert len(await asset_runs(engine, "both")) == 1
    both = [events for dag_id, events in SEEN if dag_id == "both"]
    assert sorted(uri for uri, _, _ in both[0]) == [CLEAN.uri, RAW.uri]


async def test_alias_events_resolve_to_assets_and_trigger_alias_schedules() -> None:
    SEEN.clear()
    alias = AssetAlias("incoming")
    dags = [producer("p", alias), consumer("on_asset", [RAW]), consumer("on_alias", [alias])]
    async with Engine(dags=dags, database=":memory:", clock=FakeClock(START)) as engine:
        await produce(engine, "p")
        await wait_runs(engine, "on_asset", 1)
        await wait_runs(engine, "on_alias", 1)
        (event,) = await engine.store.get_asset_events()
        assert (event.uri, event.extra, event.source_aliases) == (RAW.uri, '{"via": "alias"}',
                                                                  '["incoming"]')  # fmt: skip


async def test_a_paused_consumer_queues_nothing() -> None:
    dags = [producer("p", RAW), consumer("c", [RAW])]
    async with Engine(dags=dags, database=":memory:", clock=FakeClock(START)) as engine:
        await engine.pause_dag("c")
        await produce(engine, "p")
        await engine.unpause_dag("c")
        await produce(engine, "p")
        assert len(await wait_runs(engine, "c", 1)) == 1
        assert len(await asset_runs(engine, "c")) == 1


async def test_restart_neither_loses_nor_doubles_an_asset_triggered_run(tmp_path: Path) -> None:
    db, clock = tmp_path / "state.db", FakeClock(START)
    dags = [producer("p_raw", RAW), producer("p_clean", CLEAN), consumer("both", [RAW, CLEAN])]
    async with Engine(dags=dags, database=db, clock=clock) as engine:
        await produce(engine, "p_raw")  # half of the condition: queued, in the store
        assert await asset_runs(engine, "both") == []
    async with Engine(dags=dags, database=db, clock=clock) as engine:
        await produce(engine, "p_clean")  # the other half, after a restart
        (run,) = await wait_runs(engine, "both", 1)
    # an engine that stops before it may create runs leaves the events queued ...
    async with Engine(dags=dags, database=db, clock=clock, run_schedules=False) as engine:
        await produce(engine, "p_raw")
        await produce(engine, "p_clean")
        assert len(await asset_runs(engine, "both")) == 1
    # ... and the next one creates the run from them, once
    async with Engine(dags=dags, database=db, clock=clock) as engine:
        runs = await wait_runs(engine, "both", 2)
    async with Engine(dags=dags, database=db, clock=clock) as engine:
        await engine.ping()
        assert [r.run_id for r in await asset_runs(engine, "both")] == [r.run_id for r in runs]
        assert len(runs) == 2 and run.run_id in {r.run_id for r in runs}


async def test_an_asset_watcher_event_triggers_the_dag() -> None:
    SEEN.clear()
    watched = Asset("queue://orders", watchers=[AssetWatcher("w", ChannelTrigger("orders"))])
    async with Engine(dags=[consumer("c", [watched])], database=":memory:",
                      clock=FakeClock(START)) as engine:  # fmt: skip
        send("orders", {"order": 1})
        await wait_runs(engine, "c", 1)
        send("orders", {"order": 2})
        await wait_runs(engine, "c", 2)
    payloads = [events[0][1]["payload"] for _, events in SEEN]
    assert payloads == [{"order": 1}, {"order": 2}]


@asset(uri="s3://bucket/report", schedule=None)
def report() -> dict[str, int]:
    return {"rows": 1}


async def test_the_asset_decorator_makes_a_dag_whose_task_updates_the_asset() -> None:
    dags = [report.dag, consumer("c", [report])]
    async with Engine(dags=dags, database=":memory:", clock=FakeClock(START)) as engine:
        done = await finish(engine, "report")
        assert done.states == {"report": "success"}
        await wait_runs(engine, "c", 1)
