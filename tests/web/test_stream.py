"""The event hub: numbered events, resume from the ring, a bounded queue per client, resync."""

from __future__ import annotations

from datetime import UTC, datetime

import anyio
import pytest

from asyncflow import DagRunStateChanged, EventsMissed, TaskStateChanged
from asyncflow.states import DagRunState, TaskState
from asyncflow.web.stream import EventHub, Resync, client_stream

pytestmark = pytest.mark.anyio
NOW = datetime(2024, 1, 1, tzinfo=UTC)


def task_event(task_id: str, run_id: str = "r", dag_id: str = "d") -> TaskStateChanged:
    return TaskStateChanged(dag_id, run_id, task_id, -1, 1, TaskState.RUNNING,
                            TaskState.SUCCESS, NOW)  # fmt: skip


async def test_events_are_numbered_in_order_and_filtered() -> None:
    hub = EventHub()
    start = hub.last_id
    everything, one_run = hub.connect(), hub.connect(dag_id="d", run_id="r2")
    hub.publish(task_event("a"))
    hub.publish(task_event("b", run_id="r2"))
    hub.publish(DagRunStateChanged("d", "r2", DagRunState.RUNNING, DagRunState.SUCCESS, NOW))
    with anyio.fail_after(5):
        got = await everything.next_batch(1)
        mine = await one_run.next_batch(1)
    assert [i.id for i in got] == [start + 1, start + 2, start + 3]
    assert [i.id for i in mine] == [start + 2, start + 3]


async def test_resume_after_an_id_gets_what_followed_from_the_ring() -> None:
    hub = EventHub(ring=10)
    for name in "abc":
        hub.publish(task_event(name))
    first = hub.last_id - 2
    client = hub.connect(after=first)
    with anyio.fail_after(5):
        got = await client.next_batch(1)
    assert [i.event.task_id for i in got if isinstance(i.event, TaskStateChanged)] == ["b", "c"]


async def test_an_id_older_than_the_ring_or_from_an_earlier_process_means_resync() -> None:
    hub = EventHub(ring=2)
    for name in "abcd":
        hub.publish(task_event(name))
    with anyio.fail_after(5), pytest.raises(Resync):
        await hub.connect(after=hub.last_id - 4).next_batch(1)
    later = EventHub()  # a restarted daemon: its ids start above every id the last one gave
    assert later.last_id > hub.last_id
    with anyio.fail_after(5), pytest.raises(Resync):
        await later.connect(after=hub.last_id).next_batch(1)


async def test_a_client_that_does_not_read_is_dropped_and_others_keep_everything() -> None:
    hub = EventHub(client_buffer=3)
    slow, fast = hub.connect(), hub.connect()
    received = []
    for i in range(10):
        hub.publish(task_event(f"t{i}"))  # never waits, however far behind `slow` is
        with anyio.fail_after(5):
            received += await fast.next_batch(1)
    assert len(received) == 10
    assert slow.dropped.is_set() and hub.dropped == 1
    chunks = [chunk async for chunk in client_stream(slow, heartbeat=1)]
    assert chunks[-1].startswith(b"event: resync\n")
    assert b"fell 3 events behind" in chunks[-1]
    assert slow not in hub.clients


async def test_events_the_hub_missed_make_every_client_resync() -> None:
    hub = EventHub()
    client = hub.connect()
    first = hub.last_id

    async def events():  # type: ignore[no-untyped-def]
        yield task_event("a")
        yield EventsMissed(5)

    with anyio.fail_after(5):
        await hub.run(events())
        with pytest.raises(Resync):
            await client.next_batch(1)
    assert hub.last_id == first + 6  # the ids of lost events are never given again


async def test_an_idle_stream_sends_heartbeats() -> None:
    hub = EventHub()
    stream = client_stream(hub.connect(), heartbeat=0.01)
    with anyio.fail_after(5):
        assert await stream.__anext__() == b"retry: 2000\n\n"
        assert await stream.__anext__() == b": heartbeat\n\n"
    await stream.aclose()
