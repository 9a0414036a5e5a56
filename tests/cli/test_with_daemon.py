"""The CLI beside a running daemon: what it writes to the database, the daemon obeys."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.helpers import Daemon, cli, daemon, query, run_states, wait_for

MANUAL = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import PythonOperator

with DAG("manual", start_date=datetime(2024, 1, 1), schedule=None,
         params={"word": "default"}) as dag:
    PythonOperator(task_id="echo", python_callable=lambda params: params["word"])
"""

EVERY_SECOND = """
from datetime import datetime, timedelta
from asyncflow import DAG
from asyncflow.operators import PythonOperator

with DAG("ticker", start_date=datetime(2024, 1, 1), schedule=timedelta(seconds=1),
         catchup=False) as dag:
    PythonOperator(task_id="tick", python_callable=lambda: None)
"""


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Daemon]:
    with daemon(tmp_path) as running:
        running.write_dag("manual.py", MANUAL)
        running.write_dag("ticker.py", EVERY_SECOND)
        running.start()
        yield running
        assert running.terminate() == 0


def run_cli(d: Daemon, *args: str) -> str:
    result = cli(*args, "--dags-folder", str(d.dags), "--database", str(d.database))
    assert result.code == 0, result
    return result.out


def test_a_triggered_run_is_picked_up_by_the_running_daemon(d: Daemon) -> None:
    started = time.monotonic()
    run_cli(d, "dags", "trigger", "manual", "--run-id", "from-cli", "--conf", '{"word": "hi"}')
    wait_for(lambda: run_states(d.database, "manual") in (["success"], ["failed"]), timeout=5,
             what="the triggered run to finish")  # fmt: skip
    assert run_states(d.database, "manual") == ["success"], d.log()
    assert time.monotonic() - started < 3  # adopted within about a second
    [(value,)] = query(d.database, "SELECT value FROM xcom WHERE run_id='from-cli'")
    assert value == '"hi"'  # the run's conf reached the task


def scheduled_runs(d: Daemon) -> int:
    rows = query(d.database, "SELECT count(*) FROM dag_run WHERE dag_id='ticker' AND "
                 "run_type='scheduled'")  # fmt: skip
    return int(rows[0][0]) if rows else 0


def test_a_pause_is_respected_by_the_running_daemon(d: Daemon) -> None:
    wait_for(lambda: scheduled_runs(d) >= 1, what="a scheduled ticker run")
    run_cli(d, "dags", "pause", "ticker")
    # A witness: the daemon reads pause flags right after adopting triggered runs, so once
    # this run has finished the pause is in force.
    run_cli(d, "dags", "trigger", "ticker", "--run-id", "witness")
    wait_for(lambda: ("success",) in query(d.database, "SELECT state FROM dag_run WHERE "
             "run_id='witness'"), timeout=5, what="the witness run")  # fmt: skip
    paused_at = scheduled_runs(d)
    time.sleep(2.5)  # two and a half schedule intervals: no new scheduled run may appear
    assert scheduled_runs(d) == paused_at

    run_cli(d, "dags", "unpause", "ticker")
    wait_for(lambda: scheduled_runs(d) > paused_at, timeout=5, what="runs after unpausing")


def test_runs_list_and_db_check_beside_the_daemon(d: Daemon) -> None:
    wait_for(lambda: scheduled_runs(d) >= 1, what="a scheduled ticker run")
    assert "ticker" in run_cli(d, "runs", "list", "--dag-id", "ticker")
    check = run_cli(d, "db", "check", "-o", "json")
    assert f'"daemon_pid": {d.pid}' in check and '"ok": true' in check


def test_a_cleared_finished_run_is_run_again_by_the_daemon(d: Daemon) -> None:
    def echo() -> tuple[str, int] | None:
        rows = query(d.database, "SELECT state, try_number FROM task_instance "
                     "WHERE run_id='again'")  # fmt: skip
        return rows[0] if rows else None

    run_cli(d, "dags", "trigger", "manual", "--run-id", "again")
    wait_for(lambda: echo() == ("success", 1), timeout=5, what="the first attempt")
    wait_for(lambda: run_states(d.database, "manual") == ["success"], what="the run to finish")
    run_cli(d, "tasks", "clear", "manual", "--run-id", "again")
    wait_for(lambda: echo() == ("success", 2), timeout=5, what="the daemon to run it again")
    wait_for(lambda: run_states(d.database, "manual") == ["success"], what="the run to finish")


ACTIVE = """
from pathlib import Path
import anyio
from asyncflow import DAG, task

GATE = Path(__file__).with_name("gate")

with DAG("active", schedule=None) as dag:
    @task
    async def slow():
        while not GATE.exists():  # keeps the run active until the test opens the gate
            await anyio.sleep(0.05)

    @task
    def quick():
        raise ValueError("fails every time")

    slow()
    quick()
"""


def test_clearing_a_run_the_daemon_is_running_goes_through_the_daemon(d: Daemon) -> None:
    d.write_dag("active.py", ACTIVE)

    def quick() -> tuple[str, int] | None:
        rows = query(d.database, "SELECT state, try_number FROM task_instance "
                     "WHERE run_id='busy' AND task_id='quick'")  # fmt: skip
        return rows[0] if rows else None

    wait_for(lambda: "active" in run_cli(d, "dags", "list"), timeout=10, what="the new DAG")
    run_cli(d, "dags", "trigger", "active", "--run-id", "busy")
    wait_for(lambda: quick() == ("failed", 1), timeout=10, what="the first attempt")
    assert run_states(d.database, "active") == ["running"]  # slow keeps the run active
    out = run_cli(d, "tasks", "clear", "active", "--run-id", "busy", "--task-ids", "quick")
    assert "quick" in out
    wait_for(lambda: quick() == ("failed", 2), timeout=10, what="the daemon to run it again")
    (d.dags / "gate").write_text("")
    wait_for(lambda: run_states(d.database, "active") == ["failed"], timeout=10,
             what="the run to finish")  # fmt: skip
