"""`AssetWatcher`s: each watched asset's trigger runs as a coroutine in the engine's loop for as
long as a loaded DAG is scheduled on the asset. Every `TriggerEvent` it yields becomes an asset
event (extra `{"from_trigger": True, "payload": ...}`, as in Airflow), recorded through the
scheduler's loop and committed before the trigger goes on; the trigger is then started again
for the next one. A trigger that fails or ends without an event is started again after a
backoff (1 s doubling to 60 s on the engine's clock), and its error is logged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import timedelta
from typing import Any

import anyio
import anyio.abc

from asyncflow.clock import Clock
from asyncflow.engine.runner import _describe
from asyncflow.logs import get_logger
from asyncflow.models.asset import Asset, AssetWatcher
from asyncflow.records import AssetKey
from asyncflow.triggers import serde
from asyncflow.triggers.base import TriggerEvent, TriggerRuntime, load_trigger, runtime_var

log = get_logger("asyncflow.assets")

#: records one event of `asset` with `extra` through the loop; returns once committed
Emit = Callable[[Asset, dict[str, Any]], Awaitable[None]]
WatchKey = tuple[AssetKey, str]


class Watchers:
    def __init__(self, *, emit: Emit, runtime: TriggerRuntime, clock: Clock) -> None:
        self.emit = emit
        self.runtime = runtime
        self.clock = clock
        self._wanted: dict[WatchKey, tuple[Asset, AssetWatcher]] = {}
        self._running: dict[WatchKey, tuple[str, anyio.CancelScope]] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self.fired = 0

    async def run(self) -> None:
        """Supervise the watchers until cancelled (the engine stops)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            self._apply()
            await anyio.sleep_forever()

    def sync(self, wanted: dict[WatchKey, tuple[Asset, AssetWatcher]]) -> None:
        """The watchers the loaded DAGs name: new ones start, gone or changed ones stop."""
        self._wanted = dict(wanted)
        self._apply()

    def _apply(self) -> None:
        if self._tg is None:
            return
        for key, (identity, scope) in list(self._running.items()):
            entry = self._wanted.get(key)
            if entry is None or _identity(entry[1]) != identity:
                scope.cancel()
                del self._running[key]
        for key, (asset, watcher) in self._wanted.items():
            if key not in self._running:
                scope = anyio.CancelScope()
                self._running[key] = (_identity(watcher), scope)
                self._tg.start_soon(self._watch, asset, watcher, scope)

    async def _watch(self, asset: Asset, watcher: AssetWatcher, scope: anyio.CancelScope) -> None:
        runtime_var.set(self.runtime)
        classpath, kwargs = watcher.trigger.serialize()
        backoff = 1.0
        with scope:
            while True:
                fired = await self._round(asset, watcher, classpath, kwargs)
                if fired:
                    backoff = 1.0
                    continue
                await self.clock.wait(anyio.Event(), self.clock.now() + timedelta(seconds=backoff))
                backoff = min(backoff * 2, 60.0)

    async def _round(self, asset: Asset, watcher: AssetWatcher, classpath: str,
                     kwargs: dict[str, Any]) -> bool:  # fmt: skip
        """Run the trigger once; whether it yielded an event."""
        fired = False
        trigger: Any = None
        try:
            trigger = load_trigger(classpath, serde.loads(serde.dumps(kwargs, classpath)))
            async with aclosing(trigger.run()) as events:
                async for event in events:
                    if not isinstance(event, TriggerEvent):
                        raise TypeError(f"the trigger yielded {event!r}, not a TriggerEvent")
                    extra = {"from_trigger": True, "payload": event.payload}
                    serde.dumps(extra, f"the event of {classpath}")
                    await self.emit(asset, extra)
                    self.fired += 1
                    fired = True
        except Exception as exc:
            log.warning("asset watcher failed; started again after a pause", asset=asset.uri,
                        watcher=watcher.name, error=_describe(exc))  # fmt: skip
        finally:
            if trigger is not None:
                with anyio.CancelScope(shield=True):
                    try:
                        await trigger.cleanup()
                    except Exception as exc:
                        log.error("trigger cleanup raised", watcher=watcher.name,
                                  error=_describe(exc))  # fmt: skip
        return fired

    def statistics(self) -> dict[str, int]:
        return {"asset_watchers": len(self._running), "asset_watcher_events": self.fired}


def _identity(watcher: AssetWatcher) -> str:
    classpath, kwargs = watcher.trigger.serialize()
    return f"{classpath} {serde.dumps(kwargs, classpath)}"
