"""`tasks mark`, `dags delete` and `db clean` with no daemon: on the database, through
`asyncflow.engine.commands` (history made by `dags backfill`, which runs in this process)."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from asyncflow.service.lock import DatabaseLock
from tests.daemon.helpers import Result, cli, query

DAILY = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import PythonOperator

def boom():
    raise RuntimeError("broken on purpose")

with DAG("daily", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False) as dag:
    first = PythonOperator(task_id="first", python_callable=boom)
    PythonOperator(task_id="second", python_callable=lambda: 2) << first
"""


class Folder:
    def __init__(self, root: Path) -> None:
        self.dags = root / "dags"
        self.dags.mkdir()
        (self.dags / "daily.py").write_text(textwrap.dedent(DAILY))
        self.database = root / "state" / "asyncflow.db"

    def run(self, *args: str, code: int = 0) -> Result:
        result = cli(*args, "--dags-folder", str(self.dags), "--database", str(self.database))
        assert result.code == code, result
        return result

    def rows(self, sql: str) -> list[tuple[object, ...]]:
        return query(self.database, sql)


@pytest.fixture
def folder(tmp_path: Path) -> Folder:
    f = Folder(tmp_path)
    f.run("dags", "backfill", "daily", "-s", "2024-01-01", "-e", "2024-01-03", code=1)
    return f


def test_mark_success_clears_what_failed_below_and_queues_the_run(folder: Folder) -> None:
    assert folder.rows("SELECT state FROM dag_run WHERE logical_date LIKE '2024-01-03%'") == [
        ("failed",)]  # fmt: skip
    out = folder.run("tasks", "mark", "daily", "first", "--state", "success", "-o", "json").out
    assert json.loads(out) == [{"run_id": json.loads(out)[0]["run_id"], "task_id": "first",
                                "state": "success"}]  # fmt: skip
    latest = "logical_date LIKE '2024-01-03%'"
    states = dict(folder.rows(f"SELECT t.task_id, t.state FROM task_instance t JOIN dag_run r "
                              f"USING (dag_id, run_id) WHERE r.{latest}"))  # fmt: skip
    assert states == {"first": "success", "second": "none"}  # upstream_failed, cleared
    assert folder.rows(f"SELECT state FROM dag_run WHERE {latest}") == [("queued",)]
    again = folder.run("tasks", "mark", "daily", "first", "--state", "success")
    assert "nothing changed" in again.err + again.out


def test_mark_refuses_a_bad_state_and_an_unknown_task(folder: Folder) -> None:
    assert folder.run("tasks", "mark", "daily", "first", "--state", "running", code=2)
    bad = folder.run("tasks", "mark", "daily", "nope", "--state", "failed", code=1)
    assert "no such task 'nope'" in bad.err


def test_delete_a_dag_with_the_daemon_stopped(folder: Folder) -> None:
    assert folder.run("dags", "delete", "daily", code=2).err.count("-y")  # no terminal to ask
    out = folder.run("dags", "delete", "daily", "-y").out
    assert "Removed" in out and "3 dag_run" in out
    assert folder.rows("SELECT count(*) FROM dag_run") == [(0,)]
    assert folder.rows("SELECT count(*) FROM task_instance") == [(0,)]
    assert folder.rows("SELECT count(*) FROM dag WHERE dag_id='daily'") == [(0,)]
    assert "nothing to delete" in folder.run("dags", "delete", "daily", "-y", code=1).err


def test_delete_needs_the_lock_when_no_api_answers(folder: Folder) -> None:
    with DatabaseLock(folder.database):  # a daemon with web_listen = off
        refused = folder.run("dags", "delete", "daily", "-y", code=69)
    assert "needs the daemon stopped" in refused.err
    assert folder.rows("SELECT count(*) FROM dag_run") == [(3,)]


def test_db_clean_deletes_finished_runs_and_keeps_queued_ones(folder: Folder) -> None:
    folder.run("dags", "trigger", "daily", "--run-id", "manual-one")
    dry = folder.run("db", "clean", "--clean-before-timestamp", "2100-01-01", "--dry-run",
                     "-o", "json").out  # fmt: skip
    assert {r["table"]: r["would_delete"] for r in json.loads(dry)}["dag_run"] == 3
    assert folder.rows("SELECT count(*) FROM dag_run") == [(4,)]
    folder.run("db", "clean", "--clean-before-timestamp", "2100-01-01", "--tables", "dag_run",
               "-y")  # fmt: skip
    # backfill runs go; the queued manual run stays; the scheduler never made one here
    assert folder.rows("SELECT run_id FROM dag_run") == [("manual-one",)]
    unknown = folder.run("db", "clean", "--clean-before-timestamp", "2024-01-01", "--tables",
                         "log", "-y", code=2)  # fmt: skip
    assert "no table log" in unknown.err


def test_backfill_shows_progress_from_the_engine_events(tmp_path: Path) -> None:
    f = Folder(tmp_path)
    result = f.run("dags", "backfill", "daily", "-s", "2024-01-01", "-e", "2024-01-02", code=1)
    # the last counts always show: two runs done, each with one failed and one upstream_failed
    assert "backfill daily (2/2 runs done): 4/4 done (2 failed, 2 upstream_failed)" in result.err


def test_a_test_run_reports_each_state_change_as_it_happens() -> None:
    from datetime import datetime

    from asyncflow import DAG
    from asyncflow.cli.progress import EventCounts, Progress
    from asyncflow.engine.dagtest import run_once_sync
    from asyncflow.engine.events import TaskStateChanged
    from asyncflow.operators import EmptyOperator

    with DAG("pair", start_date=datetime(2024, 1, 1), schedule=None) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    seen: list[object] = []
    lines = io.StringIO()
    counts = EventCounts(Progress(2, stream=lines, interval=0), "pair")

    def both(event: object) -> None:
        seen.append(event)
        counts(event)

    run_once_sync(dag, on_event=both)
    done = [(e.task_id, e.new_state) for e in seen
            if isinstance(e, TaskStateChanged) and e.new_state == "success"]  # fmt: skip
    assert done == [("a", "success"), ("b", "success")]
    assert "pair: 1/2 done (1 scheduled, 1 success)\npair: 2/2 done (2 success)" in lines.getvalue()
