"""The engine's store as the `SecretsBackend` that `Variable` and `Connection` read through.

The engine sets it as `current_backend` in the context its scheduler (and so every worker and
callback) runs in. Task code calls `Variable.get()` without awaiting, from a sync task's worker
thread or from an async task on the loop; the store's `_sync` methods answer either with one
indexed SQLite statement on the calling thread (microseconds), so no thread hop is needed and
no loop is blocked for longer than a point query.
"""

from __future__ import annotations

from typing import Any

from asyncflow.store.base import Store, VariableRow

__all__ = ["StoreSecrets"]


class StoreSecrets:
    def __init__(self, store: Store) -> None:
        self.store = store

    def get_variable(self, key: str) -> str | None:
        row = self.store.get_variable_sync(key)
        return None if row is None else row.value

    def set_variable(self, key: str, value: str, description: str) -> None:
        self.store.set_variable_sync(VariableRow(key, value, description))

    def delete_variable(self, key: str) -> bool:
        return self.store.delete_variable_sync(key)

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        row = self.store.get_connection_sync(conn_id)
        if row is None:
            return None
        fields = row._asdict()
        del fields["conn_id"]
        return fields
