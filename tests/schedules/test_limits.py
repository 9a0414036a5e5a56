"""Limits and ordering: max_active_tasks, parallelism, pools, priority weights,
max_active_tis_per_dag, depends_on_past, wait_for_downstream and dagrun_timeout."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import partial
from typing import Any

import pytest

from asyncflow import DAG, DagRun, DagRunState, Engine, FakeClock, Pool, TaskState, TaskStateChanged
from asyncflow.exceptions import UnknownPoolError

from .support import (
    Probe,
    Tracker,
    barrier,
    collect,
    make_engine,
    peak_running_tasks,
    runs,
    tis,
    utc,
    wait_run_state,
    wait_runs,
    wait_ti,
    wait_until,
)

pytestmark = pytest.mark.anyio
NOW = utc(2024, 1, 1)


def fan(
    tracker: Tracker,
    count: int,
    dag_id: str = "fan",
    task_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> DAG:
    """`count` independent Probe tasks t0..t{count-1}."""
    with DAG(dag_id, schedule=None, start_date=datetime(2024, 1, 1), **kwargs) as dag:
        for i in range(count):
            Probe(task_id=f"t{i}", tracker=tracker, **(task_options or {}))
    return dag


async def run_once(engine: Engine, dag_id: str = "fan") -> tuple[DagRun, list[Any]]:
    """Trigger a run, wait for it, and return it with the events it produced."""
    events = collect(engine.subscribe())
    run = await engine.trigger_dag(dag_id)
    finished = await engine.wait_for_run(dag_id, run.run_id, timeout=5)
    return finished, await events()


async def test_max_active_tasks_caps_a_dags_running_task_instances() -> None:
    async with make_engine([fan(Tracker(), 8, max_active_tasks=3)], FakeClock(NOW)) as engine:
        run, seen = await run_once(engine)
    assert run.state is DagRunState.SUCCESS
    assert peak_running_tasks(seen) == 3


async def test_parallelism_caps_the_engines_running_task_instances() -> None:
    tracker = Tracker()
    dags = [fan(tracker, 4, "one"), fan(tracker, 4, "two")]
    async with make_engine(dags, FakeClock(NOW), parallelism=3) as engine:
        events = collect(engine.subscribe())
        first = await engine.trigger_dag("one")
        second = await engine.trigger_dag("two")
        for dag_id, run in (("one", first), ("two", second)):
            await engine.wait_for_run(dag_id, run.run_id, timeout=5)
        seen = await events()
    assert peak_running_tasks(seen) == 3
    assert len(tracker.started) == 8


async def test_held_tasks_never_exceed_max_active_tasks() -> None:
    tracker = Tracker(hold=True)
    async with make_engine([fan(tracker, 5, max_active_tasks=2)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("fan")
        for done in range(5):
            await wait_until(partial(_running, tracker, 1 if done == 4 else 2))
            await barrier(engine)
            assert len(tracker.running) == min(2, 5 - done)
            tracker.release(task_id=sorted(tracker.running)[0][0])
        finished = await engine.wait_for_run("fan", run.run_id, timeout=5)
    assert finished.state is DagRunState.SUCCESS


async def _running(tracker: Tracker, count: int) -> bool:
    return len(tracker.held()) == count


# -- pools -----------------------------------------------------------------------------------------


async def test_pool_slots_bound_the_tasks_using_the_pool() -> None:
    dag = fan(Tracker(), 8, task_options={"pool": "api"})
    async with make_engine([dag], FakeClock(NOW), pools=[Pool("api", slots=3)]) as engine:
        run, seen = await run_once(engine)
    assert run.state is DagRunState.SUCCESS
    assert peak_running_tasks(seen) == 3


async def test_pool_slots_two_counts_double() -> None:
    tracker = Tracker()
    with DAG("mixed", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        for i in range(3):
            Probe(task_id=f"big{i}", tracker=tracker, pool="api", pool_slots=2)
        for i in range(3):
            Probe(task_id=f"small{i}", tracker=tracker, pool="api")
    slots = {f"big{i}": 2 for i in range(3)} | {f"small{i}": 1 for i in range(3)}

    def weight(event: TaskStateChanged) -> int:
        return slots[event.task_id]

    async with make_engine([dag], FakeClock(NOW), pools=[Pool("api", slots=3)]) as engine:
        run, seen = await run_once(engine, "mixed")
    assert run.state is DagRunState.SUCCESS
    assert peak_running_tasks(seen, weight) == 3
    bigs_at_once = peak_running_tasks(
        [e for e in seen if isinstance(e, TaskStateChanged) and e.task_id.startswith("big")]
    )
    assert bigs_at_once == 1  # two of them would need 4 slots


async def test_a_task_naming_an_unknown_pool_fails_at_engine_start() -> None:
    dag = fan(Tracker(), 1, task_options={"pool": "nope"})
    engine = make_engine([dag], FakeClock(NOW), pools=[Pool("api", slots=3)])
    with pytest.raises(UnknownPoolError) as caught:
        async with engine:
            pass
    message = str(caught.value)
    assert "'nope'" in message and "'t0'" in message and "'fan'" in message


# -- priority --------------------------------------------------------------------------------------


async def start_order(dag: DAG, tracker: Tracker) -> list[str]:
    async with make_engine([dag], FakeClock(NOW), parallelism=1) as engine:
        run = await engine.trigger_dag(dag.dag_id)
        finished = await engine.wait_for_run(dag.dag_id, run.run_id, timeout=5)
    assert finished.state is DagRunState.SUCCESS
    return [task_id for task_id, _ in tracker.started]


async def test_downstream_weight_rule_is_the_default() -> None:
    tracker = Tracker()
    with DAG("prio", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="heavy", tracker=tracker, priority_weight=3)  # 3
        root = Probe(task_id="root", tracker=tracker)  # 1 + three downstream = 4
        root >> [Probe(task_id=f"leaf{i}", tracker=tracker) for i in range(3)]
    order = await start_order(dag, tracker)
    assert order[:2] == ["root", "heavy"]


async def test_upstream_weight_rule_sums_the_upstream_weights() -> None:
    tracker = Tracker()
    with DAG(
        "prio", schedule=None, start_date=datetime(2024, 1, 1),
        default_args={"weight_rule": "upstream"},
    ) as dag:  # fmt: skip
        first = Probe(task_id="first", tracker=tracker, priority_weight=10)  # 10
        first >> Probe(task_id="after", tracker=tracker)  # 1 + 10 upstream = 11
        Probe(task_id="other", tracker=tracker, priority_weight=3)  # 3
    assert await start_order(dag, tracker) == ["first", "after", "other"]


async def test_absolute_weight_rule_uses_the_tasks_own_weight() -> None:
    tracker = Tracker()
    with DAG(
        "prio", schedule=None, start_date=datetime(2024, 1, 1),
        default_args={"weight_rule": "absolute"},
    ) as dag:  # fmt: skip
        root = Probe(task_id="root", tracker=tracker)  # 1, though three tasks follow it
        root >> [Probe(task_id=f"leaf{i}", tracker=tracker) for i in range(3)]
        Probe(task_id="heavy", tracker=tracker, priority_weight=3)
    order = await start_order(dag, tracker)
    assert order[:2] == ["heavy", "root"]


async def test_max_active_tis_per_dag_caps_one_task_across_runs() -> None:
    tracker = Tracker(hold=True)
    with DAG("capped", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="capped", tracker=tracker, max_active_tis_per_dag=1)
        Probe(task_id="free", tracker=tracker)
    async with make_engine([dag], FakeClock(NOW)) as engine:
        events = collect(engine.subscribe())
        made = [await engine.trigger_dag("capped", logical_date=utc(2024, 1, d)) for d in (1, 2, 3)]
        await wait_until(partial(_running, tracker, 4))
        await barrier(engine)
        held = tracker.held()
        assert sorted(t for t, _ in held) == ["capped", "free", "free", "free"]
        tracker.release_all()
        for run in made:
            await engine.wait_for_run("capped", run.run_id, timeout=5)
        seen = await events()

    def only(task_id: str) -> list[TaskStateChanged]:
        return [e for e in seen if isinstance(e, TaskStateChanged) and e.task_id == task_id]

    assert peak_running_tasks(only("capped")) == 1
    assert peak_running_tasks(only("free")) == 3
    assert tracker.started.count(("capped", made[2].run_id)) == 1


# -- depends_on_past and wait_for_downstream -------------------------------------------------------


async def test_depends_on_past_waits_until_the_previous_run_is_cleared_and_succeeds() -> None:
    tracker = Tracker()
    tracker.failing.add(("step", "2024-01-01"))
    with DAG("past", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="step", tracker=tracker, depends_on_past=True)
    async with make_engine([dag], FakeClock(utc(2024, 1, 3))) as engine:
        first, second = await wait_runs(engine, "past", 2)
        await wait_run_state(engine, "past", first.run_id, DagRunState.FAILED)
        await barrier(engine)
        waiting = (await tis(engine, "past", second.run_id))["step"]
        assert waiting.state in (TaskState.NONE, TaskState.SCHEDULED)
        assert tracker.started_in(second.run_id) == []
        tracker.failing.clear()
        await engine.clear_task_instances("past", first.run_id, ["step"])
        done = await engine.wait_for_run("past", second.run_id, timeout=5)
        again = await engine.get_dag_run("past", first.run_id)
    assert again.state is DagRunState.SUCCESS
    assert done.state is DagRunState.SUCCESS
    assert tracker.started == [("step", first.run_id), ("step", first.run_id),
                               ("step", second.run_id)]  # fmt: skip


async def test_depends_on_past_waits_for_the_previous_run_until_marked_success() -> None:
    tracker = Tracker()
    tracker.failing.add(("step", "2024-01-01"))
    with DAG("past", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="step", tracker=tracker, depends_on_past=True)
    async with make_engine([dag], FakeClock(utc(2024, 1, 3))) as engine:
        first, second = await wait_runs(engine, "past", 2)
        await wait_run_state(engine, "past", first.run_id, DagRunState.FAILED)
        await barrier(engine)
        waiting = (await tis(engine, "past", second.run_id))["step"]
        assert waiting.state in (TaskState.NONE, TaskState.SCHEDULED)
        assert tracker.started_in(second.run_id) == []
        await engine.set_task_instance_state("past", first.run_id, "step", "success")
        done = await engine.wait_for_run("past", second.run_id, timeout=0.5)
        again = await engine.get_dag_run("past", first.run_id)
    assert again.state is DagRunState.SUCCESS
    assert done.state is DagRunState.SUCCESS
    assert tracker.started_in(second.run_id) == ["step"]


async def test_depends_on_past_runs_in_logical_date_order() -> None:
    tracker = Tracker(hold=True)
    with DAG("past", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="step", tracker=tracker, depends_on_past=True)
    async with make_engine([dag], FakeClock(utc(2024, 1, 4))) as engine:
        made = await wait_runs(engine, "past", 3)
        for run in made:
            await wait_until(partial(_running, tracker, 1))
            await barrier(engine)
            assert tracker.held() == {("step", run.run_id)}
            tracker.release(run_id=run.run_id)
        await wait_runs(engine, "past", 3, finished=True)
    assert [r for _, r in tracker.started] == [r.run_id for r in made]


async def test_wait_for_downstream_waits_for_the_previous_runs_downstream() -> None:
    tracker = Tracker(hold=True)
    with DAG("wfd", schedule="@daily", start_date=datetime(2024, 1, 1)) as dag:
        head = Probe(task_id="head", tracker=tracker, wait_for_downstream=True)
        head >> Probe(task_id="tail", tracker=tracker)
    async with make_engine([dag], FakeClock(utc(2024, 1, 3))) as engine:
        first, second = await wait_runs(engine, "wfd", 2)
        await wait_ti(engine, "wfd", first.run_id, "head", TaskState.RUNNING)
        tracker.release("head", first.run_id)
        await wait_ti(engine, "wfd", first.run_id, "tail", TaskState.RUNNING)
        await barrier(engine)
        # the first run's head succeeded, but its downstream tail still runs
        assert tracker.started_in(second.run_id) == []
        tracker.release("tail", first.run_id)
        await wait_ti(engine, "wfd", second.run_id, "head", TaskState.RUNNING)
        tracker.release_all()
        await wait_runs(engine, "wfd", 2, finished=True)
        assert {r.state for r in await runs(engine, "wfd")} == {DagRunState.SUCCESS}


# -- dagrun_timeout --------------------------------------------------------------------------------


async def test_dagrun_timeout_fails_the_run_and_stops_its_tasks() -> None:
    tracker = Tracker(hold=True)
    with DAG(
        "slow", schedule=None, start_date=datetime(2024, 1, 1),
        dagrun_timeout=timedelta(hours=1),
    ) as dag:  # fmt: skip
        quick = Probe(task_id="quick", tracker=tracker)
        stuck = Probe(task_id="stuck", tracker=tracker)
        quick >> Probe(task_id="after", tracker=tracker)
        stuck >> Probe(task_id="never", tracker=tracker)
    clock = FakeClock(NOW)
    async with make_engine([dag], clock) as engine:
        run = await engine.trigger_dag("slow")
        await wait_ti(engine, "slow", run.run_id, "stuck", TaskState.RUNNING)
        tracker.release("quick")
        await wait_ti(engine, "slow", run.run_id, "after", TaskState.RUNNING)
        tracker.release("after")
        await wait_ti(engine, "slow", run.run_id, "after", TaskState.SUCCESS)
        clock.advance(timedelta(minutes=59))
        await barrier(engine)
        assert (await engine.get_dag_run("slow", run.run_id)).state is DagRunState.RUNNING
        clock.advance(timedelta(minutes=1))
        finished = await engine.wait_for_run("slow", run.run_id, timeout=5)
        states = {t: ti.state for t, ti in (await tis(engine, "slow", run.run_id)).items()}
        await wait_until(partial(_cancelled, tracker))
    assert finished.state is DagRunState.FAILED
    assert states == {
        "quick": TaskState.SUCCESS,
        "after": TaskState.SUCCESS,
        "stuck": TaskState.SKIPPED,
        "never": TaskState.SKIPPED,
    }
    assert tracker.cancelled == [("stuck", run.run_id)]
    assert tracker.started_in(run.run_id).count("never") == 0


async def _cancelled(tracker: Tracker) -> bool:
    return bool(tracker.cancelled)
