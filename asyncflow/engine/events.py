"""Events published after every committed state change, and the bus that fans them out.

Each subscriber has a bounded buffer. A subscriber that falls behind never slows the scheduler:
events that do not fit are dropped for it, and it reads an `EventsMissed(count)` in their place.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import TypeAlias

import anyio

from asyncflow.states import DagRunState, TaskState


@dataclass(frozen=True, slots=True)
class TaskStateChanged:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    old_state: TaskState
    new_state: TaskState
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class DagRunStateChanged:
    dag_id: str
    run_id: str
    old_state: DagRunState | None  # None: the run was just created
    new_state: DagRunState
    timestamp: datetime


@dataclass(frozen=True, slots=True)
class EventsMissed:
    """This subscriber's buffer was full: `count` events were dropped here."""

    count: int


Event: TypeAlias = TaskStateChanged | DagRunStateChanged
Received: TypeAlias = TaskStateChanged | DagRunStateChanged | EventsMissed


class _Gap:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class Subscription:
    """An async iterator of events; `async with` or `close()` ends it."""

    def __init__(self, bus: EventBus, buffer: int) -> None:
        self._bus = bus
        self._capacity = buffer
        self._queue: deque[Event | _Gap] = deque()
        self._size = 0
        self._wakeup = anyio.Event()
        self._closed = False

    def _offer(self, event: Event) -> None:
        if self._size < self._capacity:
            self._queue.append(event)
            self._size += 1
        else:
            tail = self._queue[-1] if self._queue else None
            if not isinstance(tail, _Gap):
                tail = _Gap()
                self._queue.append(tail)
            tail.count += 1
        self._wakeup.set()

    def statistics(self) -> dict[str, int]:
        missed = sum(i.count for i in self._queue if isinstance(i, _Gap))
        return {"buffered": self._size, "capacity": self._capacity, "missed_pending": missed}

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Received:
        while not self._queue:
            if self._closed:
                raise StopAsyncIteration
            await self._wakeup.wait()
            self._wakeup = anyio.Event()
        item = self._queue.popleft()
        if isinstance(item, _Gap):
            return EventsMissed(item.count)
        self._size -= 1
        return item

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._bus._subscribers.discard(self)
            self._wakeup.set()

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: set[Subscription] = set()
        self.published = 0

    @property
    def has_subscribers(self) -> bool:
        return bool(self._subscribers)

    def subscribe(self, buffer: int = 10_000) -> Subscription:
        if buffer < 1:
            raise ValueError("a subscription needs a buffer of at least 1 event")
        sub = Subscription(self, buffer)
        self._subscribers.add(sub)
        return sub

    def publish(self, events: list[Event]) -> None:
        self.published += len(events)
        for sub in self._subscribers:
            for event in events:
                sub._offer(event)

    def close(self) -> None:
        for sub in list(self._subscribers):
            sub.close()

    def statistics(self) -> dict[str, int]:
        return {"subscribers": len(self._subscribers), "published": self.published}
