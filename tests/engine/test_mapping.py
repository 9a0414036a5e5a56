"""Dynamic task mapping end to end, against Airflow's documented outcomes: `.partial().expand()`
on classic operators and `@task`, `expand_kwargs`, literals and XComs, cross products, `.map()`,
`zip`, `concat`, the reduce downstream, empty lists, max_map_length, trigger rules over every
instance, retries, clears and marks per instance, recovery of expanded runs."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from asyncflow import DAG, Engine, TaskStateChanged, task
from asyncflow.engine import operations
from asyncflow.exceptions import DagDefinitionError
from asyncflow.operators import BashOperator, EmptyOperator, PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


async def instances(engine: Engine, dag_id: str, run_id: str) -> dict[tuple[str, int], str]:
    return {
        (ti.task_id, ti.map_index): ti.state.value
        for ti in await engine.get_task_instances(dag_id, run_id)
    }


async def run_full(dag: DAG, **options: Any) -> tuple[Any, dict[tuple[str, int], str], Engine]:
    engine = Engine(dags=[dag], database=":memory:", **options)
    async with engine:
        run = await engine.trigger_dag(dag.dag_id)
        done = await engine.wait_for_run(dag.dag_id, run.run_id, timeout=10)
        states = await instances(engine, dag.dag_id, run.run_id)
        values = {
            (ti.task_id, ti.map_index): await engine.get_xcom(
                dag.dag_id, run.run_id, ti.task_id, map_index=ti.map_index
            )
            for ti in await engine.get_task_instances(dag.dag_id, run.run_id)
        }
    return done, states, values  # type: ignore[return-value]


async def test_task_expand_over_an_upstream_xcom_and_reduce_downstream() -> None:
    with DAG("map_xcom", schedule=None) as dag:

        @task
        def numbers() -> list[int]:
            return [1, 2, 3]

        @task
        def add(x: int, y: int) -> int:
            return x + y

        @task
        def total(values: list[int]) -> int:
            return sum(values)

        total(add.partial(y=10).expand(x=numbers()))
    run, states, values = await run_full(dag)
    assert run.state == "success"
    assert states == {
        ("numbers", -1): "success", ("add", 0): "success", ("add", 1): "success",
        ("add", 2): "success", ("total", -1): "success",
    }  # fmt: skip
    assert [values[("add", i)] for i in range(3)] == [11, 12, 13]
    assert values[("total", -1)] == 36


async def test_reduce_receives_values_in_map_index_order_as_a_list() -> None:
    with DAG("map_order", schedule=None) as dag:

        @task
        async def slow(x: int) -> int:
            await anyio.sleep(0.01 * (5 - x))  # later indexes finish first
            return x * x

        @task
        def collect(values: list[int]) -> list[int]:
            assert isinstance(values, list)
            return values

        collect(slow.expand(x=[0, 1, 2, 3, 4]))
    _, _, values = await run_full(dag)
    assert values[("collect", -1)] == [0, 1, 4, 9, 16]


async def test_classic_operator_expand_over_literals_and_cross_product() -> None:
    seen: list[tuple[int, str]] = []

    def record(a: int, b: str) -> None:
        seen.append((a, b))

    with DAG("map_cross", schedule=None) as dag:
        PythonOperator.partial(task_id="pairs", python_callable=record).expand(
            op_args=[[1, "x"], [2, "y"]]
        )

        @task
        def cross(a: int, b: str) -> str:
            return f"{a}{b}"

        cross.expand(a=[1, 2], b=["x", "y", "z"])
    _, states, values = await run_full(dag)
    assert sorted(seen) == [(1, "x"), (2, "y")]
    assert [values[("cross", i)] for i in range(6)] == ["1x", "1y", "1z", "2x", "2y", "2z"]
    assert states[("pairs", 1)] == "success"


async def test_mapped_bash_operator_runs_each_command() -> None:
    with DAG("map_bash", schedule=None) as dag:
        BashOperator.partial(task_id="echo", env={"WHO": "w"}).expand(
            bash_command=["echo one $WHO", "echo two $WHO"]
        )
    _, states, values = await run_full(dag)
    assert states == {("echo", 0): "success", ("echo", 1): "success"}
    assert values[("echo", 0)] == "one w" and values[("echo", 1)] == "two w"


async def test_expand_over_a_dict_gives_key_value_pairs() -> None:
    with DAG("map_dict", schedule=None) as dag:

        @task
        def source() -> dict[str, int]:
            return {"a": 1, "b": 2}

        @task
        def show(pair: list[Any]) -> str:
            key, value = pair
            return f"{key}={value}"

        show.expand(pair=source())
    _, _, values = await run_full(dag)
    assert [values[("show", 0)], values[("show", 1)]] == ["a=1", "b=2"]


async def test_expand_kwargs_over_literals_and_over_an_xcom() -> None:
    with DAG("map_kwargs", schedule=None) as dag:

        @task
        def configs() -> list[dict[str, int]]:
            return [{"x": 1, "y": 2}, {"x": 3, "y": 4}]

        @task
        def mul(x: int, y: int) -> int:
            return x * y

        mul.override(task_id="from_xcom").expand_kwargs(configs())
        BashOperator.partial(task_id="bash").expand_kwargs(
            [{"bash_command": "echo a"}, {"bash_command": "echo b", "env": {"Q": "1"}}]
        )
    _, _, values = await run_full(dag)
    assert [values[("from_xcom", 0)], values[("from_xcom", 1)]] == [2, 12]
    assert [values[("bash", 0)], values[("bash", 1)]] == ["a", "b"]


async def test_map_zip_and_concat() -> None:
    with DAG("map_helpers", schedule=None) as dag:

        @task
        def left() -> list[int]:
            return [1, 2, 3]

        @task
        def right() -> list[str]:
            return ["a", "b"]

        @task
        def echo(value: Any) -> Any:
            return value

        lv, rv = left(), right()
        echo.override(task_id="mapped").expand(value=lv.map(lambda v: v * 100))
        echo.override(task_id="zipped").expand(value=lv.zip(rv))
        echo.override(task_id="zipped_long").expand(value=lv.zip(rv, fillvalue=None))
        echo.override(task_id="joined").expand(value=lv.concat(rv))
    _, _, values = await run_full(dag)

    def of(task_id: str) -> list[Any]:
        return [v for (t, i), v in sorted(values.items()) if t == task_id and i >= 0]

    assert of("mapped") == [100, 200, 300]
    assert of("zipped") == [(1, "a"), (2, "b")]  # tuples round-trip (xcom_codec)
    assert of("zipped_long") == [(1, "a"), (2, "b"), (3, None)]
    assert of("joined") == [1, 2, 3, "a", "b"]


async def test_an_empty_list_makes_the_mapped_task_skipped() -> None:
    with DAG("map_empty", schedule=None) as dag:

        @task
        def nothing() -> list[int]:
            return []

        @task
        def each(x: int) -> int:
            return x

        after = EmptyOperator(task_id="after")
        each.expand(x=nothing()) >> after
    run, states, _ = await run_full(dag)
    assert states == {("nothing", -1): "success", ("each", -1): "skipped", ("after", -1): "skipped"}
    assert run.state == "success"


async def test_a_value_that_is_not_a_list_fails_the_pushing_task() -> None:
    with DAG("map_not_list", schedule=None) as dag:

        @task
        def scalar() -> int:
            return 5

        @task
        def each(x: int) -> int:
            return x

        each.expand(x=scalar())
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("map_not_list")
        await engine.wait_for_run("map_not_list", run.run_id, timeout=10)
        tis = {t.task_id: t for t in await engine.get_task_instances("map_not_list", run.run_id)}
    assert tis["scalar"].state == "failed"
    assert "list or dict" in (tis["scalar"].error or "")
    assert tis["each"].state == "upstream_failed"


async def test_max_map_length_fails_the_pushing_task_and_a_literal_list() -> None:
    with DAG("map_too_long", schedule=None) as dag:

        @task
        def many() -> list[int]:
            return list(range(5))

        @task
        def each(x: int) -> int:
            return x

        each.expand(x=many())
        each.override(task_id="literal").expand(x=[1, 2, 3, 4])
    async with Engine(dags=[dag], database=":memory:", max_map_length=3) as engine:
        run = await engine.trigger_dag("map_too_long")
        await engine.wait_for_run("map_too_long", run.run_id, timeout=10)
        tis = {t.task_id: t for t in await engine.get_task_instances("map_too_long", run.run_id)}
    assert tis["many"].state == "failed"
    assert "max_map_length=3" in (tis["many"].error or "")
    assert tis["literal"].state == "failed"
    assert "max_map_length=3" in (tis["literal"].error or "")


async def test_trigger_rules_downstream_count_every_instance() -> None:
    def maybe_fail(x: int) -> int:
        if x == 1:
            raise ValueError("one fails")
        return x

    with DAG("map_rules", schedule=None) as dag:
        mapped = PythonOperator.partial(task_id="work", python_callable=maybe_fail).expand(
            op_args=[[0], [1], [2]]
        )
        all_ok = EmptyOperator(task_id="all_ok")
        any_failed = PythonOperator(
            task_id="any_failed", python_callable=lambda: "alert", trigger_rule="one_failed"
        )
        done = PythonOperator(
            task_id="done", python_callable=lambda: "done", trigger_rule="all_done"
        )
        mapped >> [all_ok, any_failed, done]
    run, states, _ = await run_full(dag)
    assert [states[("work", i)] for i in range(3)] == ["success", "failed", "success"]
    assert states[("all_ok", -1)] == "upstream_failed"
    assert states[("any_failed", -1)] == "success"
    assert states[("done", -1)] == "success"
    assert run.state == "failed"


async def test_all_done_waits_for_every_instance() -> None:
    gate = anyio.Event()

    @task
    async def each(x: int) -> int:
        if x == 2:
            await gate.wait()
        return x

    with DAG("map_wait", schedule=None) as dag:
        each.expand(x=[0, 1, 2]) >> EmptyOperator(task_id="join", trigger_rule="all_done")
    async with Engine(dags=[dag], database=":memory:") as engine:
        events = engine.subscribe()
        run = await engine.trigger_dag("map_wait")
        with anyio.fail_after(10):
            async for event in events:
                if (
                    isinstance(event, TaskStateChanged)
                    and event.task_id == "each"
                    and event.map_index == 1
                    and event.new_state == "success"
                ):
                    break
        states = await instances(engine, "map_wait", run.run_id)
        assert states[("join", -1)] == "none"
        gate.set()
        done = await engine.wait_for_run("map_wait", run.run_id, timeout=10)
        states = await instances(engine, "map_wait", run.run_id)
    assert done.state == "success"
    assert states[("join", -1)] == "success"


async def test_a_failed_instance_retries_alone() -> None:
    tries: dict[int, int] = {}

    @task(retries=1, retry_delay=0)
    def flaky(x: int) -> int:
        tries[x] = tries.get(x, 0) + 1
        if x == 1 and tries[x] == 1:
            raise ValueError("first try fails")
        return x

    with DAG("map_retry", schedule=None) as dag:
        flaky.expand(x=[0, 1, 2])
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("map_retry")
        await engine.wait_for_run("map_retry", run.run_id, timeout=10)
        tis = {t.map_index: t for t in await engine.get_task_instances("map_retry", run.run_id)}
        values = [await engine.get_xcom("map_retry", run.run_id, "flaky", map_index=i)
                  for i in range(3)]  # fmt: skip
    assert tries == {0: 1, 1: 2, 2: 1}
    assert [tis[i].try_number for i in range(3)] == [1, 2, 1]
    assert values == [0, 1, 2]  # the retry dropped only its own XCom


async def test_clearing_a_mapped_task_clears_every_instance() -> None:
    runs: list[int] = []

    @task
    def each(x: int) -> int:
        runs.append(x)
        return x

    with DAG("map_clear", schedule=None) as dag:
        each.expand(x=[0, 1])
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("map_clear")
        await engine.wait_for_run("map_clear", run.run_id, timeout=10)
        await engine.clear_task_instances("map_clear", run.run_id, ["each"])
        done = await engine.wait_for_run("map_clear", run.run_id, timeout=10)
        tis = await engine.get_task_instances("map_clear", run.run_id)
    assert sorted(runs) == [0, 0, 1, 1]
    assert done.state == "success"
    assert sorted((t.map_index, t.try_number) for t in tis) == [(0, 2), (1, 2)]


def test_definition_errors_name_the_task_and_argument() -> None:
    with DAG("map_errors", schedule=None):

        @task
        def f(x: int) -> int:
            return x

        with pytest.raises(DagDefinitionError, match="'nope'"):
            f.expand(nope=[1])
        with pytest.raises(DagDefinitionError, match="both partial"):
            f.partial(x=1).expand(x=[2])
        with pytest.raises(DagDefinitionError, match="'retries' cannot be mapped"):
            BashOperator.partial(task_id="b").expand(retries=[1, 2])
        with pytest.raises(DagDefinitionError, match="unknown arguments"):
            BashOperator.partial(task_id="c", bash_comand="x")


async def test_events_carry_the_map_index() -> None:
    with DAG("map_events", schedule=None) as dag:

        @task
        def each(x: int) -> int:
            return x

        each.expand(x=[0, 1])
    seen: set[tuple[int, str]] = set()
    async with Engine(dags=[dag], database=":memory:") as engine:
        events = engine.subscribe()
        run = await engine.trigger_dag("map_events")
        await engine.wait_for_run("map_events", run.run_id, timeout=10)
        with anyio.fail_after(5):
            async for event in events:
                if isinstance(event, TaskStateChanged):
                    seen.add((event.map_index, event.new_state.value))
                if {(0, "success"), (1, "success")} <= seen:
                    break
    assert {(0, "success"), (1, "success")} <= seen


async def test_mark_one_instance() -> None:
    gate = anyio.Event()

    @task
    async def each(x: int) -> int:
        await gate.wait()
        return x

    with DAG("map_mark", schedule=None) as dag:
        each.expand(x=[0, 1])
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("map_mark")
        mirror = engine._scheduler.mirror

        def mark(now: Any) -> list[str]:
            live = mirror.runs[("map_mark", run.run_id)]
            return operations.mark(mirror, live, {"each"}, operations.TaskState.SKIPPED, now,
                                   map_index=1)  # fmt: skip

        with anyio.fail_after(10):
            while len(await engine.get_task_instances("map_mark", run.run_id)) < 2:
                await anyio.sleep(0.01)
        await engine._scheduler.call(mark).get()
        gate.set()
        await engine.wait_for_run("map_mark", run.run_id, timeout=10)
        states = await instances(engine, "map_mark", run.run_id)
    assert states == {("each", 0): "success", ("each", 1): "skipped"}


async def test_literal_mapping_on_a_root_task_in_a_run_dag_helper() -> None:
    with DAG("map_root", schedule=None) as dag:

        @task
        def each(x: int) -> int:
            return x * 2

        each.expand(x=[1, 2, 3])
    result = await run_dag(dag)
    assert result.run.state == "success"


async def test_an_expanded_run_survives_a_restart(tmp_path: Any) -> None:
    blocked = {"yes": True}
    started = anyio.Event()
    calls: list[int] = []

    @task
    async def each(x: int) -> int:
        calls.append(x)
        if x == 1 and blocked["yes"]:
            started.set()
            await anyio.sleep_forever()
        return x

    with DAG("map_restart", schedule=None) as dag:
        each.expand(x=[0, 1, 2]) >> EmptyOperator(task_id="after")
    database = tmp_path / "state.db"
    async with Engine(dags=[dag], database=database) as engine:
        run = await engine.trigger_dag("map_restart")
        with anyio.fail_after(10):
            await started.wait()
    blocked["yes"] = False
    async with Engine(dags=[dag], database=database) as engine:
        done = await engine.wait_for_run("map_restart", run.run_id, timeout=10)
        states = await instances(engine, "map_restart", run.run_id)
    assert done.state == "success"
    assert states == {
        ("each", 0): "success", ("each", 1): "success", ("each", 2): "success",
        ("after", -1): "success",
    }  # fmt: skip
    assert (calls.count(0), calls.count(1), calls.count(2)) == (1, 2, 1)  # only the cut one


async def test_one_instance_of_a_mapped_task_is_cleared_through_the_engine() -> None:
    calls: list[int] = []

    with DAG("clear_one", schedule=None) as dag:

        @task
        def double(x: int) -> int:
            calls.append(x)
            return x * 2

        double.expand(x=[1, 2, 3])
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("clear_one")
        await engine.wait_for_run("clear_one", run.run_id, timeout=10)
        assert sorted(calls) == [1, 2, 3]
        await engine.clear_task_instances("clear_one", run.run_id, ["double"], map_index=1)
        done = await engine.wait_for_run("clear_one", run.run_id, timeout=10)
        await engine.set_task_instance_state(
            "clear_one", run.run_id, "double", "failed", map_index=2
        )
        tis = {ti.map_index: ti.state for ti in await engine.get_task_instances(
            "clear_one", run.run_id)}  # fmt: skip
    assert done.state == "success"
    assert sorted(calls) == [1, 2, 2, 3]  # only map_index 1 ran again
    assert tis == {0: "success", 1: "success", 2: "failed"}
