"""Python callables run by another interpreter: PythonVirtualenvOperator / @task.virtualenv
(a real venv, built once per requirements and reused) and ExternalPythonOperator /
@task.external_python; arguments and return values travel as JSON."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from asyncflow import DAG, DagDefinitionError, Engine, task
from asyncflow.operators import (
    BranchExternalPythonOperator,
    EmptyOperator,
    ExternalPythonOperator,
    PythonVirtualenvOperator,
)
from tests.engine.support import finish

pytestmark = pytest.mark.anyio


def in_venv(numbers: list[int], *, label: str, ds: str) -> dict[str, Any]:
    import sys

    return {
        "total": sum(numbers),
        "label": label,
        "ds": ds,
        "prefix": sys.prefix,
        "base": sys.base_prefix,
    }


async def test_a_callable_runs_in_a_cached_virtualenv(tmp_path: Path) -> None:
    cache = tmp_path / "venvs"
    with DAG("venv", schedule=None) as dag:
        first = PythonVirtualenvOperator(
            task_id="first",
            python_callable=in_venv,
            op_args=[[1, 2, 3]],
            op_kwargs={"label": "{{ run_id }}"},
            requirements=[],
            system_site_packages=False,
            venv_cache_path=str(cache),
        )

        @task.virtualenv(requirements=[], system_site_packages=False, venv_cache_path=str(cache))
        def second(previous: dict[str, Any]) -> str:
            import json  # a self-contained function: imports inside

            return json.dumps(previous["total"] * 2)

        second(first.output)
    async with Engine(dags=[dag], database=":memory:", logs_folder=tmp_path / "logs") as engine:
        result = await finish(engine, "venv", run_id="r1", timeout=120)
    assert result.states == {"first": "success", "second": "success"}, result.tis
    value = result.xcoms["first"]
    assert (value["total"], value["label"]) == (6, "r1")
    assert value["ds"] == result.run.logical_date.strftime("%Y-%m-%d")
    venvs = [p for p in cache.iterdir() if p.name.startswith("venv-")]
    assert len(venvs) == 1  # one spec, one venv: built once, used by both tasks
    assert value["prefix"] == str(venvs[0]) and value["prefix"] != sys.prefix
    assert (venvs[0] / ".complete").exists()
    assert result.xcoms["second"] == "12"


async def test_external_python_and_its_branch_variant(tmp_path: Path) -> None:
    def where(**context: Any) -> list[str]:
        import sys

        return [sys.executable, context["run_id"]]

    def choose(options: list[str]) -> str:
        return options[1]

    with DAG("ext", schedule=None) as dag:
        ExternalPythonOperator(task_id="where", python=sys.executable, python_callable=where)
        branch = BranchExternalPythonOperator(
            task_id="branch", python=sys.executable, python_callable=choose,
            op_args=[["left", "right"]],
        )  # fmt: skip
        branch >> [EmptyOperator(task_id="left"), EmptyOperator(task_id="right")]
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "ext", run_id="r2", timeout=60)
    assert result.xcoms["where"] == [sys.executable, "r2"]
    assert result.states == {"where": "success", "branch": "success", "left": "skipped",
                             "right": "success"}  # fmt: skip


async def test_failures_in_the_child_and_values_json_cannot_carry_fail_the_task(
    tmp_path: Path,
) -> None:
    def boom() -> None:
        raise ValueError("inside the child")

    def opaque() -> object:
        return object()

    def wants_a_datetime(logical_date: Any) -> None:
        pass

    with DAG("ext_fail", schedule=None) as dag:
        for fn in (boom, opaque, wants_a_datetime):
            ExternalPythonOperator(task_id=fn.__name__, python=sys.executable, python_callable=fn)
        ExternalPythonOperator(task_id="missing", python="/no/such/python", python_callable=boom)
    logs = tmp_path / "logs"
    async with Engine(dags=[dag], database=":memory:", logs_folder=logs) as engine:
        result = await finish(engine, "ext_fail", run_id="r", timeout=60)
    assert set(result.states.values()) == {"failed"}
    boom_log = (logs / "ext_fail" / "r" / "boom" / "attempt=1.log").read_text()
    assert "ValueError: inside the child" in boom_log
    opaque_log = (logs / "ext_fail" / "r" / "opaque" / "attempt=1.log").read_text()
    assert "cannot be sent back as JSON" in opaque_log
    assert "'logical_date' (datetime) cannot be passed" in (
        result.tis["wants_a_datetime"].error or ""
    )
    assert "is not an executable file" in (result.tis["missing"].error or "")


def test_what_cannot_be_shipped_is_refused_at_load_time() -> None:
    with DAG("bad_venv", schedule=None), pytest.raises(DagDefinitionError, match="python_version"):
        PythonVirtualenvOperator(task_id="v", python_callable=in_venv, python_version="2.7")
    with DAG("bad_venv2", schedule=None), pytest.raises(DagDefinitionError, match="`def`"):
        PythonVirtualenvOperator(task_id="v", python_callable=lambda: 1)
    running = f"{sys.version_info.major}.{sys.version_info.minor}"
    with DAG("ok_venv", schedule=None):
        PythonVirtualenvOperator(task_id="v", python_callable=in_venv, python_version=running)
