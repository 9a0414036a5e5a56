"""Variables and Connections: kept in the engine's database, overridden by the environment, read
by tasks (sync and async) and templates, masked in task logs, reachable through Airflow's
import paths."""

from __future__ import annotations

import json
import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from asyncflow import DAG, BaseHook, Connection, Engine, Variable, task
from asyncflow.exceptions import AsyncflowError
from asyncflow.loading.dagbag import DagBag
from asyncflow.models.connection import ConnectionNotFound
from asyncflow.models.variable import VariableNotFound
from asyncflow.operators import BashOperator
from asyncflow.store.base import ConnectionRow, VariableRow

START = datetime(2024, 1, 1)


# -- Connection: URI and JSON ---------------------------------------------------------------------
def test_a_uri_is_parsed_into_fields_with_its_query_as_extra() -> None:
    conn = Connection(
        "db", uri="postgresql://us%40er:p%40ss:w@db.example:5433/sales?sslmode=require"
    )
    assert (conn.conn_type, conn.host, conn.port, conn.schema) == (
        "postgres", "db.example", 5433, "sales",
    )  # fmt: skip
    assert (conn.login, conn.password) == ("us@er", "p@ss:w")
    assert conn.extra_dejson == {"sslmode": "require"}


def test_get_uri_parses_back_to_the_same_fields() -> None:
    conn = Connection(
        "api", conn_type="google_cloud", host="h.example", login="me", password="a/b c@d",
        schema="s", port=8080, extra={"nested": {"x": 1}, "flag": True},
    )  # fmt: skip
    again = Connection("api", uri=conn.get_uri())
    assert again.to_dict() == conn.to_dict()
    assert conn.get_uri().startswith("google-cloud://me:a%2Fb%20c%40d@h.example:8080/s?")


def test_a_connection_in_the_environment_as_uri_or_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFLOW_CONN_MY_HTTP", "https://api.example.org/?token=t0k3n")
    monkeypatch.setenv("AIRFLOW_CONN_PORTED", json.dumps({"conn_type": "mysql", "host": "m"}))
    http = BaseHook.get_connection("my_http")
    assert (http.conn_type, http.host, http.extra_dejson) == ("https", "api.example.org",
                                                              {"token": "t0k3n"})  # fmt: skip
    assert Connection.get("ported").host == "m"
    with pytest.raises(ConnectionNotFound, match="asyncflow connections add nothing"):
        Connection.get("nothing")


def test_variables_from_the_environment_and_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYNCFLOW_VAR_REGION", "eu")
    monkeypatch.setenv("AIRFLOW_VAR_LIMITS", '{"max": 3}')
    assert Variable.get("region") == "eu"
    assert Variable.get("limits", deserialize_json=True) == {"max": 3}
    assert Variable.get("absent", default_var=None) is None
    with pytest.raises(VariableNotFound, match="only environment variables are seen"):
        Variable.get("absent")
    with pytest.raises(AsyncflowError, match="no engine is running"):
        Variable.set("x", 1)


# -- in a running engine ------------------------------------------------------------------------
@pytest.mark.anyio
async def test_tasks_and_templates_read_and_write_the_engines_variables(tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    with DAG("vars", schedule=None, start_date=START) as dag:

        @task
        def sync_reader() -> None:  # a worker thread
            seen["sync"] = Variable.get("cfg", deserialize_json=True)
            Variable.set("written_by_sync", {"n": 1}, serialize_json=True)

        @task
        async def async_reader() -> None:  # on the loop
            seen["async"] = Variable.get("written_by_sync", deserialize_json=True)
            seen["db"] = BaseHook.get_connection("warehouse").get_uri()
            Variable.delete("cfg")
            seen["gone"] = Variable.get("cfg", default_var="gone")

        shell = BashOperator(
            task_id="shell",
            bash_command="echo {{ var.value.greeting }} {{ var.json.cfg.a }} "
            "{{ conn.warehouse.host }}",
        )
        shell >> sync_reader() >> async_reader()

    logs = tmp_path / "logs"
    async with Engine(dags=[dag], database=tmp_path / "db.sqlite", logs_folder=logs) as engine:
        await engine.store.set_variable(VariableRow("greeting", "hello"))
        await engine.store.set_variable(VariableRow("cfg", '{"a": 7}'))
        await engine.store.set_connection(ConnectionRow("warehouse", "postgres", host="wh", port=1))
        run = await engine.trigger_dag("vars", run_id="r")
        assert (await engine.wait_for_run("vars", run.run_id, timeout=10)).state == "success"
        keys = [row.key for row in await engine.store.get_variables()]
    assert seen == {
        "sync": {"a": 7},
        "async": {"n": 1},
        "db": "postgres://wh:1",
        "gone": "gone",
    }
    assert keys == ["greeting", "written_by_sync"]
    assert "hello 7 wh" in (logs / "vars" / "r" / "shell" / "attempt=1.log").read_text()


@pytest.mark.anyio
async def test_the_environment_overrides_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASYNCFLOW_VAR_MODE", "from-env")
    seen = []
    with DAG("override", schedule=None, start_date=START) as dag:

        @task
        def read() -> None:
            seen.append(Variable.get("mode"))

        read()

    async with Engine(dags=[dag], database=":memory:") as engine:
        await engine.store.set_variable(VariableRow("mode", "from-db"))
        run = await engine.trigger_dag("override")
        assert (await engine.wait_for_run("override", run.run_id, timeout=10)).state == "success"
    assert seen == ["from-env"]


@pytest.mark.anyio
async def test_secret_looking_values_are_masked_in_task_logs(tmp_path: Path) -> None:
    with DAG("masked", schedule=None, start_date=START) as dag:

        @task
        def leak() -> None:
            print("key is", Variable.get("service_api_key"))
            print("password is", BaseHook.get_connection("db").password)
            print("region is", Variable.get("region"))

        leak()

    logs = tmp_path / "logs"
    async with Engine(dags=[dag], database=":memory:", logs_folder=logs) as engine:
        await engine.store.set_variable(VariableRow("service_api_key", "sk-12345-secret"))
        await engine.store.set_variable(VariableRow("region", "eu-west"))
        await engine.store.set_connection(ConnectionRow("db", "pg", password="hunter2!"))
        run = await engine.trigger_dag("masked", run_id="r")
        assert (await engine.wait_for_run("masked", run.run_id, timeout=10)).state == "success"
    text = (logs / "masked" / "r" / "leak" / "attempt=1.log").read_text()
    assert "key is ***" in text and "password is ***" in text and "region is eu-west" in text
    assert "sk-12345-secret" not in text and "hunter2!" not in text


@pytest.mark.anyio
async def test_airflow_import_paths_give_variable_connection_and_basehook(tmp_path: Path) -> None:
    (tmp_path / "ported.py").write_text(
        textwrap.dedent(
            """
            from datetime import datetime
            from airflow import DAG
            from airflow.models import Variable
            from airflow.models.connection import Connection
            from airflow.hooks.base import BaseHook
            from airflow.sdk import task, Variable as SdkVariable

            with DAG("ported", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
                @task
                def use():
                    assert SdkVariable is Variable
                    conn = BaseHook.get_connection("api")
                    assert isinstance(conn, Connection)
                    return [Variable.get("who"), conn.host]
                use()
            """
        )
    )
    bag = DagBag(tmp_path)
    bag.collect()
    assert not bag.import_errors, [str(e) for e in bag.import_errors.values()]
    async with Engine(dags=bag.dags.values(), database=":memory:") as engine:
        await engine.store.set_variable(VariableRow("who", "me"))
        await engine.store.set_connection(ConnectionRow("api", "http", host="api.example"))
        run = await engine.trigger_dag("ported")
        assert (await engine.wait_for_run("ported", run.run_id, timeout=10)).state == "success"
        assert await engine.get_xcom("ported", run.run_id, "use") == ["me", "api.example"]
