"""Bad task code ends its task failed (or up_for_retry) with the reason in its record, and the
engine keeps running every other task of the run."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import finish, run_dag, wait_for_event

pytestmark = pytest.mark.anyio


def raises() -> None:
    raise KeyError("missing-key")


def unserializable() -> object:
    return object()


async def hang() -> None:
    await anyio.sleep(30)


def bad_tasks(**kwargs: object) -> list[PythonOperator | BashOperator]:
    return [
        PythonOperator(task_id="raises", python_callable=raises, **kwargs),  # type: ignore[arg-type]
        BashOperator(task_id="exits", bash_command="echo oops; exit 7", **kwargs),  # type: ignore[arg-type]
        BashOperator(task_id="killed", bash_command="kill -9 $$", **kwargs),  # type: ignore[arg-type]
        PythonOperator(task_id="times_out", python_callable=hang, execution_timeout=0.2, **kwargs),  # type: ignore[arg-type]
        PythonOperator(task_id="unserializable", python_callable=unserializable, **kwargs),  # type: ignore[arg-type]
    ]


EXPECTED_ERRORS = {
    "raises": "KeyError: 'missing-key'",
    "exits": "exit code 7",
    "killed": "SIGKILL",
    "times_out": "execution_timeout",
    "unserializable": "builtins.object (<object object at",
}


async def test_each_kind_of_bad_task_fails_with_its_reason_and_the_rest_runs_on() -> None:
    with DAG("bad_input", schedule=None) as dag:
        bad = bad_tasks()
        good = [
            PythonOperator(task_id=f"good_{n}", python_callable=lambda: "fine") for n in range(3)
        ]
        after_good = PythonOperator(task_id="after_good", python_callable=lambda: "after")
        report = PythonOperator(
            task_id="report", python_callable=lambda: "reported", trigger_rule="all_done"
        )
        good >> after_good
        [*bad, after_good] >> report
    with anyio.fail_after(10):
        result = await run_dag(dag)
    for task_id, reason in EXPECTED_ERRORS.items():
        ti = result.tis[task_id]
        assert ti.state == "failed", task_id
        assert reason in (ti.error or ""), (task_id, ti.error)
        assert ti.end_date is not None, task_id
    assert {result.states[f"good_{n}"] for n in range(3)} == {"success"}
    assert result.states["after_good"] == "success"
    assert result.states["report"] == "success"
    assert result.xcoms["report"] == "reported"
    assert result.xcoms["unserializable"] is None  # nothing half-stored


async def test_a_bad_attempt_with_retries_left_is_up_for_retry_with_its_reason() -> None:
    clock = FakeClock()
    with DAG("bad_retry", schedule=None) as dag:
        bad_tasks(retries=1, retry_delay=timedelta(hours=1))
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("bad_retry")
            waiting = set(EXPECTED_ERRORS)
            while waiting:
                event = await wait_for_event(
                    events, lambda e: getattr(e, "new_state", None) == "up_for_retry"
                )
                waiting.discard(event.task_id)  # type: ignore[union-attr]
        tis = {ti.task_id: ti for ti in await engine.get_task_instances("bad_retry", run.run_id)}
        for task_id, reason in EXPECTED_ERRORS.items():
            assert tis[task_id].state == "up_for_retry", task_id
            assert reason in (tis[task_id].error or ""), (task_id, tis[task_id].error)
            assert tis[task_id].next_try_at == clock.now() + timedelta(hours=1)


async def test_a_failing_task_does_not_disturb_a_concurrent_run() -> None:
    with DAG("bad_neighbour", schedule=None) as bad_dag:
        PythonOperator(task_id="raises", python_callable=raises)
    with DAG("good_neighbour", schedule=None) as good_dag:
        PythonOperator(task_id="fine", python_callable=lambda: "fine")
    async with Engine(dags=[bad_dag, good_dag], database=":memory:") as engine:
        bad = await finish(engine, "bad_neighbour")
        good = await finish(engine, "good_neighbour")
    assert bad.run.state == "failed"
    assert good.run.state == "success"
