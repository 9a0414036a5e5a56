"""What the daemon logs for people and for machines: one line per run outcome, a task's
failure with the user's traceback (without asyncflow's frames), multi-line on the console."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.daemon.helpers import cli, daemon, wait_for

FAILING_DAG = """
from asyncflow import DAG
from asyncflow.operators import PythonOperator


def load_rows():
    raise ValueError("row 7 is not a number")


with DAG("outcomes", schedule=None) as dag:
    ok = PythonOperator(task_id="extract", python_callable=lambda: 1)
    bad = PythonOperator(task_id="load", python_callable=load_rows)
    after = PythonOperator(task_id="report", python_callable=lambda: 2)
    ok >> bad >> after
"""


def json_lines(text: str) -> list[dict[str, Any]]:
    found = []
    for line in text.splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def test_one_line_per_run_outcome_with_counts_and_the_failed_tasks(tmp_path: Path) -> None:
    with daemon(tmp_path) as d:
        d.write_dag("outcomes.py", FAILING_DAG)
        d.start()
        env = {"ASYNCFLOW_DATABASE": str(d.database), "ASYNCFLOW_DAGS_FOLDER": str(d.dags)}
        assert cli("dags", "trigger", "outcomes", env=env).code == 0

        def outcome() -> dict[str, Any] | None:
            lines = [e for e in json_lines(d.log()) if e.get("event") == "run failed"]
            return lines[0] if lines else None

        line = wait_for(outcome, what="the run's outcome line")
        failed_attempt = next(
            e for e in json_lines(d.log()) if e.get("event") == "task attempt failed"
        )
        assert d.terminate() == 0
    assert line["level"] == "warning"
    assert line["dag_id"] == "outcomes"
    assert line["run_id"].startswith("manual__")
    assert line["state"] == "failed"
    assert isinstance(line["duration"], float)
    assert line["tasks"] == {"failed": 1, "success": 1, "upstream_failed": 1}
    assert line["failed"]["load"] == "ValueError: row 7 is not a number"
    assert "report" in line["failed"]
    # the user's frames only, as one field a machine can read
    exception = failed_attempt["exception"]
    assert 'in load_rows\n    raise ValueError("row 7 is not a number")' in exception
    assert "asyncflow/engine" not in exception and "anyio" not in exception
    assert exception.endswith("ValueError: row 7 is not a number")


def test_a_successful_run_is_logged_too(tmp_path: Path) -> None:
    with daemon(tmp_path) as d:
        d.write_dag("fine.py", FAILING_DAG.replace("raise ValueError", "return 1 or ValueError"))
        d.start()
        env = {"ASYNCFLOW_DATABASE": str(d.database), "ASYNCFLOW_DAGS_FOLDER": str(d.dags)}
        assert cli("dags", "trigger", "outcomes", env=env).code == 0

        def outcome() -> dict[str, Any] | None:
            lines = [e for e in json_lines(d.log()) if e.get("event") == "run succeeded"]
            return lines[0] if lines else None

        line = wait_for(outcome, what="the run's outcome line")
        assert d.terminate() == 0
    assert line["level"] == "info"
    assert line["tasks"] == {"success": 3}
    assert "failed" not in line


def test_the_console_shows_the_traceback_as_it_prints(tmp_path: Path) -> None:
    with daemon(tmp_path, log_format="console") as d:
        d.write_dag("outcomes.py", FAILING_DAG)
        d.start()
        env = {"ASYNCFLOW_DATABASE": str(d.database), "ASYNCFLOW_DAGS_FOLDER": str(d.dags)}
        assert cli("dags", "trigger", "outcomes", env=env).code == 0
        wait_for(lambda: "run failed" in d.log(), what="the run's outcome line")
        assert d.terminate() == 0
    log = d.log()
    lines = log.splitlines()
    assert "Traceback (most recent call last):" in lines
    assert '    raise ValueError("row 7 is not a number")' in lines
    assert "ValueError: row 7 is not a number" in lines
    assert "\\n" not in log  # no escaped newlines: nothing is squeezed onto one line
    assert "asyncflow/engine/runner.py" not in log
    assert not any(line.startswith("{") for line in lines)
