"""retry_policy: after a failed try the exception decides: retry after the rule's own delay, fail
at once, or the task's ordinary retries; never more tries than `retries` allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from asyncflow import (
    DAG,
    DagDefinitionError,
    Engine,
    ExceptionRetryPolicy,
    FakeClock,
    RetryAction,
    RetryDecision,
    RetryPolicy,
    RetryRule,
    task,
)
from asyncflow.operators import PythonOperator
from tests.engine.support import finish, task_reached, wait_for_event

pytestmark = pytest.mark.anyio
NOW = datetime(2024, 1, 1, tzinfo=UTC)


class AuthError(Exception):
    pass


POLICY = ExceptionRetryPolicy(
    rules=[
        RetryRule(exception=AuthError, action=RetryAction.FAIL, reason="bad key"),
        RetryRule(exception=[TimeoutError, ConnectionError], retry_delay=timedelta(seconds=30)),
        RetryRule(exception=f"{__name__}.AuthError", action=RetryAction.RETRY),  # never reached
    ]
)


def raising(*errors: BaseException) -> Any:
    """A callable raising `errors` one try after the other, then returning 'done'."""
    tries: list[int] = []

    def call() -> str:
        tries.append(1)
        if len(tries) <= len(errors):
            raise errors[len(tries) - 1]
        return "done"

    call.tries = tries  # type: ignore[attr-defined]
    return call


async def test_a_fail_rule_ends_the_retries_at_once() -> None:
    call = raising(AuthError("expired"))
    with DAG("auth", schedule=None) as dag:
        PythonOperator(task_id="t", python_callable=call, retries=5, retry_policy=POLICY)
    async with Engine(dags=[dag], database=":memory:", clock=FakeClock(NOW)) as engine:
        result = await finish(engine, "auth")
    assert result.states == {"t": "failed"}
    assert len(call.tries) == 1
    assert result.tis["t"].error == "AuthError: expired (retry_policy: bad key)"


async def test_a_retry_rule_waits_its_own_delay() -> None:
    call = raising(ConnectionError("reset"))
    clock = FakeClock(NOW)
    with DAG("flaky", schedule=None) as dag:
        PythonOperator(task_id="t", python_callable=call, retries=2, retry_policy=POLICY,
                       retry_delay=timedelta(hours=1))  # fmt: skip
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        events = engine.subscribe()
        run = await engine.trigger_dag("flaky")
        await wait_for_event(events, task_reached("t", "up_for_retry"))
        (ti,) = await engine.get_task_instances("flaky", run.run_id)
        assert ti.next_try_at == NOW + timedelta(seconds=30)  # not the task's hour
        clock.advance(timedelta(seconds=31))
        finished = await engine.wait_for_run("flaky", run.run_id, timeout=5)
    assert finished.state.value == "success" and len(call.tries) == 2


async def test_unmatched_errors_take_the_ordinary_retries_and_retry_never_adds_tries() -> None:
    other = raising(ValueError("x"), ValueError("y"))
    timeouts = raising(TimeoutError("1"), TimeoutError("2"), TimeoutError("3"))
    with DAG("ordinary", schedule=None) as dag:
        PythonOperator(task_id="other", python_callable=other, retries=1, retry_delay=0,
                       retry_policy=POLICY)  # fmt: skip
        PythonOperator(task_id="timeouts", python_callable=timeouts, retries=1,
                       retry_policy=POLICY)  # fmt: skip
    clock = FakeClock(NOW)
    async with Engine(dags=[dag], database=":memory:", clock=clock) as engine:
        events = engine.subscribe()
        run = await engine.trigger_dag("ordinary")
        await wait_for_event(events, task_reached("timeouts", "up_for_retry"))
        clock.advance(timedelta(seconds=31))
        await engine.wait_for_run("ordinary", run.run_id, timeout=5)
        states = {t.task_id: t.state.value for t in await engine.get_task_instances(
            "ordinary", run.run_id)}  # fmt: skip
    assert states == {"other": "failed", "timeouts": "failed"}
    assert len(other.tries) == 2 and len(timeouts.tries) == 2  # retries=1: two tries each


class Counting(RetryPolicy):
    def __init__(self) -> None:
        self.calls: list[tuple[str, int, int]] = []

    def evaluate(self, exception: BaseException, try_number: int, max_tries: int,
                 context: Any = None) -> RetryDecision:  # fmt: skip
        self.calls.append((type(exception).__name__, try_number, max_tries))
        if context is None or context["ti"].task_id != "t":
            raise RuntimeError("policy bug")
        return RetryDecision.fail("enough") if try_number >= 2 else RetryDecision.retry()


async def test_a_custom_policy_sees_the_try_and_a_raising_one_changes_nothing() -> None:
    policy = Counting()
    with DAG("custom", schedule=None) as dag:

        @task(retries=5, retry_delay=0, retry_policy=policy)
        def t() -> None:
            raise OSError("disk")

        PythonOperator(task_id="buggy", python_callable=raising(ValueError("v")), retries=1,
                       retry_delay=0, retry_policy=policy)  # fmt: skip
        t()
    async with Engine(dags=[dag], database=":memory:", clock=FakeClock(NOW)) as engine:
        result = await finish(engine, "custom")
    assert result.states == {"t": "failed", "buggy": "success"}
    assert sorted(policy.calls) == [("OSError", 1, 5), ("OSError", 2, 5), ("ValueError", 1, 1)]


def test_bad_rules_and_policies_are_load_errors() -> None:
    with pytest.raises(ValueError, match="not a dotted path"):
        RetryRule(exception="HTTPError")
    with pytest.raises(ValueError, match="not an exception class"):
        RetryRule(exception=int)  # type: ignore[arg-type]
    with pytest.warns(UserWarning, match="cannot be imported"):
        rule = RetryRule(exception="no_such_lib.HTTPError")
    assert not rule.matches(ValueError())
    with pytest.raises(DagDefinitionError, match="is not a RetryPolicy"), DAG("bad", schedule=None):
        PythonOperator(task_id="t", python_callable=print, retry_policy="fail")  # type: ignore[arg-type]
