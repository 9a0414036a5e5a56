"""`pre_execute=` / `post_execute=` callables, overridden `pre_execute` / `post_execute` methods
and `on_execute_callback`: each runs with the context, in Airflow's order around execute."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from asyncflow import DAG, Asset, BaseOperator, DagDefinitionError, Engine
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import finish

pytestmark = pytest.mark.anyio
START = datetime(2024, 1, 1, tzinfo=UTC)


async def test_hooks_run_around_execute_in_airflows_order() -> None:
    calls: list[Any] = []

    def pre(context: dict[str, Any]) -> None:
        calls.append(("pre", context["ti"].task_id))

    async def post(context: dict[str, Any], result: Any) -> None:
        calls.append(("post", result))

    def on_execute(context: dict[str, Any]) -> None:
        calls.append(("on_execute", context["task"].task_id))

    def work() -> int:
        calls.append(("execute", None))
        return 42

    with DAG("hooks", schedule=None) as dag:
        PythonOperator(task_id="t", python_callable=work, pre_execute=pre, post_execute=post,
                       on_execute_callback=on_execute)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "hooks")
    assert result.states == {"t": "success"}
    assert result.xcoms["t"] == 42
    assert calls == [("pre", "t"), ("on_execute", "t"), ("execute", None), ("post", 42)]


class Recording(BaseOperator):
    calls: list[str] = []

    def pre_execute(self, context: dict[str, Any]) -> None:
        self.calls.append(f"method pre {context['ti'].task_id}")

    def execute(self, context: dict[str, Any]) -> str:
        self.calls.append("execute")
        return "done"

    def post_execute(self, context: dict[str, Any], result: Any = None) -> None:
        self.calls.append(f"method post {result}")


async def test_overridden_methods_run_after_the_callables() -> None:
    Recording.calls = []
    with DAG("methods", schedule=None) as dag:
        Recording(
            task_id="t",
            pre_execute=lambda c: Recording.calls.append("callable pre"),
            post_execute=lambda c, r: Recording.calls.append(f"callable post {r}"),
        )
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "methods")
    assert result.states == {"t": "success"}
    assert Recording.calls == ["callable pre", "method pre t", "execute", "callable post done",
                               "method post done"]  # fmt: skip


async def test_a_raising_hook_fails_the_attempt_and_a_raising_callback_does_not() -> None:
    ran: list[str] = []

    def refuse(context: dict[str, Any]) -> None:
        raise ValueError("not today")

    def broken_callback(context: dict[str, Any]) -> None:
        raise RuntimeError("callback bug")

    with DAG("raising", schedule=None) as dag:
        PythonOperator(task_id="pre_fails", python_callable=lambda: ran.append("pre_fails"),
                       pre_execute=refuse)  # fmt: skip
        PythonOperator(task_id="post_fails", python_callable=lambda: ran.append("post_fails"),
                       post_execute=lambda c, r: refuse(c))  # fmt: skip
        PythonOperator(task_id="callback_fails", python_callable=lambda: ran.append("cb"),
                       on_execute_callback=broken_callback)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "raising")
    assert result.states == {"pre_fails": "failed", "post_fails": "failed",
                             "callback_fails": "success"}  # fmt: skip
    assert sorted(ran) == ["cb", "post_fails"]  # execute never ran behind a failing pre hook
    assert "ValueError: not today" in (result.tis["pre_fails"].error or "")


async def test_post_execute_sets_the_extra_of_a_classic_operators_asset_event() -> None:
    asset = Asset(uri="s3://output/1.txt", name="out")

    def annotate(context: dict[str, Any], result: Any) -> None:
        context["outlet_events"][asset].extra = {"hi": "bye", "result": result}

    with DAG("classic", schedule=None, start_date=START) as dag:
        BashOperator(task_id="t", bash_command="echo out", outlets=[asset],
                     post_execute=annotate)  # fmt: skip
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "classic")
        (event,) = await engine.store.get_asset_events()
    assert result.states == {"t": "success"}
    assert event.extra == '{"hi": "bye", "result": "out"}'


def test_a_hook_that_is_not_callable_is_refused_at_load() -> None:
    refused = pytest.raises(DagDefinitionError, match=r"post_execute='nope' is not a callable")
    with refused as info, DAG("bad_hook", schedule=None):
        PythonOperator(task_id="t", python_callable=print, post_execute="nope")
    assert info.value.task_id == "t" and info.value.dag_id == "bad_hook"
