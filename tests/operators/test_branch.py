"""`BranchPythonOperator` follows the task_ids its callable returns and skips the other direct
downstream; `ShortCircuitOperator` skips downstream on a falsy value, in both of its modes."""

from __future__ import annotations

from typing import Any

import pytest

from asyncflow import DAG
from asyncflow.operators import (
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


def ok(task_id: str, **kwargs: Any) -> PythonOperator:
    return PythonOperator(task_id=task_id, python_callable=lambda: task_id, **kwargs)


def branching_dag(dag_id: str, choice: object) -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: choice)
        a, b, c = ok("a"), ok("b"), ok("c")
        branch >> [a, b, c]
        b >> ok("after_b")
    return dag


async def test_branch_follows_one_task_id_and_skips_the_others_and_their_downstream() -> None:
    result = await run_dag(branching_dag("branch_one", "a"))
    assert result.states == {
        "branch": "success",
        "a": "success",
        "b": "skipped",
        "c": "skipped",
        "after_b": "skipped",
    }


async def test_branch_may_follow_several_task_ids() -> None:
    result = await run_dag(branching_dag("branch_many", ["a", "b"]))
    assert result.states["a"] == result.states["b"] == result.states["after_b"] == "success"
    assert result.states["c"] == "skipped"


async def test_branch_returning_none_skips_every_branch() -> None:
    result = await run_dag(branching_dag("branch_none", None))
    assert {result.states[t] for t in ("a", "b", "c", "after_b")} == {"skipped"}


async def test_branch_returning_an_unknown_task_id_fails_and_names_it() -> None:
    result = await run_dag(branching_dag("branch_unknown", "zzz"))
    assert result.states["branch"] == "failed"
    assert "zzz" in (result.tis["branch"].error or "")
    assert result.states["a"] == "upstream_failed"


def short_circuit_dag(dag_id: str, condition: object, *, ignore: bool) -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        check = ShortCircuitOperator(
            task_id="check",
            python_callable=lambda: condition,
            ignore_downstream_trigger_rules=ignore,
        )
        direct = ok("direct")
        cleanup = ok("cleanup", trigger_rule="all_done")
        check >> direct >> cleanup
        check >> EmptyOperator(task_id="empty")
    return dag


async def test_short_circuit_truthy_lets_everything_run() -> None:
    result = await run_dag(short_circuit_dag("sc_true", [1], ignore=True))
    assert set(result.states.values()) == {"success"}
    assert result.xcoms["check"] == [1]


@pytest.mark.parametrize("falsy", [False, 0, "", None, []])
async def test_short_circuit_falsy_skips_every_task_below_by_default(falsy: object) -> None:
    result = await run_dag(short_circuit_dag("sc_all", falsy, ignore=True))
    assert result.states == {
        "check": "success",
        "direct": "skipped",
        "cleanup": "skipped",  # all_done is ignored: everything below is skipped
        "empty": "skipped",
    }


async def test_short_circuit_respecting_trigger_rules_skips_only_the_direct_downstream() -> None:
    result = await run_dag(short_circuit_dag("sc_direct", False, ignore=False))
    assert result.states == {
        "check": "success",
        "direct": "skipped",
        "cleanup": "success",  # all_done: runs once `direct` is done (skipped)
        "empty": "skipped",
    }


def test_short_circuit_ignores_downstream_trigger_rules_by_default() -> None:
    with DAG("sc_default", schedule=None):
        check = ShortCircuitOperator(task_id="check", python_callable=lambda: True)
    assert check.ignore_downstream_trigger_rules is True


def join_dag(dag_id: str, make_branch: Any) -> DAG:
    """`branch >> [task1, join]; task1 >> join` plus a branch that is not followed."""
    with DAG(dag_id, schedule=None) as dag:
        branch = make_branch()
        task1, join, other = ok("task1"), ok("join"), ok("other")
        branch >> [task1, join, other]
        task1 >> join
    return dag


async def test_a_task_downstream_of_the_followed_branch_is_not_skipped() -> None:
    """Airflow's rule: `join` is a direct downstream of the branch but also downstream of the
    followed `task1`, so it runs; `other` is skipped."""
    dag = join_dag(
        "branch_join",
        lambda: BranchPythonOperator(task_id="branch", python_callable=lambda: "task1"),
    )
    result = await run_dag(dag)
    assert result.states == {
        "branch": "success",
        "task1": "success",
        "join": "success",
        "other": "skipped",
    }


async def test_task_branch_follows_the_same_rule() -> None:
    from asyncflow import task

    @task.branch
    def branch() -> str:
        return "task1"

    dag = join_dag("taskflow_branch_join", lambda: branch().operator)
    result = await run_dag(dag)
    assert result.states["join"] == "success"
    assert result.states["other"] == "skipped"


async def test_following_the_join_itself_skips_the_branch_before_it() -> None:
    dag = join_dag(
        "branch_to_join",
        lambda: BranchPythonOperator(task_id="branch", python_callable=lambda: "join"),
    )
    result = await run_dag(dag)
    # task1 is skipped, so join (all_success) is skipped too: Airflow's result
    assert result.states == {
        "branch": "success",
        "task1": "skipped",
        "join": "skipped",
        "other": "skipped",
    }


async def test_branch_returning_non_strings_fails_and_says_what_to_return() -> None:
    result = await run_dag(branching_dag("branch_ints", [1, 2]))
    assert result.states["branch"] == "failed"
    assert "task_id" in (result.tis["branch"].error or "")
