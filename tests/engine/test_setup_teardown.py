"""Setup and teardown tasks end to end, as Airflow documents them: the teardown runs when its
upstream are done and a setup succeeded (even when the work failed), the run's state ignores
teardowns unless on_failure_fail_dagrun, clearing work clears its setups and teardowns."""

from __future__ import annotations

from typing import Any

import pytest

from asyncflow import DAG, AsyncflowSkipException, Engine, setup, task, teardown
from asyncflow.exceptions import DagDefinitionError
from asyncflow.operators import PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


def boom() -> None:
    raise ValueError("boom")


def op(task_id: str, fn: Any = lambda: "ok", **kwargs: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=fn, **kwargs)


async def test_teardown_runs_after_failed_work_and_the_run_follows_the_work() -> None:
    with DAG("st_fail", schedule=None) as dag:
        create = op("create").as_setup()
        work = op("work", boom)
        delete = op("delete").as_teardown(setups=create)
        create >> work >> delete
    result = await run_dag(dag)
    assert result.states == {"create": "success", "work": "failed", "delete": "success"}
    assert result.run.state == "failed"  # the work failed, not the teardown


async def test_a_failed_teardown_does_not_fail_the_run() -> None:
    with DAG("st_td_fails", schedule=None) as dag:
        create = op("create").as_setup()
        delete = op("delete", boom).as_teardown(setups=create)
        create >> op("work") >> delete
    result = await run_dag(dag)
    assert result.states["delete"] == "failed"
    assert result.run.state == "success"


async def test_on_failure_fail_dagrun_makes_the_teardown_count() -> None:
    with DAG("st_td_counts", schedule=None) as dag:
        create = op("create").as_setup()
        delete = op("delete", boom).as_teardown(setups=create, on_failure_fail_dagrun=True)
        create >> op("work") >> delete
    result = await run_dag(dag)
    assert result.run.state == "failed"


async def test_teardown_without_a_successful_setup_does_not_run() -> None:
    with DAG("st_setup_fails", schedule=None) as dag:
        create = op("create", boom).as_setup()
        delete = op("delete").as_teardown(setups=create)
        create >> op("work") >> delete
    result = await run_dag(dag)
    assert result.states == {
        "create": "failed", "work": "upstream_failed", "delete": "upstream_failed",
    }  # fmt: skip
    assert result.run.state == "failed"


async def test_decorators_and_the_context_manager_form() -> None:
    with DAG("st_decorators", schedule=None) as dag:

        @setup
        def make() -> str:
            return "made"

        @teardown
        def drop() -> str:
            return "dropped"

        made = make()
        with drop().as_teardown(setups=made):
            inside = op("inside", boom)
    assert dag.task_dict["make"].is_setup and dag.task_dict["drop"].is_teardown
    assert inside.upstream_task_ids == {"make"}
    assert inside.downstream_task_ids == {"drop"}
    result = await run_dag(dag)
    assert result.states == {"make": "success", "inside": "failed", "drop": "success"}
    assert result.run.state == "failed"


async def test_teardown_decorator_on_failure_fail_dagrun() -> None:
    with DAG("st_deco_fail", schedule=None) as dag:

        @setup
        def make() -> None:
            return None

        @teardown(on_failure_fail_dagrun=True)
        def drop() -> None:
            boom()

        made = make()
        made >> op("work") >> drop().as_teardown(setups=made)
    result = await run_dag(dag)
    assert result.states["drop"] == "failed"
    assert result.run.state == "failed"


async def test_clearing_work_clears_its_setup_and_teardown() -> None:
    counts: dict[str, int] = {}

    def count(name: str) -> Any:
        def fn() -> None:
            counts[name] = counts.get(name, 0) + 1

        return fn

    with DAG("st_clear", schedule=None) as dag:
        create = op("create", count("create")).as_setup()
        work = op("work", count("work"))
        delete = op("delete", count("delete")).as_teardown(setups=create)
        create >> work >> delete
        op("other", count("other"))
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("st_clear")
        await engine.wait_for_run("st_clear", run.run_id, timeout=10)
        cleared = await engine.clear_task_instances("st_clear", run.run_id, ["work"])
        done = await engine.wait_for_run("st_clear", run.run_id, timeout=10)
    assert sorted(cleared) == ["create", "delete", "work"]
    assert counts == {"create": 2, "work": 2, "delete": 2, "other": 1}
    assert done.state == "success"


async def test_all_setups_skipped_skips_the_teardown() -> None:
    def skip() -> None:
        raise AsyncflowSkipException("nothing to set up")

    with DAG("st_skip", schedule=None) as dag:
        create = op("create", skip).as_setup()
        delete = op("delete").as_teardown(setups=create)
        create >> op("work", trigger_rule="all_done") >> delete
    result = await run_dag(dag)
    assert result.states == {"create": "skipped", "work": "success", "delete": "skipped"}
    assert result.run.state == "success"


def test_a_task_cannot_be_setup_and_teardown() -> None:
    with DAG("st_both", schedule=None):
        task_ = op("x").as_setup()
        with pytest.raises(DagDefinitionError, match="both a setup and a teardown"):
            task_.as_teardown()


async def test_mapped_teardown_style_work_with_setup() -> None:
    with DAG("st_mapped", schedule=None) as dag:

        @task
        def each(x: int) -> int:
            if x == 1:
                raise ValueError("one fails")
            return x

        create = op("create").as_setup()
        delete = op("delete").as_teardown(setups=create)
        create >> each.expand(x=[0, 1]) >> delete
    result = await run_dag(dag)
    assert result.tis["delete"].state == "success"
    assert result.run.state == "failed"
