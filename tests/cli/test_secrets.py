"""`asyncflow variables ...` and `asyncflow connections ...` against a database file, and a task
of a DAG run by an engine on that database reading what the CLI wrote."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, BaseHook, Engine, Variable, task
from tests.daemon.helpers import Result, cli


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.database = root / "state" / "asyncflow.db"
        (root / "dags").mkdir()

    def run(self, *args: str, env: dict[str, str] | None = None) -> Result:
        return cli(*args, "--dags-folder", str(self.root / "dags"), "--database",
                   str(self.database), "--home", str(self.root / "state"), env=env)  # fmt: skip


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


def test_variables_set_get_list_delete(env: Env) -> None:
    assert env.run("variables", "set", "region", "eu", "--description", "where").code == 0
    assert env.run("variables", "set", "cfg", '{"a": [1, 2]}', "--json").code == 0
    assert env.run("variables", "set", "db_password", "hunter2").code == 0
    assert env.run("variables", "get", "region").out == "eu\n"
    assert json.loads(env.run("variables", "get", "cfg", "--json").out) == {"a": [1, 2]}
    listed = env.run("variables", "list")
    assert "region" in listed.out and "where" in listed.out
    assert "hunter2" not in listed.out and "***" in listed.out
    assert env.run("variables", "delete", "region").code == 0
    missing = env.run("variables", "get", "region")
    assert missing.code == 1 and "asyncflow variables set region" in missing.err
    assert env.run("variables", "get", "region", "--default", "x").out == "x\n"
    assert env.run("variables", "delete", "region").code == 1
    bad = env.run("variables", "set", "k", "{not json", "--json")
    assert bad.code == 2 and "not JSON" in bad.err


def test_the_environment_overrides_the_database_in_get(env: Env) -> None:
    env.run("variables", "set", "mode", "db")
    assert env.run("variables", "get", "mode", env={"ASYNCFLOW_VAR_MODE": "env"}).out == "env\n"


def test_variables_export_and_import_round_trip(env: Env, tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps({"plain": "text", "nested": {"x": 1}, "n": 3}))
    assert env.run("variables", "import", str(source)).code == 0
    assert json.loads(env.run("variables", "get", "nested", "--json").out) == {"x": 1}
    out = tmp_path / "out.json"
    assert env.run("variables", "export", str(out)).code == 0
    assert json.loads(out.read_text()) == {"plain": "text", "nested": {"x": 1}, "n": 3}
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    assert env.run("variables", "import", str(bad)).code == 2


def test_connections_add_get_list_delete(env: Env) -> None:
    uri = "postgres://app:s%40cret@db.example:5432/sales?sslmode=require"
    assert env.run("connections", "add", "warehouse", "--conn-uri", uri).code == 0
    fields = ["--conn-type", "http", "--conn-host", "api.example", "--conn-password", "tok"]
    assert env.run("connections", "add", "api", *fields, "--conn-port", "443").code == 0
    shown = json.loads(env.run("connections", "get", "warehouse", "-o", "json").out)
    assert shown["host"] == "db.example" and shown["password"] == "s@cret"
    assert shown["uri"] == uri and json.loads(shown["extra"]) == {"sslmode": "require"}
    listed = env.run("connections", "list")
    assert "warehouse" in listed.out and "api.example" in listed.out and "s@cret" not in listed.out
    both = env.run("connections", "add", "x", "--conn-uri", uri, "--conn-host", "h")
    assert both.code == 2 and "not both" in both.err
    assert env.run("connections", "add", "x", "--conn-uri", "no-scheme").code == 2
    assert env.run("connections", "delete", "api").code == 0
    assert env.run("connections", "get", "api").code == 1


def test_a_task_reads_what_the_cli_wrote(env: Env) -> None:
    env.run("variables", "set", "greeting", "hi")
    env.run("connections", "add", "svc", "--conn-uri", "http://u:p@svc.example:81")
    seen = []
    with DAG("reader", schedule=None, start_date=datetime(2024, 1, 1)) as dag:

        @task
        def read() -> None:
            seen.append((Variable.get("greeting"), BaseHook.get_connection("svc").port))

        read()

    async def main() -> str:
        async with Engine(dags=[dag], database=env.database) as engine:
            run = await engine.trigger_dag("reader")
            return (await engine.wait_for_run("reader", run.run_id, timeout=10)).state.value

    assert anyio.run(main) == "success"
    assert seen == [("hi", 81)]
