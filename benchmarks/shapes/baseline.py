"""`baseline`: the bare loop asyncflow is measured against (issue 8): no engine, no anyio, no
scheduler, just asyncio (or uvloop) running the `fanout` shape and persisting every state.

The DAG is root -> N no-ops -> join. `parallelism` long-lived worker tasks take ready nodes
from an `asyncio.Queue`; a node's upstream count drops as its upstreams succeed, and at zero it
is queued. Every state of every task instance is persisted, and each change awaits the commit
that holds it before anything acts on it:

- the run: one INSERT of the `dag_run` row (state running) and of its N + 2 `task_instance`
  rows (state `none`), awaited before the first task is queued; the run's `success` at the end;
- each task instance: `queued` (when its upstreams are done; the N middle tasks' queued rows go
  in one call, as the root's worker finds them ready together), `running` (when a worker takes
  it: try_number, start_date) and `success` (end_date, duration): three awaited UPDATEs, 3N + 6
  in all.

The store is asyncflow's own schema (its migrations, so the same `task_instance` table: a
`WITHOUT ROWID` table keyed by text `(dag_id, run_id, task_id, map_index)`), its UPDATE
statement (every column rewritten, as the engine does), on a fresh file in WAL mode with
`synchronous=NORMAL` (FULL for `durability="full"`), `BEGIN IMMEDIATE` per transaction, through
one aiosqlite connection and one thread hop per transaction (what asyncflow does).

Writes go through a **group commit**: a change joins the pending list and awaits its future; one
flusher writes whatever has gathered in one transaction as soon as the previous flush returns
(no timer), then resolves the futures of that flush. At a bound of 64 a flush holds what the
64 workers asked for while the previous one was being written.

Timed like `fanout`: from creating the run to its final commit returning."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from datetime import UTC, datetime
from typing import Any

import aiosqlite

from asyncflow.store import migrations
from benchmarks.shapes.common import Durability, temp_database

DAG_ID, RUN_ID = "fanout", "manual__bench"
LOGICAL = "2024-01-01T00:00:00.000000+00:00"
_TI_INSERT = (
    "INSERT INTO task_instance (dag_id, run_id, task_id, map_index, state, try_number, "
    "max_tries, start_date, end_date, duration, error, next_try_at) "
    "VALUES (?, ?, ?, -1, 'none', 0, 0, NULL, NULL, NULL, NULL, NULL)"
)
# asyncflow's own UPDATE (store/sqlite.py _TI_UPDATE): every column, keyed by the primary key
_TI_UPDATE = (
    "UPDATE task_instance SET state=?, try_number=?, max_tries=?, start_date=?, end_date=?, "
    "duration=?, error=?, next_try_at=? WHERE dag_id=? AND run_id=? AND task_id=? AND map_index=?"
)
_RUN_INSERT = (
    "INSERT INTO dag_run (dag_id, run_id, logical_date, data_interval_start, data_interval_end, "
    "run_type, state, conf, start_date, end_date, queued_at) "
    "VALUES (?, ?, ?, ?, ?, 'manual', 'running', '{}', ?, NULL, ?)"
)
_RUN_UPDATE = "UPDATE dag_run SET state=?, end_date=? WHERE dag_id=? AND run_id=?"

Rows = list[tuple[Any, ...]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


class GroupCommit:
    """Each `write` awaits the transaction that holds it; one flush at a time, back to back."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.pending: list[tuple[str, Rows]] = []
        self.waiters: list[asyncio.Future[None]] = []
        self.flusher: asyncio.Task[None] | None = None
        self.commits = 0
        self.changes = 0

    async def write(self, sql: str, rows: Rows, *more: tuple[str, Rows]) -> None:
        """Await the commit of `rows` for `sql` (and of `more`, in the same transaction)."""
        future = asyncio.get_running_loop().create_future()
        self.pending.append((sql, rows))
        self.pending.extend(more)
        self.waiters.append(future)
        if self.flusher is None:
            self.flusher = asyncio.create_task(self._flush())
        await future

    async def _flush(self) -> None:
        try:
            while self.pending:
                batch, self.pending = self.pending, []
                waiters, self.waiters = self.waiters, []
                db = self.conn._conn
                try:
                    await self.conn._execute(_apply, db, batch)  # type: ignore[no-untyped-call]
                except BaseException as exc:
                    for waiter in waiters:
                        waiter.set_exception(exc)
                    raise
                self.commits += 1
                self.changes += sum(len(rows) for _, rows in batch)
                for waiter in waiters:
                    waiter.set_result(None)
        finally:
            self.flusher = None


def _apply(db: sqlite3.Connection, batch: list[tuple[str, Rows]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        for sql, rows in batch:
            db.executemany(sql, rows)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def _update(task_id: str, state: str, try_number: int, start: str | None,
            end: str | None = None, duration: float | None = None) -> tuple[Any, ...]:  # fmt: skip
    return (state, try_number, 0, start, end, duration, None, None, DAG_ID, RUN_ID, task_id, -1)


class Node:
    __slots__ = ("downstream", "start", "started", "task_id", "waiting")

    def __init__(self, task_id: str, waiting: int) -> None:
        self.task_id = task_id
        self.waiting = waiting  # upstreams not yet succeeded
        self.downstream: list[Node] = []
        self.start = ""
        self.started = 0.0


async def noop() -> None:
    return None


async def execute(nodes: list[Node], store: GroupCommit, parallelism: int) -> None:
    """Run the DAG with `parallelism` workers; return once every node has succeeded."""
    ready: asyncio.Queue[Node | None] = asyncio.Queue()
    finished = asyncio.Event()
    remaining = len(nodes)

    async def queue(batch: list[Node]) -> None:
        await store.write(_TI_UPDATE, [_update(n.task_id, "queued", 0, None) for n in batch])
        for node in batch:
            ready.put_nowait(node)

    async def worker() -> None:
        nonlocal remaining
        while (node := await ready.get()) is not None:
            node.start, node.started = _now(), time.perf_counter()
            await store.write(_TI_UPDATE, [_update(node.task_id, "running", 1, node.start)])
            await noop()
            duration = time.perf_counter() - node.started
            row = _update(node.task_id, "success", 1, node.start, _now(), duration)
            await store.write(_TI_UPDATE, [row])
            unblocked = []
            for down in node.downstream:
                down.waiting -= 1
                if down.waiting == 0:
                    unblocked.append(down)
            if unblocked:
                await queue(unblocked)
            remaining -= 1
            if remaining == 0:
                finished.set()

    workers = [asyncio.create_task(worker()) for _ in range(parallelism)]
    try:
        await queue([n for n in nodes if n.waiting == 0])
        await finished.wait()
    finally:
        for _ in workers:
            ready.put_nowait(None)
        await asyncio.gather(*workers)


def fanout_nodes(n: int) -> list[Node]:
    root, join = Node("root", 0), Node("join", n)
    middle = [Node(f"t{i}", 1) for i in range(n)]
    root.downstream = middle
    for node in middle:
        node.downstream = [join]
    return [root, *middle, join]


async def measure(n: int, parallelism: int, durability: Durability = "normal") -> dict[str, float]:
    nodes = fanout_nodes(n)
    with temp_database() as database:
        conn = await aiosqlite.connect(database, isolation_level=None)
        try:
            await conn.execute("PRAGMA journal_mode=WAL")
            await conn.execute(f"PRAGMA synchronous={durability.upper()}")
            for step in migrations.STEPS:
                await conn.executescript(f"BEGIN IMMEDIATE; {step}; COMMIT;")
            store = GroupCommit(conn)
            started = time.perf_counter()
            now = _now()
            await store.write(
                _RUN_INSERT,
                [(DAG_ID, RUN_ID, LOGICAL, LOGICAL, LOGICAL, now, now)],
                (_TI_INSERT, [(DAG_ID, RUN_ID, node.task_id) for node in nodes]),
            )
            await execute(nodes, store, parallelism)
            await store.write(_RUN_UPDATE, [("success", _now(), DAG_ID, RUN_ID)])
            wall = time.perf_counter() - started
            states = await (await conn.execute(
                "SELECT state, count(*) FROM task_instance GROUP BY state"
            )).fetchall()  # fmt: skip
        finally:
            await conn.close()
    if dict(states) != {"success": len(nodes)}:  # type: ignore[arg-type]
        raise RuntimeError(f"baseline ended with task states {dict(states)}")  # type: ignore[arg-type]
    return {
        "tis_per_s": len(nodes) / wall,
        "wall_s": wall,
        "us_per_ti": wall / len(nodes) * 1e6,
        "commits": store.commits,
        "tis_per_commit": len(nodes) / max(store.commits, 1),
        "changes_per_commit": store.changes / max(store.commits, 1),
    }
