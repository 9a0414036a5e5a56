"""The event bus: every committed state change is published; a subscriber's buffer is bounded,
a slow one never stalls the run and is told how many events it missed, and where."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncflow import DAG, DagRunStateChanged, Engine, EventsMissed, TaskStateChanged
from asyncflow.operators import EmptyOperator, PythonOperator
from tests.engine.support import finish, run_reached, task_reached, wait_for_event

pytestmark = pytest.mark.anyio


def boom() -> None:
    raise ValueError("boom")


def small_dag(dag_id: str = "events", width: int = 3) -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        for n in range(width):
            start >> PythonOperator(task_id=f"work_{n}", python_callable=lambda: 1)
        (
            start
            >> PythonOperator(task_id="bad", python_callable=boom)
            >> EmptyOperator(task_id="never")
        )
    return dag


async def drain(subscription: Any) -> list[Any]:
    subscription.close()
    return [event async for event in subscription]


async def test_every_task_and_run_change_is_published_and_matches_the_records() -> None:
    async with Engine(dags=[small_dag()], database=":memory:") as engine:
        events = engine.subscribe()
        result = await finish(engine, "events")
        received = await drain(events)
    task_events = [e for e in received if isinstance(e, TaskStateChanged)]
    run_events = [e for e in received if isinstance(e, DagRunStateChanged)]
    assert all(e.dag_id == "events" and e.run_id == result.run.run_id for e in received)
    assert [(e.old_state, e.new_state) for e in run_events] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "failed"),
    ]
    last = {}
    for event in task_events:
        assert event.map_index == -1
        last[event.task_id] = event
    assert set(last) == set(result.tis)
    for task_id, ti in result.tis.items():
        assert last[task_id].new_state == ti.state, task_id
        assert last[task_id].try_number == ti.try_number, task_id
    # timestamps never go backwards
    stamps = [e.timestamp for e in received]
    assert stamps == sorted(stamps)


async def test_an_event_is_published_only_after_its_change_is_committed() -> None:
    release = anyio.Event()

    async def blocked() -> str:
        await release.wait()
        return "done"

    with DAG("committed", schedule=None) as dag:
        PythonOperator(task_id="blocked", python_callable=blocked)
    async with Engine(dags=[dag], database=":memory:") as engine, engine.subscribe() as events:
        run = await engine.trigger_dag("committed")
        await wait_for_event(events, task_reached("blocked", "running"))
        (ti,) = await engine.get_task_instances("committed", run.run_id)
        assert ti.state == "running" and ti.try_number == 1
        release.set()
        await wait_for_event(events, run_reached(run.run_id, ("success",)))
        assert (await engine.get_dag_run("committed", run.run_id)).state == "success"


async def test_a_subscriber_that_never_reads_does_not_stall_the_run_and_learns_what_it_missed() -> (
    None
):
    async with Engine(dags=[small_dag(width=10)], database=":memory:") as engine:
        everything = engine.subscribe()
        slow = engine.subscribe(buffer=5)
        with anyio.fail_after(10):
            first = await finish(engine, "events")
        assert first.run.state == "failed"
        all_events = await drain(everything)
        assert len(all_events) > 5
        assert slow.statistics() == {
            "buffered": 5,
            "capacity": 5,
            "missed_pending": len(all_events) - 5,
        }
        received = [await slow.__anext__() for _ in range(6)]
        assert received[:5] == all_events[:5]  # the oldest events are kept, in order
        assert received[5] == EventsMissed(len(all_events) - 5)  # then the gap, counted
        # the buffer is free again: the next run's events arrive
        second = await engine.trigger_dag("events", run_id="second")
        event = await wait_for_event(slow, lambda e: True)
        assert event == DagRunStateChanged("events", "second", None, "queued", event.timestamp)
        await engine.wait_for_run("events", second.run_id, timeout=10)
        slow.close()


async def test_closing_a_subscription_ends_its_iteration_and_unsubscribes() -> None:
    async with Engine(dags=[small_dag()], database=":memory:") as engine:
        before = engine.statistics()["subscribers"]
        async with engine.subscribe() as events:
            assert engine.statistics()["subscribers"] == before + 1
        assert engine.statistics()["subscribers"] == before
        with anyio.fail_after(5):
            assert [e async for e in events] == []
        sub = engine.subscribe()
        sub.close()
        sub.close()  # idempotent
        await finish(engine, "events")
        assert [e async for e in sub] == []  # closed before the run: received nothing


async def test_a_waiting_subscriber_is_released_when_the_engine_stops() -> None:
    received: list[Any] = []

    async def listen(events: Any) -> None:
        async for event in events:
            received.append(event)

    with anyio.fail_after(5):
        # the engine is left first; that closes the subscription, so `listen` returns
        async with (
            anyio.create_task_group() as tg,
            Engine(dags=[small_dag()], database=":memory:") as engine,
        ):
            tg.start_soon(listen, engine.subscribe())
            await finish(engine, "events")
    assert received and isinstance(received[-1], DagRunStateChanged)


def test_a_subscription_needs_room_for_one_event() -> None:
    from asyncflow.engine.events import EventBus

    with pytest.raises(ValueError, match="at least 1"):
        EventBus().subscribe(0)
