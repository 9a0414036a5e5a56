"""The SQLite store's asset tables: what a burst writes (assets, events, the per-DAG queue of
events not yet consumed, which events each asset-triggered run consumed) and the reads the
engine, the CLI and tasks make. Each function runs in the store's connection thread."""

from __future__ import annotations

import sqlite3

from asyncflow.store.base import AssetEventRow, AssetRow, AssetWrites

ASSET_COLUMNS = 'name, uri, "group", extra, updated_at'
EVENT_SELECT = "SELECT " + ", ".join(f"e.{column}" for column in AssetEventRow._fields)


def apply(db: sqlite3.Connection, writes: AssetWrites,
                  conflicts: set[tuple[str, str]]) -> None:  # fmt: skip
    if writes.assets:
        db.executemany(
            f"INSERT INTO asset ({ASSET_COLUMNS}) VALUES (?, ?, ?, ?, ?) ON CONFLICT (name, uri) "
            'DO UPDATE SET "group"=excluded."group", extra=excluded.extra, '
            "updated_at=excluded.updated_at",
            writes.assets,
        )
    if writes.events:
        fields = AssetEventRow._fields
        marks = ", ".join("?" * len(fields))
        db.executemany(
            f"INSERT INTO asset_event ({', '.join(fields)}) VALUES ({marks})", writes.events
        )
    if writes.queue:
        db.executemany("INSERT OR IGNORE INTO asset_queue VALUES (?, ?)", writes.queue)
    consumed = [c for c in writes.consumed if (c.dag_id, c.run_id) not in conflicts]
    if consumed:
        db.executemany("INSERT OR IGNORE INTO asset_run_event VALUES (?, ?, ?)", consumed)
        db.executemany(
            "DELETE FROM asset_queue WHERE dag_id=? AND event_id=?",
            [(c.dag_id, c.event_id) for c in consumed],
        )


def assets(db: sqlite3.Connection) -> list[AssetRow]:
    rows = db.execute(f"SELECT {ASSET_COLUMNS} FROM asset ORDER BY name, uri").fetchall()
    return [AssetRow(*r) for r in rows]


def events(
    db: sqlite3.Connection, uri: str | None, name: str | None, limit: int | None
) -> list[AssetEventRow]:
    where, params = [], []
    for column, value in (("uri", uri), ("name", name)):
        if value is not None:
            where.append(f"{column}=?")
            params.append(value)
    sql = f"{EVENT_SELECT} FROM asset_event e"
    sql += (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [AssetEventRow(*r) for r in db.execute(sql, tuple(params)).fetchall()]


def queue(db: sqlite3.Connection) -> list[tuple[str, AssetEventRow]]:
    rows = db.execute(
        f"SELECT q.dag_id, {EVENT_SELECT.removeprefix('SELECT ')} FROM asset_queue q "
        "JOIN asset_event e ON e.id = q.event_id ORDER BY q.event_id"
    ).fetchall()
    return [(r[0], AssetEventRow(*r[1:])) for r in rows]


def aliases(db: sqlite3.Connection) -> list[tuple[str, str, str]]:
    rows = db.execute(
        "SELECT DISTINCT j.value, e.name, e.uri FROM asset_event e, "
        "json_each(e.source_aliases) j ORDER BY j.value"
    ).fetchall()
    return [(a, n, u) for a, n, u in rows]


def last_event_id(db: sqlite3.Connection) -> int:
    return int(db.execute("SELECT coalesce(max(id), 0) FROM asset_event").fetchone()[0])


def run_events(db: sqlite3.Connection, dag_id: str, run_id: str) -> list[AssetEventRow]:
    sql = (
        f"{EVENT_SELECT} FROM asset_event e JOIN asset_run_event c ON c.event_id = e.id "
        "WHERE c.dag_id=? AND c.run_id=? ORDER BY e.id"
    )
    return [AssetEventRow(*r) for r in db.execute(sql, (dag_id, run_id)).fetchall()]


def latest_events(
    db: sqlite3.Connection, name: str | None, uri: str | None, limit: int
) -> list[AssetEventRow]:
    """The newest `limit` events of an asset named by name or uri (or both), oldest first."""
    given = {"uri": uri, "name": name}
    where = " AND ".join(f"{column}=?" for column, value in given.items() if value is not None)
    values = [value for value in given.values() if value is not None]
    sql = f"{EVENT_SELECT} FROM asset_event e WHERE {where} ORDER BY id DESC LIMIT ?"
    rows = db.execute(sql, (*values, limit)).fetchall()
    return [AssetEventRow(*r) for r in reversed(rows)]
