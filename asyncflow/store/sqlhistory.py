"""Deleting history in SQLite: a DAG's rows (`dags delete`) and rows older than a date
(`db clean`). Each function runs inside the caller's transaction on the store's connection;
the semantics are the contract's (`Store.delete_dag`, `Store.purge`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Collection
from datetime import datetime

from asyncflow.store.base import PURGEABLE, iso

__all__ = ["delete_dag", "purge"]

_FINISHED = "state IN ('success', 'failed')"
#: when a run counts as made: it started, else it was queued, else its logical date
_RUN_TIME = "julianday(COALESCE(start_date, queued_at, logical_date))"
#: the latest scheduled run of its DAG: the timetable resumes from it
_LATEST_SCHEDULED = (
    "id IN (SELECT r.id FROM dag_run r WHERE r.run_type = 'scheduled' AND r.logical_date = "
    "(SELECT MAX(s.logical_date) FROM dag_run s WHERE s.dag_id = r.dag_id "
    "AND s.run_type = 'scheduled'))"
)


def _apply(
    db: sqlite3.Connection, table: str, where: str, params: tuple[object, ...], dry_run: bool
) -> int:
    if dry_run:
        return int(db.execute(f"SELECT COUNT(*) FROM {table} WHERE {where}", params).fetchone()[0])
    return db.execute(f"DELETE FROM {table} WHERE {where}", params).rowcount


def delete_dag(db: sqlite3.Connection, dag_id: str, dry_run: bool) -> dict[str, int]:
    return {
        table: _apply(db, table, "dag_id = ?", (dag_id,), dry_run)
        for table in ("xcom", "task_instance", "dag_run", "dag")
    }


def purge(
    db: sqlite3.Connection, before: datetime, tables: Collection[str], dry_run: bool
) -> dict[str, int]:
    unknown = set(tables) - set(PURGEABLE)
    if unknown:
        raise ValueError(
            f"cannot clean table(s) {', '.join(sorted(unknown))}: choose among "
            f"{', '.join(PURGEABLE)}"
        )
    cutoff = (iso(before),)
    old_runs = f"{_FINISHED} AND {_RUN_TIME} < julianday(?)"
    expired_runs = f"{old_runs} AND NOT {_LATEST_SCHEDULED}"
    # the runs whose task instances (and XComs) go: every old finished run when the task
    # instances or XComs are cleaned themselves, else those whose run row goes
    wide = {"task_instance", "xcom"} & set(tables)
    runs_of_children = old_runs if wide else expired_runs
    of_runs = f"(dag_id, run_id) IN (SELECT dag_id, run_id FROM dag_run WHERE {runs_of_children})"
    counts: dict[str, int] = {}
    if set(tables) & {"dag_run", "task_instance", "xcom"}:
        counts["xcom"] = _apply(db, "xcom", of_runs, cutoff, dry_run)
    if set(tables) & {"dag_run", "task_instance"}:
        counts["task_instance"] = _apply(db, "task_instance", of_runs, cutoff, dry_run)
    if "dag_run" in tables:
        counts["dag_run"] = _apply(db, "dag_run", expired_runs, cutoff, dry_run)
    if "import_error" in tables:
        counts["import_error"] = _apply(
            db, "import_error", "julianday(timestamp) < julianday(?)", cutoff, dry_run
        )
    if "request" in tables:
        counts["request"] = _apply(
            db, "request", "done_at IS NOT NULL AND julianday(created_at) < julianday(?)",
            cutoff, dry_run,
        )  # fmt: skip
    return counts
