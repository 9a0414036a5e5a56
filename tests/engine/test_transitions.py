"""Every transition the engine performs is in the state table: watch a varied run on the bus."""

from __future__ import annotations

from typing import Any

import pytest

from asyncflow import (
    DAG,
    AsyncflowSkipException,
    DagRunStateChanged,
    Engine,
    EventsMissed,
    TaskStateChanged,
)
from asyncflow.operators import (
    BashOperator,
    BranchPythonOperator,
    EmptyOperator,
    PythonOperator,
    ShortCircuitOperator,
)
from asyncflow.states import RUN_TRANSITIONS, TASK_TRANSITIONS
from tests.engine.support import finish, outcome

pytestmark = pytest.mark.anyio


def boom() -> None:
    raise ValueError("boom")


def skip() -> None:
    raise AsyncflowSkipException("skip")


def flaky(ti: Any) -> str:
    if ti.try_number == 1:
        raise RuntimeError("first try fails")
    return "ok"


def varied_dag() -> DAG:
    with DAG("varied", schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        ok = PythonOperator(task_id="ok", python_callable=lambda: 1)
        retried = PythonOperator(task_id="retried", python_callable=flaky, retries=1, retry_delay=0)
        failed = PythonOperator(task_id="failed", python_callable=boom)
        doomed = PythonOperator(task_id="doomed", python_callable=lambda: 1)
        doomed_empty = EmptyOperator(task_id="doomed_empty")
        cleanup = PythonOperator(
            task_id="cleanup", python_callable=lambda: 1, trigger_rule="all_done"
        )
        alert = PythonOperator(
            task_id="alert", python_callable=lambda: 1, trigger_rule="one_failed"
        )
        always = EmptyOperator(task_id="always", trigger_rule="always")
        skipper = PythonOperator(task_id="skipper", python_callable=skip)
        after_skip = PythonOperator(task_id="after_skip", python_callable=lambda: 1)
        bash_skip = BashOperator(task_id="bash_skip", bash_command="exit 99")
        branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")
        left, right = EmptyOperator(task_id="left"), EmptyOperator(task_id="right")
        join = EmptyOperator(task_id="join", trigger_rule="none_failed_min_one_success")
        short = ShortCircuitOperator(task_id="short", python_callable=lambda: False)
        shorted = PythonOperator(task_id="shorted", python_callable=lambda: 1)

        start >> [ok, retried, failed, skipper, branch, short, bash_skip]
        failed >> doomed >> doomed_empty
        [ok, failed] >> cleanup
        [ok, failed] >> alert
        failed >> always
        skipper >> after_skip
        branch >> [left, right] >> join
        short >> shorted
    return dag


def assert_in_table(events: list[Any]) -> None:
    for event in events:
        assert not isinstance(event, EventsMissed)
        if isinstance(event, TaskStateChanged):
            assert event.new_state in TASK_TRANSITIONS[event.old_state], event
        else:
            assert isinstance(event, DagRunStateChanged)
            if event.old_state is None:
                assert event.new_state == "queued", event  # creation
            else:
                assert event.new_state in RUN_TRANSITIONS[event.old_state], event


def assert_chained(events: list[Any]) -> None:
    """Each change starts from the state the previous one ended in."""
    last: dict[tuple[str, str], str | None] = {}
    for event in events:
        key = (event.run_id, getattr(event, "task_id", ""))
        first = "none" if isinstance(event, TaskStateChanged) else None
        assert last.get(key, first) == event.old_state, event
        last[key] = event.new_state


async def test_every_transition_of_a_varied_run_is_in_the_table() -> None:
    dag = varied_dag()
    async with Engine(dags=[dag], database=":memory:") as engine:
        events = engine.subscribe()
        result = await finish(engine, "varied")
        # clearing a finished run reopens it: success -> none, run success/failed -> queued
        await engine.clear_task_instances("varied", result.run.run_id, ["failed"], downstream=True)
        again = await outcome(engine, "varied", result.run.run_id)
        events.close()
        received = [event async for event in events]
    assert result.states == {
        "start": "success",
        "ok": "success",
        "retried": "success",
        "failed": "failed",
        "doomed": "upstream_failed",
        "doomed_empty": "upstream_failed",
        "cleanup": "success",
        "alert": "success",
        "always": "success",
        "skipper": "skipped",
        "after_skip": "skipped",
        "bash_skip": "skipped",
        "branch": "success",
        "left": "success",
        "right": "skipped",
        "join": "success",
        "short": "success",
        "shorted": "skipped",
    }
    assert result.tis["retried"].try_number == 2
    assert again.states["failed"] == "failed" and again.tis["failed"].try_number == 2
    assert_in_table(received)
    assert_chained(received)
    seen = {(e.old_state, e.new_state) for e in received if isinstance(e, TaskStateChanged)}
    # the run went through the paths this test is about
    assert {
        ("running", "up_for_retry"),
        ("up_for_retry", "scheduled"),
        ("none", "upstream_failed"),
        ("none", "skipped"),
        ("running", "skipped"),
        ("scheduled", "success"),
        ("failed", "none"),
    } <= seen
    run_changes = [
        (e.old_state, e.new_state) for e in received if isinstance(e, DagRunStateChanged)
    ]
    assert run_changes[:2] == [(None, "queued"), ("queued", "running")]
    assert ("failed", "queued") in run_changes
