"""A trigger for asset watchers that the tests fire by hand (module level: the engine rebuilds
it from its class path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from asyncflow.triggers.base import BaseEventTrigger, TriggerEvent

#: channel name -> payloads waiting to be yielded, and the event that says one arrived
PENDING: dict[str, list[Any]] = {}
ARRIVED: dict[str, anyio.Event] = {}


def send(channel: str, payload: Any) -> None:
    PENDING.setdefault(channel, []).append(payload)
    ARRIVED.setdefault(channel, anyio.Event()).set()


class ChannelTrigger(BaseEventTrigger):
    """Yields one event per payload sent on its channel, then ends (the watcher starts it
    again)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.ChannelTrigger", {"channel": self.channel}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while not PENDING.get(self.channel):
            ARRIVED[self.channel] = anyio.Event()
            await ARRIVED[self.channel].wait()
        yield TriggerEvent(PENDING[self.channel].pop(0))
