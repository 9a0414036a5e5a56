"""The SQLite store's state-store tables: Airflow's task state store (keys of one task
instance, each with an optional expiry) and asset state store (keys of one asset). Each
function is one statement, run by the store's `_sync` on the calling thread."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from asyncflow.store.base import TaskStateScope, iso

T = TypeVar("T")

_SCOPE = "dag_id=? AND run_id=? AND task_id=? AND map_index=?"


def get_task(db: sqlite3.Connection, scope: TaskStateScope, key: str, now: datetime) -> str | None:
    row = db.execute(
        f"SELECT value FROM task_state WHERE {_SCOPE} AND key=? "
        "AND (expires_at IS NULL OR julianday(expires_at) > julianday(?))",
        (*scope, key, iso(now)),
    ).fetchone()
    return None if row is None else str(row[0])


def set_task(db: sqlite3.Connection, scope: TaskStateScope, key: str, value: str,
             now: datetime, expires_at: datetime | None) -> None:  # fmt: skip
    db.execute(
        "INSERT OR REPLACE INTO task_state (dag_id, run_id, task_id, map_index, key, value, "
        "updated_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (*scope, key, value, iso(now), iso(expires_at)),
    )


def delete_task(db: sqlite3.Connection, scope: TaskStateScope, key: str) -> bool:
    sql = f"DELETE FROM task_state WHERE {_SCOPE} AND key=?"
    return db.execute(sql, (*scope, key)).rowcount > 0


def clear_task(db: sqlite3.Connection, scope: TaskStateScope) -> int:
    return db.execute(f"DELETE FROM task_state WHERE {_SCOPE}", scope).rowcount


def get_asset(db: sqlite3.Connection, asset: str, key: str) -> str | None:
    row = db.execute(
        "SELECT value FROM asset_state WHERE asset=? AND key=?", (asset, key)
    ).fetchone()
    return None if row is None else str(row[0])


def set_asset(db: sqlite3.Connection, asset: str, key: str, value: str, now: datetime) -> None:
    db.execute(
        "INSERT OR REPLACE INTO asset_state (asset, key, value, updated_at) VALUES (?, ?, ?, ?)",
        (asset, key, value, iso(now)),
    )


def delete_asset(db: sqlite3.Connection, asset: str, key: str) -> bool:
    sql = "DELETE FROM asset_state WHERE asset=? AND key=?"
    return db.execute(sql, (asset, key)).rowcount > 0


def clear_asset(db: sqlite3.Connection, asset: str) -> int:
    return db.execute("DELETE FROM asset_state WHERE asset=?", (asset,)).rowcount


class StateSql:
    """The `Store` state-store methods of the SQLite store (mixed into `SQLiteStore`): each
    runs its one statement through the store's `_sync`."""

    def _sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        raise NotImplementedError  # SQLiteStore's

    def get_task_state_sync(self, scope: TaskStateScope, key: str, now: datetime) -> str | None:
        return self._sync(lambda db: get_task(db, scope, key, now))

    def set_task_state_sync(self, scope: TaskStateScope, key: str, value: str,
                            now: datetime, expires_at: datetime | None) -> None:  # fmt: skip
        self._sync(lambda db: set_task(db, scope, key, value, now, expires_at))

    def delete_task_state_sync(self, scope: TaskStateScope, key: str) -> bool:
        return self._sync(lambda db: delete_task(db, scope, key))

    def clear_task_state_sync(self, scope: TaskStateScope) -> int:
        return self._sync(lambda db: clear_task(db, scope))

    def get_asset_state_sync(self, asset: str, key: str) -> str | None:
        return self._sync(lambda db: get_asset(db, asset, key))

    def set_asset_state_sync(self, asset: str, key: str, value: str, now: datetime) -> None:
        self._sync(lambda db: set_asset(db, asset, key, value, now))

    def delete_asset_state_sync(self, asset: str, key: str) -> bool:
        return self._sync(lambda db: delete_asset(db, asset, key))

    def clear_asset_state_sync(self, asset: str) -> int:
        return self._sync(lambda db: clear_asset(db, asset))
