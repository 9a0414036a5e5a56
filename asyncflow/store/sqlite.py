"""The SQLite store, through aiosqlite: WAL, `BEGIN IMMEDIATE` writes, one thread hop per batch.

aiosqlite hops to its connection thread for every call (21-32 us each, more than SQLite itself
spends on a row). A write batch is therefore one function run in that thread: BEGIN IMMEDIATE,
the executemany's, COMMIT - a single round trip however many rows it holds.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Callable, Collection
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite
import anyio

from asyncflow.exceptions import StoreError
from asyncflow.privatefiles import precreate_private_file, private_folders
from asyncflow.records import DagRun, ImportErrorRecord, TaskInstance
from asyncflow.states import DagRunState, TaskState
from asyncflow.store import migrations, sqlassets, sqlhistory
from asyncflow.store.base import (
    CONNECTION_COLUMNS,
    PURGEABLE,
    RUN_COLUMNS,
    TI_COLUMNS,
    VARIABLE_COLUMNS,
    AssetEventRow,
    AssetRow,
    ConnectionRow,
    DeferralRow,
    PastStates,
    Store,
    TIState,
    VariableRow,
    WriteBatch,
    WriteResult,
    XComRow,
    iso,
    run_from_row,
    ti_from_row,
)
from asyncflow.store.sqlstate import StateSql

T = TypeVar("T")

#: ids passed as one `IN (...)` list at most (SQLite allows 32,766 variables per statement)
_MAX_IN_LIST = 10_000

_TI_INSERT = (
    f"INSERT OR IGNORE INTO task_instance ({', '.join(TI_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(TI_COLUMNS))})"
)
_TI_UPDATE = (
    "UPDATE task_instance SET state=?, try_number=?, max_tries=?, start_date=?, end_date=?, "
    "duration=?, error=?, next_try_at=?, lost_count=? "
    "WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=?"
)
_RUN_INSERT = (
    f"INSERT OR IGNORE INTO dag_run ({', '.join(RUN_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(RUN_COLUMNS))})"
)
_RUN_UPDATE = (
    "UPDATE dag_run SET state=?, start_date=?, end_date=?, conf=? WHERE dag_id=? AND run_id=?"
)
_RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM dag_run"
_TI_SELECT = f"SELECT {', '.join(TI_COLUMNS)} FROM task_instance"


class SQLiteStore(StateSql, Store):
    def __init__(
        self, database: str | Path, *, durability: Literal["normal", "full"] = "normal"
    ) -> None:
        if durability not in ("normal", "full"):
            raise ValueError(f"durability must be 'normal' or 'full', got {durability!r}")
        self.database = str(database)
        self.durability = durability
        self._conn: aiosqlite.Connection | None = None
        self.commits = 0
        #: the `_sync` methods' connection (a file database) and the lock that serializes them
        self._sync_conn: sqlite3.Connection | None = None
        self._sync_lock = threading.Lock()

    @property
    def in_memory(self) -> bool:
        return self.database == ":memory:" or self.database.startswith("file::memory:")

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        if not self.in_memory:
            parent = Path(self.database).parent
            try:
                private_folders(parent)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database folder {parent}: {exc.strerror}; "
                    "choose a writable --database path"
                ) from exc
            if not self.database.startswith("file:"):
                # SQLite gives -wal, -shm and journals the database file's mode: 0600 here
                precreate_private_file(self.database)
        try:
            self._conn = await aiosqlite.connect(
                self.database, isolation_level=None, check_same_thread=False
            )
            await self._call(self._setup)
        except sqlite3.Error as exc:
            await self.close()
            raise StoreError(f"cannot open database {self.database}: {exc}") from exc
        except BaseException:
            await self.close()  # never leave aiosqlite's (non-daemon) thread behind
            raise

    def _setup(self, db: sqlite3.Connection) -> None:
        if not self.in_memory:
            db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.durability.upper()}")
        db.execute("PRAGMA busy_timeout=10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > migrations.LATEST:
            raise StoreError(
                f"database {self.database} has schema version {version}, newer than this "
                f"asyncflow knows ({migrations.LATEST}): upgrade asyncflow"
            )
        for number in range(version + 1, migrations.LATEST + 1):
            db.execute("BEGIN IMMEDIATE")
            try:
                for statement in migrations.STEPS[number - 1].split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version={number}")
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    async def close(self) -> None:
        with self._sync_lock:
            sync_conn, self._sync_conn = self._sync_conn, None
        if sync_conn is not None:
            sync_conn.close()
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with anyio.CancelScope(shield=True):
            if not self.in_memory:
                # Fold the WAL back into the database, but never wait for it: beside a busy
                # daemon (a CLI command closing) the checkpoint gives up after 100 ms. What is
                # left in the WAL is replayed on the next open; nothing is lost.
                with contextlib.suppress(sqlite3.Error):
                    await conn.execute("PRAGMA busy_timeout=100")
                    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            await conn.close()

    async def schema_version(self) -> int:
        return int(await self._call(lambda db: db.execute("PRAGMA user_version").fetchone()[0]))

    async def integrity_check(self) -> str:
        return str(await self._call(lambda db: db.execute("PRAGMA quick_check").fetchone()[0]))

    # -- the one hop ------------------------------------------------------------------------
    async def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        conn = self._conn
        if conn is None:
            raise StoreError(f"database {self.database} is not open")
        # aiosqlite's own queue-to-thread entry point: run `fn` on the connection's thread.
        return await conn._execute(lambda: fn(conn._conn))  # type: ignore[no-untyped-call,no-any-return]

    async def write(self, batch: WriteBatch) -> WriteResult:
        with anyio.CancelScope(shield=True):  # a cancelled await may still commit: never leave
            try:  # the outcome unknown
                result = await self._call(lambda db: _apply(db, batch))
            except sqlite3.Error as exc:
                raise StoreError(_explain(exc, self.database)) from exc
        self.commits += 1
        return result

    async def _fetch(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        try:
            return await self._call(lambda db: db.execute(sql, params).fetchall())
        except sqlite3.Error as exc:
            raise StoreError(_explain(exc, self.database)) from exc

    # -- reads ------------------------------------------------------------------------------
    async def get_dag_run(self, dag_id: str, run_id: str) -> DagRun | None:
        rows = await self._fetch(f"{_RUN_SELECT} WHERE dag_id=? AND run_id=?", (dag_id, run_id))
        return run_from_row(rows[0]) if rows else None

    async def find_dag_run(self, dag_id: str, logical_date: datetime) -> DagRun | None:
        rows = await self._fetch(
            f"{_RUN_SELECT} WHERE dag_id=? AND logical_date=?", (dag_id, iso(logical_date))
        )
        return run_from_row(rows[0]) if rows else None

    async def get_dag_runs(
        self,
        dag_id: str | None = None,
        *,
        states: list[DagRunState] | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[DagRun]:
        where, params = [], []
        if dag_id is not None:
            where.append("dag_id=?")
            params.append(dag_id)
        if states:
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(s.value for s in states)
        sql = _RUN_SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY logical_date DESC, id DESC"
        if limit is not None or offset:
            sql += f" LIMIT {-1 if limit is None else int(limit)} OFFSET {int(offset)}"
        return [run_from_row(r) for r in await self._fetch(sql, tuple(params))]

    async def count_dag_runs(self, dag_id: str) -> int:
        rows = await self._fetch("SELECT COUNT(*) FROM dag_run WHERE dag_id=?", (dag_id,))
        return int(rows[0][0])

    async def get_ti_states(
        self, dag_id: str, run_ids: Collection[str], task_ids: Collection[str] | None = None
    ) -> list[TIState]:
        runs, tasks = list(run_ids), None if task_ids is None else list(task_ids)
        if not runs or tasks == []:
            return []
        sql = (
            "SELECT run_id, task_id, map_index, state FROM task_instance WHERE dag_id=? "
            f"AND run_id IN ({', '.join('?' * len(runs))})"
        )
        params: list[Any] = [dag_id, *runs]
        wanted = None if tasks is None else set(tasks)
        if tasks is not None and len(tasks) <= _MAX_IN_LIST:
            sql += f" AND task_id IN ({', '.join('?' * len(tasks))})"
            params += tasks
            wanted = None
        rows = await self._fetch(sql, tuple(params))
        return [TIState(r, t, m, TaskState(s)) for r, t, m, s in rows
                if wanted is None or t in wanted]  # fmt: skip

    async def get_task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        rows = await self._fetch(
            f"{_TI_SELECT} WHERE dag_id=? AND run_id=? ORDER BY task_id, map_index",
            (dag_id, run_id),
        )
        return [ti_from_row(r) for r in rows]

    async def get_xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str, map_index: int = -1
    ) -> str | None:
        rows = await self._fetch(
            "SELECT value FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=? "
            "AND key=?",
            (dag_id, run_id, task_id, map_index, key),
        )
        return rows[0][0] if rows else None

    async def get_run_xcoms(self, dag_id: str, run_id: str) -> list[XComRow]:
        rows = await self._fetch(
            "SELECT dag_id, run_id, task_id, map_index, key, value FROM xcom "
            "WHERE dag_id=? AND run_id=?",
            (dag_id, run_id),
        )
        return [XComRow(*r) for r in rows]

    async def get_deferrals(self, dag_id: str, run_id: str) -> list[DeferralRow]:
        rows = await self._fetch(
            f"SELECT {', '.join(DeferralRow._fields)} FROM deferral WHERE dag_id=? AND run_id=?",
            (dag_id, run_id),
        )
        return [DeferralRow._make((*r[:-1], bool(r[-1]))) for r in rows]

    async def past_states(self, dag_id: str, task_ids: list[str]) -> list[PastStates]:
        if not task_ids:
            return []
        marks = ", ".join("?" * len(task_ids))
        rows = await self._fetch(
            "SELECT r.logical_date, t.task_id, t.state FROM dag_run r JOIN task_instance t "
            "ON t.dag_id = r.dag_id AND t.run_id = r.run_id "
            f"WHERE r.dag_id=? AND r.state IN ('success', 'failed') AND t.task_id IN ({marks}) "
            "ORDER BY r.logical_date",
            (dag_id, *task_ids),
        )
        found: dict[str, PastStates] = {}
        for logical, task_id, state in rows:
            entry = found.get(logical)
            if entry is None:
                entry = found[logical] = PastStates(datetime.fromisoformat(logical), {})
            entry.states[task_id] = TaskState(state)
        return list(found.values())

    async def latest_automated_run(self, dag_id: str) -> DagRun | None:
        rows = await self._fetch(
            f"{_RUN_SELECT} WHERE dag_id=? AND run_type='scheduled' "
            "ORDER BY logical_date DESC LIMIT 1",
            (dag_id,),
        )
        return run_from_row(rows[0]) if rows else None

    async def get_paused(self) -> dict[str, bool]:
        return {d: bool(p) for d, p in await self._fetch("SELECT dag_id, is_paused FROM dag")}

    async def replace_import_errors(self, errors: list[ImportErrorRecord]) -> None:
        rows = [(e.fileloc, e.message, e.stacktrace, iso(e.timestamp)) for e in errors]

        def replace(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute("DELETE FROM import_error")
                db.executemany("INSERT OR REPLACE INTO import_error VALUES (?, ?, ?, ?)", rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        with anyio.CancelScope(shield=True):
            await self._call(replace)

    async def get_import_errors(self) -> list[ImportErrorRecord]:
        rows = await self._fetch(
            "SELECT fileloc, message, stacktrace, timestamp FROM import_error ORDER BY fileloc"
        )
        return [ImportErrorRecord(f, m, s, datetime.fromisoformat(t)) for f, m, s, t in rows]

    async def add_request(self, kind: str, payload: dict[str, Any]) -> int:
        def add(db: sqlite3.Connection) -> int:
            db.execute("BEGIN IMMEDIATE")
            try:
                cursor = db.execute(
                    "INSERT INTO request (kind, payload, created_at) VALUES (?, ?, "
                    "strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
                    (kind, json.dumps(payload)),
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return int(cursor.lastrowid or 0)

        with anyio.CancelScope(shield=True):
            request_id = await self._call(add)
        return request_id

    async def pending_requests(self) -> list[tuple[int, str, dict[str, Any]]]:
        rows = await self._fetch(
            "SELECT id, kind, payload FROM request WHERE done_at IS NULL ORDER BY id"
        )
        return [(i, k, json.loads(p)) for i, k, p in rows]

    async def finish_request(self, request_id: int, result: dict[str, Any]) -> None:
        def finish(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            db.execute(
                "UPDATE request SET done_at=strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), result=? "
                "WHERE id=?",
                (json.dumps(result), request_id),
            )
            db.execute("COMMIT")

        with anyio.CancelScope(shield=True):
            await self._call(finish)

    async def request_result(self, request_id: int) -> dict[str, Any] | None:
        rows = await self._fetch(
            "SELECT result FROM request WHERE id=? AND done_at IS NOT NULL", (request_id,)
        )
        return json.loads(rows[0][0]) if rows else None

    async def get_pools(self) -> dict[str, int]:
        return {n: s for n, s in await self._fetch("SELECT name, slots FROM pool ORDER BY name")}

    async def set_pool(self, name: str, slots: int | None) -> None:
        def change(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            if slots is None:
                db.execute("DELETE FROM pool WHERE name=?", (name,))
            else:
                db.execute(
                    "INSERT INTO pool (name, slots) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET slots=excluded.slots",
                    (name, slots),
                )
            db.execute("COMMIT")

        with anyio.CancelScope(shield=True):
            await self._call(change)

    # -- assets -------------------------------------------------------------------------------
    async def get_assets(self) -> list[AssetRow]:
        return await self._read(sqlassets.assets)

    async def get_asset_events(
        self, *, uri: str | None = None, name: str | None = None, limit: int | None = None
    ) -> list[AssetEventRow]:
        return await self._read(lambda db: sqlassets.events(db, uri, name, limit))

    async def get_asset_queue(self) -> list[tuple[str, AssetEventRow]]:
        return await self._read(sqlassets.queue)

    async def get_asset_aliases(self) -> list[tuple[str, str, str]]:
        return await self._read(sqlassets.aliases)

    async def last_asset_event_id(self) -> int:
        return await self._read(sqlassets.last_event_id)

    def get_run_asset_events_sync(self, dag_id: str, run_id: str) -> list[AssetEventRow]:
        return self._sync(lambda db: sqlassets.run_events(db, dag_id, run_id))

    def get_asset_events_sync(
        self, name: str | None, uri: str | None, limit: int
    ) -> list[AssetEventRow]:
        return self._sync(lambda db: sqlassets.latest_events(db, name, uri, limit))

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        try:
            return await self._call(fn)
        except sqlite3.Error as exc:
            raise StoreError(_explain(exc, self.database)) from exc

    # -- deleting history -------------------------------------------------------------------
    async def delete_dag(self, dag_id: str, *, dry_run: bool = False) -> dict[str, int]:
        return await self._change(lambda db: sqlhistory.delete_dag(db, dag_id, dry_run))

    async def purge(
        self, before: datetime, tables: Collection[str] = PURGEABLE, *, dry_run: bool = False
    ) -> dict[str, int]:
        return await self._change(lambda db: sqlhistory.purge(db, before, tables, dry_run))

    # -- Variables and Connections ------------------------------------------------------------
    async def _change(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        with anyio.CancelScope(shield=True):
            try:
                result = await self._call(lambda db: _in_transaction(db, fn))
            except sqlite3.Error as exc:
                raise StoreError(_explain(exc, self.database)) from exc
        return result

    async def get_variables(self) -> list[VariableRow]:
        rows = await self._fetch(f"{_VARIABLE_SELECT} ORDER BY key")
        return [VariableRow(*row) for row in rows]

    async def set_variable(self, row: VariableRow) -> None:
        await self._change(lambda db: db.execute(_VARIABLE_UPSERT, row))

    async def delete_variable(self, key: str) -> bool:
        return await self._change(lambda db: _deleted(db, "variable", "key", key))

    async def get_connections(self) -> list[ConnectionRow]:
        rows = await self._fetch(f"{_CONNECTION_SELECT} ORDER BY conn_id")
        return [ConnectionRow(*row) for row in rows]

    async def set_connection(self, row: ConnectionRow) -> None:
        await self._change(lambda db: db.execute(_CONNECTION_UPSERT, row))

    async def delete_connection(self, conn_id: str) -> bool:
        return await self._change(lambda db: _deleted(db, "connection", "conn_id", conn_id))

    def _sync(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn`, one statement (its own transaction), on this thread. A file database gets
        a connection of its own (WAL lets it read beside the engine's writer); an in-memory
        one exists only in the store's connection, which SQLite (serialized mode) lets another
        thread use: a statement landing inside the engine's open batch commits with it."""
        if self._conn is None:
            raise StoreError(f"database {self.database} is not open")
        with self._sync_lock:
            db = self._sync_conn
            if db is None and self.in_memory:
                db = self._conn._conn
            elif db is None:
                db = self._sync_conn = sqlite3.connect(
                    self.database, isolation_level=None, check_same_thread=False, timeout=10
                )
            try:
                return fn(db)
            except sqlite3.Error as exc:
                raise StoreError(_explain(exc, self.database)) from exc

    def get_variable_sync(self, key: str) -> VariableRow | None:
        rows = self._sync(
            lambda db: db.execute(f"{_VARIABLE_SELECT} WHERE key=?", (key,)).fetchall()
        )
        return VariableRow(*rows[0]) if rows else None

    def set_variable_sync(self, row: VariableRow) -> None:
        self._sync(lambda db: db.execute(_VARIABLE_UPSERT, row))

    def delete_variable_sync(self, key: str) -> bool:
        return self._sync(lambda db: _deleted(db, "variable", "key", key))

    def get_connection_sync(self, conn_id: str) -> ConnectionRow | None:
        sql = f"{_CONNECTION_SELECT} WHERE conn_id=?"
        rows = self._sync(lambda db: db.execute(sql, (conn_id,)).fetchall())
        return ConnectionRow(*rows[0]) if rows else None


_VARIABLE_SELECT = f"SELECT {', '.join(VARIABLE_COLUMNS)} FROM variable"
_VARIABLE_UPSERT = (
    f"INSERT OR REPLACE INTO variable ({', '.join(VARIABLE_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(VARIABLE_COLUMNS))})"
)
_CONNECTION_SELECT = f"SELECT {', '.join(CONNECTION_COLUMNS)} FROM connection"
_CONNECTION_UPSERT = (
    f"INSERT OR REPLACE INTO connection ({', '.join(CONNECTION_COLUMNS)}) "
    f"VALUES ({', '.join('?' * len(CONNECTION_COLUMNS))})"
)


_DEFERRAL_UPSERT = (
    f"INSERT OR REPLACE INTO deferral ({', '.join(DeferralRow._fields)}) "
    f"VALUES ({', '.join('?' * len(DeferralRow._fields))})"
)


def _in_transaction(db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], T]) -> T:
    db.execute("BEGIN IMMEDIATE")
    try:
        result = fn(db)
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return result


def _deleted(db: sqlite3.Connection, table: str, column: str, value: str) -> bool:
    return db.execute(f"DELETE FROM {table} WHERE {column}=?", (value,)).rowcount > 0


def _apply(db: sqlite3.Connection, batch: WriteBatch) -> WriteResult:
    conflicts: list[tuple[str, str]] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for new in batch.new_runs:
            if db.execute(_RUN_INSERT, new.run).rowcount == 1:
                db.executemany(_TI_INSERT, new.task_instances)
            else:
                conflicts.append((new.run.dag_id, new.run.run_id))
        if batch.dags:
            db.executemany(
                "INSERT INTO dag (dag_id, is_paused, fileloc, last_seen) "
                "VALUES (?1, coalesce(?2, 0), ?3, ?4) ON CONFLICT (dag_id) DO UPDATE SET "
                "is_paused=coalesce(?2, is_paused), fileloc=coalesce(?3, fileloc), "
                "last_seen=coalesce(?4, last_seen)",
                batch.dags,
            )
        if batch.run_updates:
            db.executemany(_RUN_UPDATE, batch.run_updates)
        if batch.ti_deletes:
            db.executemany(
                "DELETE FROM task_instance WHERE dag_id=? AND run_id=? AND task_id=? "
                "AND map_index=?",
                batch.ti_deletes,
            )
        if batch.ti_inserts:
            db.executemany(_TI_INSERT, batch.ti_inserts)
        if batch.ti_updates:
            db.executemany(_TI_UPDATE, batch.ti_updates)
        if batch.xcom_clears:
            db.executemany(
                "DELETE FROM xcom WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=?",
                batch.xcom_clears,
            )
        if batch.xcoms:
            db.executemany("INSERT OR REPLACE INTO xcom VALUES (?, ?, ?, ?, ?, ?)", batch.xcoms)
        if batch.deferral_clears:
            db.executemany(
                "DELETE FROM deferral WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=?",
                batch.deferral_clears,
            )
        if batch.deferrals:
            db.executemany(_DEFERRAL_UPSERT, batch.deferrals)
        if batch.assets:
            sqlassets.apply(db, batch.assets, set(conflicts))
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise
    return WriteResult(conflicts)


def _explain(exc: sqlite3.Error, database: str) -> str:
    text = str(exc)
    if "full" in text:
        return f"database {database}: the disk is full ({text}); free space - nothing was lost"
    if "readonly" in text or "read-only" in text:
        return f"database {database} is read-only ({text}): check the file's permissions"
    if "locked" in text or "busy" in text:
        return f"database {database} is locked by another writer ({text}); retrying"
    return f"database {database}: {text}"
