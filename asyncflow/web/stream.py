"""The engine's events as Server-Sent Events, for any number of HTTP clients.

One `EventHub` reads one engine subscription (its bounded buffer is what keeps the scheduler
from ever waiting on the web), numbers each event, keeps the last `ring` of them for clients
that reconnect with `Last-Event-ID`, and hands each to every client's own bounded queue.

- Ids are integers that only grow, also across daemon restarts (the first id of a process is
  its start time in microseconds), so an id from before a restart is simply "too old".
- A client whose id is older than the ring, or whose queue overflows because it does not read,
  gets one `resync` event (reload your state, then listen again) and the stream ends.
- When the hub's own engine buffer overflows, every client is told to resync.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from asyncflow.engine.events import DagRunStateChanged, Event, EventsMissed, TaskStateChanged


def event_json(event: Event) -> tuple[str, dict[str, Any]]:
    """(SSE event name, data) of one engine event, in the API's field names."""
    if isinstance(event, TaskStateChanged):
        return "task_state", {
            "dag_id": event.dag_id, "dag_run_id": event.run_id, "task_id": event.task_id,
            "map_index": event.map_index, "try_number": event.try_number,
            "old_state": event.old_state.value, "new_state": event.new_state.value,
            "timestamp": event.timestamp.isoformat(),
        }  # fmt: skip
    assert isinstance(event, DagRunStateChanged)
    return "dag_run_state", {
        "dag_id": event.dag_id, "dag_run_id": event.run_id,
        "old_state": None if event.old_state is None else event.old_state.value,
        "new_state": event.new_state.value, "timestamp": event.timestamp.isoformat(),
    }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Numbered:
    id: int
    event: Event


class Resync(Exception):
    """This client must reload its state: `reason` says why."""

    def __init__(self, reason: str, last_id: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.last_id = last_id


class Client:
    """One SSE connection's queue: bounded; an overflow ends it with a resync."""

    def __init__(self, hub: EventHub, buffer: int, dag_id: str | None, run_id: str | None) -> None:
        self.hub = hub
        self.buffer = buffer
        self.dag_id, self.run_id = dag_id, run_id
        self.queue: deque[Numbered] = deque()
        self.resync: Resync | None = None
        self.dropped = anyio.Event()
        self._wakeup = anyio.Event()

    def wants(self, event: Event) -> bool:
        return (self.dag_id is None or event.dag_id == self.dag_id) and (
            self.run_id is None or event.run_id == self.run_id
        )

    def offer(self, item: Numbered) -> None:
        if self.resync is not None or not self.wants(item.event):
            return
        if len(self.queue) >= self.buffer:
            self.fail(f"this client fell {self.buffer} events behind and was dropped")
            return
        self.queue.append(item)
        self._wakeup.set()

    def fail(self, reason: str) -> None:
        if self.resync is None:
            self.queue.clear()
            self.resync = Resync(reason, self.hub.last_id)
            self.hub.dropped += 1
            self.dropped.set()
            self._wakeup.set()

    async def next_batch(self, idle: float) -> list[Numbered]:
        """What has arrived (waiting up to `idle` s for something); raises `Resync`."""
        if not self.queue and self.resync is None:
            with anyio.move_on_after(idle):
                await self._wakeup.wait()
            self._wakeup = anyio.Event()
        if self.resync is not None:
            raise self.resync
        batch = list(self.queue)
        self.queue.clear()
        return batch


class EventHub:
    """Numbers the engine's events and fans them out to SSE clients."""

    def __init__(self, *, ring: int = 10_000, client_buffer: int = 1_000) -> None:
        self.ring: deque[Numbered] = deque(maxlen=ring)
        self.client_buffer = client_buffer
        self.clients: set[Client] = set()
        self.last_id = time.time_ns() // 1000
        self.dropped = 0
        self.missed = 0
        #: called with every event before it is numbered (the metrics)
        self.observers: list[Callable[[Event], None]] = []

    async def run(self, events: AsyncIterator[Event | EventsMissed]) -> None:
        """Read the engine's subscription until it ends."""
        async for event in events:
            if isinstance(event, EventsMissed):
                self.missed += event.count
                self.last_id += event.count  # ids of the lost events are never reused
                self.ring.clear()
                for client in list(self.clients):
                    client.fail(f"the web server missed {event.count} events")
                continue
            self.publish(event)

    def publish(self, event: Event) -> None:
        for observe in self.observers:
            observe(event)
        self.last_id += 1
        item = Numbered(self.last_id, event)
        self.ring.append(item)
        for client in self.clients:
            client.offer(item)

    def connect(
        self, *, dag_id: str | None = None, run_id: str | None = None, after: int | None = None
    ) -> Client:
        """A new client; with `after` (a Last-Event-ID) it first gets what followed that id."""
        client = Client(self, self.client_buffer, dag_id, run_id)
        if after is not None and after < self.last_id:
            oldest = self.ring[0].id if self.ring else self.last_id + 1
            if after < oldest - 1:
                client.resync = Resync(f"event {after} is no longer kept; reload", self.last_id)
            else:
                for item in self.ring:
                    if item.id > after:
                        client.offer(item)
        self.clients.add(client)
        return client

    def disconnect(self, client: Client) -> None:
        self.clients.discard(client)

    def close(self, reason: str = "the server is stopping") -> None:
        """End every client's stream (each is told to resync)."""
        for client in list(self.clients):
            client.fail(reason)

    def statistics(self) -> dict[str, int]:
        return {
            "clients": len(self.clients), "ring": len(self.ring), "last_id": self.last_id,
            "dropped": self.dropped, "missed": self.missed,
        }  # fmt: skip


def sse(name: str, data: Any, event_id: int | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def client_stream(client: Client, heartbeat: float) -> AsyncIterator[bytes]:
    """The bytes of one SSE response: events, `: heartbeat` comments while idle, and a final
    `resync` event when the client must reload."""
    yield b"retry: 2000\n\n"
    try:
        while True:
            try:
                batch = await client.next_batch(heartbeat)
            except Resync as resync:
                yield sse("resync", {"reason": resync.reason, "last_event_id": resync.last_id})
                return
            if not batch:
                yield b": heartbeat\n\n"
                continue
            chunks = []
            for item in batch:
                name, data = event_json(item.event)
                chunks.append(sse(name, data, item.id))
            yield b"".join(chunks)
    finally:
        client.hub.disconnect(client)
