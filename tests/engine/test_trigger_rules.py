"""Trigger rules end to end: upstream_failed and skip propagation, rules that fire early, and the
join after a branch."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncflow import DAG, AsyncflowSkipException
from asyncflow.operators import BranchPythonOperator, EmptyOperator, PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


def ok(**kwargs: Any) -> PythonOperator:
    return PythonOperator(python_callable=lambda: "ok", **kwargs)


def boom() -> None:
    raise ValueError("boom")


def bad(**kwargs: Any) -> PythonOperator:
    return PythonOperator(python_callable=boom, **kwargs)


def skip() -> None:
    raise AsyncflowSkipException("nothing to do")


async def test_a_failure_makes_all_success_downstream_upstream_failed() -> None:
    with DAG("uf_chain", schedule=None) as dag:
        bad(task_id="a") >> ok(task_id="b") >> ok(task_id="c")
    result = await run_dag(dag)
    assert result.states == {"a": "failed", "b": "upstream_failed", "c": "upstream_failed"}
    assert result.tis["b"].try_number == 0  # never started
    assert result.run.state == "failed"


async def test_a_skip_propagates_through_all_success() -> None:
    with DAG("skip_chain", schedule=None) as dag:
        PythonOperator(task_id="a", python_callable=skip) >> ok(task_id="b") >> ok(task_id="c")
    result = await run_dag(dag)
    assert result.states == {"a": "skipped", "b": "skipped", "c": "skipped"}
    assert result.run.state == "success"  # skipped leaves do not fail a run


async def test_one_failed_runs_on_a_failure_and_is_skipped_without_one() -> None:
    with DAG("one_failed", schedule=None) as dag:
        a, b = ok(task_id="a"), bad(task_id="b")
        alert = ok(task_id="alert", trigger_rule="one_failed")
        quiet = ok(task_id="quiet", trigger_rule="one_failed")
        [a, b] >> alert
        a >> quiet
    result = await run_dag(dag)
    assert result.states["alert"] == "success"
    assert result.states["quiet"] == "skipped"


async def test_all_done_runs_after_failures_and_decides_the_run_as_a_leaf() -> None:
    with DAG("all_done", schedule=None) as dag:
        [ok(task_id="a"), bad(task_id="b")] >> ok(task_id="cleanup", trigger_rule="all_done")
    result = await run_dag(dag)
    assert result.states == {"a": "success", "b": "failed", "cleanup": "success"}
    # as in Airflow, a run's state follows its leaves
    assert result.run.state == "success"


async def test_none_failed_min_one_success_joins_after_a_branch() -> None:
    with DAG("branch_join", schedule=None) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")
        left, right = ok(task_id="left"), ok(task_id="right")
        join = ok(task_id="join", trigger_rule="none_failed_min_one_success")
        naive_join = ok(task_id="naive_join")  # all_success: skipped with the branch not taken
        branch >> [left, right]
        [left, right] >> join
        [left, right] >> naive_join
    result = await run_dag(dag)
    assert result.states == {
        "branch": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
        "naive_join": "skipped",
    }
    assert result.xcoms["branch"] == "left"
    assert result.run.state == "success"


async def test_always_runs_without_waiting_for_its_upstream() -> None:
    released = anyio.Event()

    async def wait_for_release() -> str:
        await released.wait()
        return "released"

    async def release() -> None:
        released.set()

    with DAG("always", schedule=None) as dag:
        slow = PythonOperator(task_id="slow", python_callable=wait_for_release)
        slow >> PythonOperator(task_id="eager", python_callable=release, trigger_rule="always")
    # if `eager` waited for `slow`, neither would ever finish
    result = await run_dag(dag, timeout=5)
    assert result.states == {"slow": "success", "eager": "success"}


async def test_one_success_fires_before_the_rest_of_its_upstream_is_done() -> None:
    released = anyio.Event()

    async def wait_for_release() -> None:
        await released.wait()

    async def release() -> None:
        released.set()

    with DAG("one_success_early", schedule=None) as dag:
        fast, slow = (
            ok(task_id="fast"),
            PythonOperator(task_id="slow", python_callable=wait_for_release),
        )
        [fast, slow] >> PythonOperator(
            task_id="first", python_callable=release, trigger_rule="one_success"
        )
    result = await run_dag(dag, timeout=5)
    assert result.states == {"fast": "success", "slow": "success", "first": "success"}


async def test_all_failed_and_all_skipped() -> None:
    with DAG("all_failed", schedule=None) as dag:
        b1, b2 = bad(task_id="b1"), bad(task_id="b2")
        s1 = PythonOperator(task_id="s1", python_callable=skip)
        [b1, b2] >> ok(task_id="on_all_failed", trigger_rule="all_failed")
        [b1, s1] >> ok(task_id="mixed", trigger_rule="all_failed")
        s1 >> ok(task_id="on_all_skipped", trigger_rule="all_skipped")
    result = await run_dag(dag)
    assert result.states["on_all_failed"] == "success"
    assert result.states["mixed"] == "skipped"
    assert result.states["on_all_skipped"] == "success"


async def test_none_skipped_and_none_failed() -> None:
    with DAG("none_rules", schedule=None) as dag:
        a, s = ok(task_id="a"), PythonOperator(task_id="s", python_callable=skip)
        b = bad(task_id="b")
        [a, s] >> ok(task_id="none_skipped", trigger_rule="none_skipped")
        [a, b] >> ok(task_id="none_skipped_failed", trigger_rule="none_skipped")
        [a, s] >> ok(task_id="none_failed", trigger_rule="none_failed")
        [a, b] >> ok(task_id="none_failed_bad", trigger_rule="none_failed")
    result = await run_dag(dag)
    assert result.states["none_skipped"] == "skipped"
    assert result.states["none_skipped_failed"] == "success"
    assert result.states["none_failed"] == "success"
    assert result.states["none_failed_bad"] == "upstream_failed"


async def test_upstream_failed_reaches_past_an_empty_operator() -> None:
    with DAG("uf_empty", schedule=None) as dag:
        bad(task_id="a") >> EmptyOperator(task_id="gate") >> ok(task_id="c")
    result = await run_dag(dag)
    assert result.states == {"a": "failed", "gate": "upstream_failed", "c": "upstream_failed"}
