"""The engine's store as the `StateBackend` of the task state store and asset state store.

The engine sets it as `current_state_backend` in the context its scheduler (and so every worker
and callback) runs in. Task code calls ``task_state_store.get()`` without awaiting, from a sync
task's worker thread or an async task on the loop; the store's `_sync` methods answer either
with one indexed SQLite statement on the calling thread. Expiry is measured on the engine's
clock, so a test moves it with the FakeClock.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from asyncflow.clock import Clock
from asyncflow.models.statestore import TaskScope
from asyncflow.store.base import Store

__all__ = ["StoreState"]


class StoreState:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.store = store
        self.clock = clock

    def get_task_state(self, scope: TaskScope, key: str) -> str | None:
        return self.store.get_task_state_sync(scope, key, self.clock.now())

    def set_task_state(
        self, scope: TaskScope, key: str, value: str, retention: timedelta | None
    ) -> None:
        now = self.clock.now()
        expires_at: datetime | None = None
        if retention is not None:
            try:
                expires_at = now + retention
            except OverflowError:  # past year 9999: it never expires
                expires_at = None
        self.store.set_task_state_sync(scope, key, value, now, expires_at)

    def delete_task_state(self, scope: TaskScope, key: str) -> None:
        self.store.delete_task_state_sync(scope, key)

    def clear_task_state(self, scope: TaskScope) -> None:
        self.store.clear_task_state_sync(scope)

    def get_asset_state(self, asset: str, key: str) -> str | None:
        return self.store.get_asset_state_sync(asset, key)

    def set_asset_state(self, asset: str, key: str, value: str) -> None:
        self.store.set_asset_state_sync(asset, key, value, self.clock.now())

    def delete_asset_state(self, asset: str, key: str) -> None:
        self.store.delete_asset_state_sync(asset, key)

    def clear_asset_state(self, asset: str) -> None:
        self.store.clear_asset_state_sync(asset)
