"""Callbacks: on_success / on_failure / on_retry on tasks and on_success / on_failure on the DAG
get the context; an error in a callback is logged and changes nothing."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import pytest

from asyncflow import DAG, Engine, FakeClock
from asyncflow.engine import runner
from asyncflow.operators import PythonOperator
from tests.engine.support import finish, outcome, task_reached, wait_for_event

pytestmark = pytest.mark.anyio


class Calls:
    """Async callbacks that record what they saw and let a test wait for them."""

    def __init__(self) -> None:
        self.seen: dict[str, dict[str, Any]] = {}
        self._events: dict[str, anyio.Event] = {}

    def _event(self, name: str) -> anyio.Event:
        return self._events.setdefault(name, anyio.Event())

    def callback(self, name: str) -> Any:
        async def record(context: dict[str, Any]) -> None:
            self.seen[name] = context
            self._event(name).set()

        return record

    async def wait(self, *names: str) -> None:
        with anyio.fail_after(5):
            for name in names:
                await self._event(name).wait()


def boom() -> None:
    raise ValueError("boom")


async def test_task_success_and_failure_callbacks_get_the_context() -> None:
    calls = Calls()
    with DAG("task_callbacks", schedule=None) as dag:
        PythonOperator(
            task_id="good",
            python_callable=lambda: 1,
            on_success_callback=calls.callback("good_success"),
            on_failure_callback=calls.callback("good_failure"),
        )
        PythonOperator(
            task_id="bad",
            python_callable=boom,
            on_success_callback=calls.callback("bad_success"),
            on_failure_callback=[calls.callback("bad_failure"), calls.callback("bad_failure_2")],
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "task_callbacks")
        await calls.wait("good_success", "bad_failure", "bad_failure_2")
    assert set(calls.seen) == {"good_success", "bad_failure", "bad_failure_2"}
    good, bad = calls.seen["good_success"], calls.seen["bad_failure"]
    assert good["ti"].task_id == "good" and good["task"].task_id == "good"
    assert good["dag_run"].run_id == result.run.run_id
    assert bad["ti"].task_id == "bad"
    assert "ValueError: boom" in str(bad["exception"])


async def test_retry_callback_runs_on_each_failed_attempt_that_will_be_retried() -> None:
    calls = Calls()
    clock = FakeClock()
    with DAG("retry_callback", schedule=None) as dag:
        PythonOperator(
            task_id="flaky",
            python_callable=boom,
            retries=1,
            retry_delay=timedelta(minutes=1),
            on_retry_callback=calls.callback("retry"),
            on_failure_callback=calls.callback("failure"),
        )
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        async with engine.subscribe() as events:
            run = await engine.trigger_dag("retry_callback")
            await wait_for_event(events, task_reached("flaky", "up_for_retry"))
            await calls.wait("retry")
            assert "failure" not in calls.seen
            assert calls.seen["retry"]["ti"].try_number == 1
            clock.advance(timedelta(minutes=1))
        await outcome(engine, "retry_callback", run.run_id)
        await calls.wait("failure")
    assert calls.seen["failure"]["ti"].try_number == 2


async def test_dag_callbacks_on_success_and_on_failure() -> None:
    calls = Calls()
    with DAG(
        "dag_ok",
        schedule=None,
        on_success_callback=calls.callback("ok_success"),
        on_failure_callback=calls.callback("ok_failure"),
    ) as ok_dag:
        PythonOperator(task_id="t", python_callable=lambda: 1)
    with DAG(
        "dag_bad",
        schedule=None,
        on_success_callback=calls.callback("bad_success"),
        on_failure_callback=calls.callback("bad_failure"),
    ) as bad_dag:
        PythonOperator(task_id="t", python_callable=boom)
    async with Engine(dags=[ok_dag, bad_dag], database=":memory:") as engine:
        ok = await finish(engine, "dag_ok")
        bad = await finish(engine, "dag_bad")
        await calls.wait("ok_success", "bad_failure")
    assert set(calls.seen) == {"ok_success", "bad_failure"}
    assert calls.seen["ok_success"]["dag_run"].run_id == ok.run.run_id
    assert calls.seen["ok_success"]["dag"] is ok_dag
    assert calls.seen["bad_failure"]["dag_run"].run_id == bad.run.run_id
    assert calls.seen["bad_failure"]["reason"] == "task_failure"


async def test_sync_callbacks_are_called_too() -> None:
    called = []
    done = anyio.Event()

    async def after(context: dict[str, Any]) -> None:
        done.set()

    with DAG("sync_callback", schedule=None) as dag:
        PythonOperator(
            task_id="t",
            python_callable=lambda: 1,
            on_success_callback=[lambda context: called.append(context["ti"].task_id), after],
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        await finish(engine, "sync_callback")
        with anyio.fail_after(5):
            await done.wait()
    assert called == ["t"]


class RecordingLog:
    """Stands in for the runner's structlog logger (a cached structlog logger would escape
    `structlog.testing.capture_logs` once another test configured caching)."""

    def __init__(self) -> None:
        self.errors: list[tuple[str, dict[str, Any]]] = []
        self.logged = anyio.Event()

    def error(self, event: str, **fields: Any) -> None:
        self.errors.append((event, fields))
        self.logged.set()

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


async def test_an_error_in_a_callback_is_logged_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = RecordingLog()
    monkeypatch.setattr(runner, "log", log)
    reached = anyio.Event()

    def broken(context: dict[str, Any]) -> None:
        raise RuntimeError("callback broke")

    async def next_one(context: dict[str, Any]) -> None:
        reached.set()

    with DAG("broken_callback", schedule=None) as dag:
        PythonOperator(
            task_id="t", python_callable=lambda: 1, on_success_callback=[broken, next_one]
        )
        PythonOperator(task_id="u", python_callable=boom, on_failure_callback=broken)
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "broken_callback")
        with anyio.fail_after(5):
            await reached.wait()  # the callback after the broken one still ran
        again = await outcome(engine, "broken_callback", result.run.run_id)
    assert again.states == {"t": "success", "u": "failed"}
    assert again.tis["u"].error == "ValueError: boom"
    assert again.run.state == result.run.state == "failed"
    broken_t = [f for _, f in log.errors if "broken_callback.t" in f.get("where", "")]
    assert broken_t, log.errors
    assert "RuntimeError: callback broke" in broken_t[0]["error"]
    assert "Traceback" in broken_t[0]["exception"]


async def test_an_error_in_a_dag_callback_is_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    log = RecordingLog()
    monkeypatch.setattr(runner, "log", log)
    reached = anyio.Event()

    def broken(context: dict[str, Any]) -> None:
        raise RuntimeError("dag callback broke")

    async def next_one(context: dict[str, Any]) -> None:
        reached.set()

    with DAG("broken_dag_callback", schedule=None, on_success_callback=broken) as dag:
        PythonOperator(task_id="t", python_callable=lambda: 1, on_success_callback=next_one)
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "broken_dag_callback")
        with anyio.fail_after(5):
            await reached.wait()
            await log.logged.wait()  # the DAG callback runs after the run is committed
        again = await outcome(engine, "broken_dag_callback", result.run.run_id)
    assert again.run.state == "success"
    assert "dag callback broke" in log.errors[0][1]["error"]
