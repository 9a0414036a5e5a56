"""The `asyncflow` command without a daemon: every verb, its output formats and exit codes."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest

from asyncflow.cli.main import build_parser
from asyncflow.service.lock import DatabaseLock
from tests.daemon.helpers import Result, cli, query

OK = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator, PythonOperator

with DAG("ok", start_date=datetime(2024, 1, 1), schedule=None, tags=["demo"]) as dag:
    say = BashOperator(task_id="say", bash_command="echo hello from {{ ds }}")
    PythonOperator(task_id="count", python_callable=lambda: 42) << say
"""

FAILS = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import PythonOperator

def boom():
    raise RuntimeError("broken on purpose")

with DAG("fails", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    PythonOperator(task_id="boom", python_callable=boom)
"""

DAILY = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator, PythonOperator

with DAG("daily", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=True) as dag:
    a = BashOperator(task_id="a", bash_command="echo extracted {{ ds }}")
    b = PythonOperator(task_id="b", python_callable=lambda ti: ti.xcom_pull(task_ids="a"))
    c = PythonOperator(task_id="c", python_callable=lambda: "done")
    a >> b >> c
"""


class Env:
    """A DAG folder and database under tmp_path, and `run(...)` to call the CLI on them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.dags = root / "dags"
        self.dags.mkdir()
        self.database = root / "state" / "asyncflow.db"
        for name, source in (("ok.py", OK), ("fails.py", FAILS), ("daily.py", DAILY)):
            (self.dags / name).write_text(textwrap.dedent(source))

    def run(self, *args: str) -> Result:
        return cli(*args, "--dags-folder", str(self.dags), "--database", str(self.database),
                   "--home", str(self.root / "state"))  # fmt: skip

    def json(self, *args: str) -> object:
        result = self.run(*args, "--output", "json")
        assert result.code == 0, result
        return json.loads(result.out)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def leaf_commands() -> list[list[str]]:
    """Every command path, e.g. ['dags', 'trigger']."""

    def walk(parser: argparse.ArgumentParser, path: list[str]) -> list[list[str]]:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            return [path]
        return [p for name, sub in subs[0].choices.items() for p in walk(sub, [*path, name])]

    return walk(build_parser(), [])


@pytest.mark.parametrize("command", leaf_commands(), ids=" ".join)
def test_every_command_has_help(command: list[str]) -> None:
    result = cli(*command, "--help")
    assert result.code == 0
    assert result.out.startswith(f"usage: asyncflow {' '.join(command)}")


def test_the_verbs_airflow_users_know_are_there() -> None:
    commands = {" ".join(c) for c in leaf_commands()}
    assert commands >= {
        "serve", "version", "dags list", "dags list-import-errors", "dags trigger", "dags test",
        "dags pause", "dags unpause", "dags next-execution", "dags backfill", "dags list-runs",
        "tasks list", "tasks test", "tasks clear", "tasks states-for-dag-run", "tasks logs",
        "runs list", "db migrate", "db check", "pools list", "pools set", "pools delete",
    }  # fmt: skip


def test_serve_takes_every_setting_as_a_flag() -> None:
    from dataclasses import fields

    from asyncflow.cli.main import COMMON_SETTINGS, SERVE_SETTINGS
    from asyncflow.service.config import Settings

    assert {*COMMON_SETTINGS, *SERVE_SETTINGS} == {f.name for f in fields(Settings)}
    text = cli("serve", "--help").out
    for name in (*COMMON_SETTINGS, *SERVE_SETTINGS):
        assert "--" + name.replace("_", "-") in text and f"ASYNCFLOW_{name.upper()}" in text


def test_usage_errors_exit_2() -> None:
    assert cli("dags").code == 2
    assert cli("dags", "nope").code == 2
    assert cli("dags", "trigger").code == 2  # DAG missing


def test_version() -> None:
    from asyncflow import __version__

    assert cli("version").out.strip() == f"asyncflow {__version__}"
    assert json.loads(cli("version", "-o", "json").out)["version"] == __version__


def test_a_bad_setting_exits_78_and_names_it(env: Env, tmp_path: Path) -> None:
    config = tmp_path / "asyncflow.toml"
    config.write_text("parallelism = 0\n")
    result = env.run("dags", "list", "--config", str(config))
    assert result.code == 78
    assert "parallelism" in result.err and str(config) in result.err
    config.write_text("paralelism = 4\n")
    result = env.run("dags", "list", "--config", str(config))
    assert result.code == 78
    assert "'paralelism'" in result.err and "did you mean 'parallelism'" in result.err
    result = cli("dags", "list", "--database", " ", "--dags-folder", str(env.dags))
    assert result.code == 78 and "database" in result.err


def test_dags_list_as_table_and_json(env: Env) -> None:
    result = env.run("dags", "list")
    assert result.code == 0
    header, _rule, *lines = result.out.splitlines()
    assert header.split() == ["dag_id", "schedule", "is_paused", "tasks", "tags", "fileloc"]
    assert [line.split()[0] for line in lines] == ["daily", "fails", "ok"]
    rows = env.json("dags", "list")
    assert isinstance(rows, list)
    by_id = {row["dag_id"]: row for row in rows}
    assert by_id["ok"] == {"dag_id": "ok", "schedule": "None", "is_paused": False, "tasks": 2,
                           "tags": ["demo"], "fileloc": "ok.py"}  # fmt: skip
    assert by_id["daily"]["schedule"] == "@daily"


def test_import_errors_are_listed_and_warned_about(env: Env) -> None:
    assert env.run("dags", "list-import-errors").code == 0
    (env.dags / "broken.py").write_text("from asyncflow import DAG\nDAG('x', schedule='@daly')\n")
    result = env.run("dags", "list-import-errors", "-o", "json")
    assert result.code == 1
    [error] = json.loads(result.out)
    assert error["filepath"].endswith("broken.py") and "@daly" in error["error"]
    listed = env.run("dags", "list")
    assert listed.code == 0 and "1 DAG file(s) failed to import" in listed.err
    assert "x" not in [line.split()[0] for line in listed.out.splitlines()[2:]]


def test_dags_test_exits_0_on_success_and_1_on_failure(env: Env) -> None:
    result = env.run("dags", "test", "ok", "--logical-date", "2024-02-03")
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert lines[2].split()[:2] == ["say", "success"]
    assert lines[3].split()[:2] == ["count", "success"] and "42" in lines[3]
    assert "success" in result.err

    failed = env.run("dags", "test", "fails", "-o", "json")
    assert failed.code == 1
    [boom] = json.loads(failed.out)
    assert boom["state"] == "failed" and "broken on purpose" in boom["error"]
    assert not env.database.exists() or query(env.database, "SELECT * FROM dag_run") == []

    assert env.run("dags", "test", "missing").code == 1


def test_tasks_list_and_tasks_test(env: Env) -> None:
    rows = env.json("tasks", "list", "daily")
    assert [r["task_id"] for r in rows] == ["a", "b", "c"]  # upstream first
    assert rows[1]["upstream"] == ["a"]

    result = env.run("tasks", "test", "daily", "b", "-o", "json")
    assert result.code == 0, result
    [only] = json.loads(result.out)  # b ran alone: a did not run, its XCom is absent
    assert (only["task_id"], only["state"], only["return_value"]) == ("b", "success", None)
    assert env.run("tasks", "test", "fails", "boom").code == 1
    assert env.run("tasks", "test", "daily", "nope").code == 1


def backfill(env: Env) -> list[dict[str, object]]:
    result = env.run("dags", "backfill", "daily", "-s", "2024-01-01", "-e", "2024-01-03",
                     "-o", "json")  # fmt: skip
    assert result.code == 0, result
    runs: list[dict[str, object]] = json.loads(result.out)
    return runs


def test_backfill_runs_each_interval_once(env: Env) -> None:
    runs = backfill(env)
    assert [r["logical_date"] for r in runs] == [
        "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00",
    ]  # fmt: skip
    assert {(r["state"], r["run_type"]) for r in runs} == {("success", "backfill")}
    again = backfill(env)  # reprocess=none: existing runs are left alone
    assert again == []
    assert len(query(env.database, "SELECT * FROM dag_run")) == 3


def test_backfill_needs_the_daemon_stopped(env: Env) -> None:
    with DatabaseLock(env.database):  # what a running daemon holds
        result = env.run("dags", "backfill", "daily", "-s", "2024-01-01", "-e", "2024-01-02")
    assert result.code == 69
    assert "needs the daemon stopped" in result.err and "PID" in result.err


def test_runs_list_list_runs_and_states(env: Env) -> None:
    runs = backfill(env)
    listed = env.json("runs", "list")
    assert isinstance(listed, list)
    assert [r["run_id"] for r in listed] == [r["run_id"] for r in reversed(runs)]  # newest first
    assert env.json("runs", "list", "--dag-id", "ok") == []
    assert env.json("runs", "list", "--state", "failed") == []
    assert len(env.json("dags", "list-runs", "daily", "--limit", "2")) == 2  # type: ignore[arg-type]
    table = env.run("runs", "list")
    assert table.out.splitlines()[0].split()[:3] == ["dag_id", "run_id", "state"]

    run_id = str(runs[0]["run_id"])
    states = env.json("tasks", "states-for-dag-run", "daily", run_id)
    assert isinstance(states, list)
    assert {(s["task_id"], s["state"], s["try_number"]) for s in states} == {
        ("a", "success", 1), ("b", "success", 1), ("c", "success", 1),
    }  # fmt: skip
    assert env.run("tasks", "states-for-dag-run", "daily", "nope").code == 1


def test_tasks_logs_prints_an_attempt_log(env: Env) -> None:
    run_id = str(backfill(env)[0]["run_id"])
    result = env.run("tasks", "logs", "daily", run_id, "a")
    assert result.code == 0, result
    assert "extracted 2024-01-01" in result.out
    assert env.run("tasks", "logs", "daily", run_id, "a", "--try", "1").out == result.out
    missing = env.run("tasks", "logs", "daily", run_id, "a", "--try", "2")
    assert missing.code == 1 and "no log for" in missing.err and "attempt=2.log" in missing.err


def test_tasks_clear_requeues_a_finished_run(env: Env) -> None:
    run_id = str(backfill(env)[0]["run_id"])
    result = env.run("tasks", "clear", "daily", "--run-id", run_id, "--task-ids", "b",
                     "--downstream", "-o", "json")  # fmt: skip
    assert result.code == 0, result
    assert {r["task_id"] for r in json.loads(result.out)} == {"b", "c"}
    states = dict(query(env.database, "SELECT task_id, state FROM task_instance WHERE run_id=?",
                        (run_id,)))  # fmt: skip
    assert states == {"a": "success", "b": "none", "c": "none"}
    assert query(env.database, "SELECT state, end_date FROM dag_run WHERE run_id=?",
                 (run_id,)) == [("queued", None)]  # fmt: skip
    xcoms = query(env.database, "SELECT task_id FROM xcom WHERE run_id=?", (run_id,))
    assert sorted(t for (t,) in xcoms) == ["a"]
    tries = dict(query(env.database, "SELECT task_id, max_tries FROM task_instance "
                       "WHERE run_id=?", (run_id,)))  # fmt: skip
    assert tries["b"] == 1  # one more try (try_number 1 + retries 0), as Airflow's clear

    # the run is queued now (active): only the daemon may change it while it holds the lock
    with DatabaseLock(env.database):
        busy = env.run("tasks", "clear", "daily", "--run-id", run_id, "--task-ids", "a",
                       "--timeout", "0.5")  # fmt: skip
    assert busy.code == 69 and "daemon" in busy.err

    # without a daemon the command takes the lock itself and may change an active run
    idle = env.run("tasks", "clear", "daily", "--run-id", run_id, "--only-failed")
    assert idle.code == 0 and "nothing to clear" in idle.err


def test_dags_trigger_validates_and_queues_a_run(env: Env) -> None:
    result = env.run("dags", "trigger", "ok", "--conf", '{"k": 1}', "--run-id", "r1",
                     "-o", "json")  # fmt: skip
    assert result.code == 0, result
    run = json.loads(result.out)
    assert (run["run_id"], run["state"], run["conf"]) == ("r1", "queued", {"k": 1})
    assert query(env.database, "SELECT state, run_type FROM dag_run") == [("queued", "manual")]
    assert query(env.database, "SELECT * FROM task_instance") == []  # the daemon creates them

    again = env.run("dags", "trigger", "ok", "--run-id", "r1")
    assert again.code == 1 and "already has a run" in again.err
    assert env.run("dags", "trigger", "ok", "--conf", "{nope").code == 2
    assert env.run("dags", "trigger", "ok", "--conf", "[1]").code == 2
    assert env.run("dags", "trigger", "missing").code == 1
    table = env.run("dags", "trigger", "ok", "--logical-date", "2024-05-01")
    assert table.code == 0 and "no daemon is running" in table.err
    assert "2024-05-01T00:00:00+00:00" in table.out


def test_pause_and_unpause_write_the_flag(env: Env) -> None:
    assert env.run("dags", "pause", "daily").code == 0
    assert query(env.database, "SELECT dag_id, is_paused FROM dag") == [("daily", 1)]
    paused = {r["dag_id"]: r["is_paused"] for r in env.json("dags", "list")}  # type: ignore[union-attr]
    assert paused == {"daily": True, "fails": False, "ok": False}
    assert env.json("dags", "unpause", "daily") == {"dag_id": "daily", "is_paused": False}
    assert query(env.database, "SELECT is_paused FROM dag") == [(0,)]
    assert env.run("dags", "pause", "missing").code == 1


def test_next_execution(env: Env) -> None:
    assert env.run("dags", "next-execution", "daily").out.strip() == "2024-01-01T00:00:00+00:00"
    assert env.json("dags", "next-execution", "daily", "-n", "3") == [
        "2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", "2024-01-03T00:00:00+00:00",
    ]  # fmt: skip
    assert env.run("dags", "next-execution", "ok").out.strip() == "None"  # schedule=None
    env.run("dags", "pause", "daily")
    assert "paused" in env.run("dags", "next-execution", "daily").err


def test_db_migrate_and_check(env: Env) -> None:
    from asyncflow.store import migrations

    migrated = env.json("db", "migrate")
    assert migrated == {"database": str(env.database), "schema_version": migrations.LATEST,
                        "latest": migrations.LATEST}  # fmt: skip
    check = env.json("db", "check")
    assert isinstance(check, dict)
    assert (check["integrity"], check["ok"], check["daemon_pid"]) == ("ok", True, None)
    assert env.run("db", "check").out.splitlines()[0].split()[0] == "database"


def test_pools_set_list_delete(env: Env) -> None:
    assert env.json("pools", "list") == []
    assert env.run("pools", "set", "api", "3").code == 0
    assert env.run("pools", "set", "db", "1").code == 0
    assert env.run("pools", "set", "api", "5").code == 0
    assert env.json("pools", "list") == [{"pool": "api", "slots": 5}, {"pool": "db", "slots": 1}]
    assert env.run("pools", "set", "bad", "-1").code == 2
    assert env.run("pools", "delete", "db").code == 0
    assert env.run("pools", "delete", "db").code == 1
    assert env.json("pools", "list") == [{"pool": "api", "slots": 5}]


def test_reads_create_no_database(env: Env) -> None:
    assert env.run("dags", "list").code == 0
    assert env.json("runs", "list") == []
    assert env.json("pools", "list") == []
    assert env.run("dags", "next-execution", "daily").code == 0
    assert env.run("tasks", "states-for-dag-run", "daily", "r").code == 1
    check = env.run("db", "check")
    assert check.code == 1 and "no database at" in check.err
    assert not env.database.exists()
