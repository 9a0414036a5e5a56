"""The one source of time: injected everywhere, so that tests move time instead of sleeping.

`SystemClock` reads the wall clock. `FakeClock` stands still until a test moves it with
`advance()` / `set()`, and wakes whatever waits on a deadline it passed.
"""

from __future__ import annotations

import heapq
import itertools
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware, in UTC."""
        ...

    async def wait(self, event: anyio.Event, deadline: datetime | None) -> None:
        """Return when `event` is set or `deadline` has passed, whichever comes first."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    async def wait(self, event: anyio.Event, deadline: datetime | None) -> None:
        if deadline is None:
            await event.wait()
            return
        delay = (deadline - datetime.now(UTC)).total_seconds()
        if delay > 0:
            with anyio.move_on_after(delay):
                await event.wait()


class FakeClock:
    """A clock that only moves when told to. Deadlines it passes wake their waiters."""

    def __init__(self, start: datetime | None = None) -> None:
        start = start or datetime(2024, 1, 1, tzinfo=UTC)
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
        self._now = start.astimezone(UTC)
        self._sleepers: list[tuple[datetime, int, anyio.Event]] = []
        self._seq = itertools.count()

    def now(self) -> datetime:
        return self._now

    async def wait(self, event: anyio.Event, deadline: datetime | None) -> None:
        if deadline is not None:
            if deadline <= self._now:
                return
            heapq.heappush(self._sleepers, (deadline, next(self._seq), event))
        await event.wait()

    async def sleep(self, seconds: float) -> None:
        await self.wait(anyio.Event(), self._now + timedelta(seconds=seconds))

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        return self.set(self._now + delta)

    def set(self, when: datetime) -> datetime:
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        self._now = max(self._now, when.astimezone(UTC))
        while self._sleepers and self._sleepers[0][0] <= self._now:
            heapq.heappop(self._sleepers)[2].set()
        return self._now
