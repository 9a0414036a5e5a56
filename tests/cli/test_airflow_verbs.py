"""The verbs and argument shapes an Airflow user reaches for: show, state, details, render,
failed-deps, clear across runs, config, info, db reset, -o plain/yaml, --version, the latest run
by default, "no such ..." with the close matches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.test_commands import OK, Env
from tests.daemon.helpers import cli, daemon, wait_for


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def asyncflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "asyncflow.cli.main", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip


def test_version_flag_and_verb() -> None:
    from asyncflow import __version__

    flag = asyncflow("--version")
    assert (flag.returncode, flag.stdout) == (0, f"asyncflow {__version__}\n")
    assert asyncflow("version").stdout == flag.stdout


def test_dags_show_as_a_tree_and_as_dot(env: Env) -> None:
    tree = env.run("dags", "show", "daily")
    assert tree.code == 0
    assert tree.out.splitlines() == [
        "daily",
        "└── a (BashOperator)",
        "    └── b (PythonOperator)",
        "        └── c (PythonOperator)",
    ]
    dot = env.run("dags", "show", "daily", "--dot").out
    assert dot.startswith('digraph "daily" {') and '"a" -> "b";' in dot and '"b" -> "c";' in dot


def test_dags_show_svg_needs_graphviz(env: Env, tmp_path: Path) -> None:
    target = tmp_path / "graph.svg"
    result = env.run("dags", "show", "daily", "--save", str(target))
    if shutil.which("dot") is None:
        assert result.code == 69
        assert "Graphviz's `dot` program is not installed" in result.err
        assert not target.exists()
    else:
        assert result.code == 0 and "<svg" in target.read_text()
    dot_file = tmp_path / "graph.dot"
    assert env.run("dags", "show", "daily", "-s", str(dot_file)).code == 0
    assert '"a" -> "b";' in dot_file.read_text()


def test_unknown_ids_say_no_such_with_close_matches(env: Env) -> None:
    result = env.run("dags", "details", "dialy")
    assert result.code == 1
    assert "no such DAG 'dialy'" in result.err and "did you mean 'daily'" in result.err
    result = env.run("tasks", "state", "daily", "bb")
    assert result.code == 1 and "no such task 'bb'" in result.err
    assert env.run("dags", "trigger", "daily", "-r", "manual__first").code == 0
    result = env.run("dags", "state", "daily", "manual__frist")
    assert result.code == 1
    assert "no such run 'manual__frist'" in result.err and "'manual__first'" in result.err
    result = env.run("tasks", "logs", "daily", "a", "manual__frist")
    assert result.code == 1 and "no such run" in result.err


def test_the_latest_run_is_the_default_and_dates_name_runs(env: Env) -> None:
    assert env.run("dags", "state", "daily").err.startswith("asyncflow: DAG 'daily' has no runs")
    env.run("dags", "trigger", "daily", "-l", "2024-01-01", "-c", '{"k": 1}')
    env.run("dags", "trigger", "daily", "-l", "2024-01-02", "-r", "second")
    latest = env.run("dags", "state", "daily")
    assert (latest.code, latest.out) == (0, "queued\n")
    assert env.json("dags", "state", "daily")["run_id"] == "second"
    by_date = env.json("dags", "state", "daily", "2024-01-01")
    assert by_date["conf"] == {"k": 1}
    assert env.run("tasks", "state", "daily", "b").out == "none\n"
    deps = env.run("tasks", "failed-deps", "daily", "b")
    assert "run second is queued" in deps.out and "waiting for upstream a (none)" in deps.out


def test_dags_test_and_tasks_test_take_a_positional_date(env: Env) -> None:
    result = env.run("dags", "test", "ok", "2024-03-04", "-o", "json")
    assert result.code == 0
    assert [r["task_id"] for r in json.loads(result.out)] == ["say", "count"]
    one = env.run("tasks", "test", "ok", "say", "2024-03-04", "-o", "json")
    assert one.code == 0 and [r["task_id"] for r in json.loads(one.out)] == ["say"]
    assert not env.database.exists()  # nothing kept


def test_tasks_render_shows_the_templated_fields(env: Env) -> None:
    env.run("dags", "trigger", "ok", "-l", "2024-05-06")
    rendered = env.json("tasks", "render", "ok", "say")
    fields = rendered["fields"]
    assert fields["bash_command"] == 'echo hello from "${ASYNCFLOW_TPL_0}"'
    assert fields["template variables"] == {"ASYNCFLOW_TPL_0": "2024-05-06"}
    text = env.run("tasks", "render", "ok", "say").out
    assert "# property: bash_command" in text


def test_details_and_outputs_yaml_and_plain(env: Env) -> None:
    details = yaml.safe_load(env.run("dags", "details", "daily", "-o", "yaml").out)
    assert details["dag_id"] == "daily" and details["catchup"] is True
    assert details["tasks"] == 3
    plain = env.run("dags", "list", "-o", "plain").out.splitlines()
    assert plain[0].split("\t")[:2] == ["dag_id", "schedule"]
    assert any(line.startswith("daily\t") for line in plain)


def test_tasks_clear_across_runs_by_date_and_regex(env: Env) -> None:
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert env.run("dags", "backfill", "daily", "-s", day, "-e", day).code == 0
    refused = env.run("tasks", "clear", "daily", "-t", "^b$")  # no terminal to confirm on
    assert refused.code == 2 and "-y" in refused.err
    cleared = env.json("tasks", "clear", "daily", "-t", "^b$", "-d", "-s", "2024-01-02", "-y")
    assert sorted((r["run_id"][-25:-15], r["task_id"]) for r in cleared) == [
        ("2024-01-02", "b"), ("2024-01-02", "c"), ("2024-01-03", "b"), ("2024-01-03", "c"),
    ]  # fmt: skip
    states = env.json("tasks", "states-for-dag-run", "daily", "2024-01-01")
    assert [r["state"] for r in states] == ["success"] * 3


def test_config_list_and_get_value(env: Env) -> None:
    rows = env.json("config", "list")
    parallelism = next(r for r in rows if r["setting"] == "parallelism")
    assert parallelism["default"] == parallelism["value"]
    assert env.run("config", "get-value", "core", "dags_folder").out.strip() == str(env.dags)
    assert env.run("config", "get-value", "catchup_by_default").out == "true\n"
    wrong = env.run("config", "get-value", "core", "paralelism")
    assert wrong.code == 1 and "did you mean 'parallelism'" in wrong.err


def test_info_and_db_reset(env: Env) -> None:
    info = env.json("info")
    assert info["database"] == str(env.database) and info["daemon_pid"] is None
    env.run("dags", "trigger", "ok")
    assert env.run("db", "reset").code == 2  # asks for -y without a terminal
    assert len(env.json("runs", "list")) == 1
    assert env.run("db", "reset", "-y").code == 0
    assert env.json("runs", "list") == []


def test_import_errors_are_one_summary_line_and_listed_readably(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "broken.py").write_text("from asyncflow import DAG\nDAG('x', schedule='@daly')\n")
    common = ("--dags-folder", str(dags), "--home", str(tmp_path / "state"))
    listed = asyncflow("dags", "list", *common)
    assert listed.stderr.splitlines()[0] == (
        "warning: 1 DAG file(s) failed to import; see `asyncflow dags list-import-errors`"
    )
    assert "{" not in listed.stderr  # no JSON log line per error
    errors = asyncflow("dags", "list-import-errors", *common)
    assert errors.returncode == 1
    lines = errors.stdout.splitlines()
    assert lines[0] == "broken.py"
    assert all(line.startswith("    ") and len(line) <= 104 for line in lines[1:])
    assert "@daly" in errors.stdout and errors.stdout.count(str(dags / "broken.py")) <= 1


def test_trigger_wait_follows_the_run_with_counts(tmp_path: Path) -> None:
    with daemon(tmp_path) as d:
        d.write_dag("ok.py", OK)
        d.start()
        where = ("--dags-folder", str(d.dags), "--database", str(d.database))
        result = asyncflow("dags", "trigger", "ok", "--wait", *where)
        assert d.terminate() == 0
    assert result.returncode == 0, result.stderr
    assert "ok success: 2/2 done (2 success)" in result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[2:]] == ["say", "count"]


def test_trigger_wait_without_a_daemon_says_so(env: Env) -> None:
    result = env.run("dags", "trigger", "ok", "--wait")
    assert result.code == 69 and "--wait needs a running daemon" in result.err
    assert wait_for(lambda: env.json("runs", "list"), what="the queued run")
    assert cli("dags", "state", "ok", "--database", str(env.database), "--dags-folder",
               str(env.dags)).out == "queued\n"  # fmt: skip
