"""Clearing task instances re-runs them and reopens a finished run; marking states by hand lets
downstream tasks run and recomputes a finished run's state from its leaves."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from asyncflow import DAG, DagRunState, DagRunStateChanged, Engine, FakeClock, TaskState

from .support import Probe, Tracker, collect, make_engine, tis, utc, wait_ti

pytestmark = pytest.mark.anyio
NOW = utc(2024, 1, 1)


def chain3(tracker: Tracker, **task_options: Any) -> DAG:
    """a >> b >> c"""
    with DAG("abc", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        a = Probe(task_id="a", tracker=tracker, **task_options)
        b = Probe(task_id="b", tracker=tracker, **task_options)
        c = Probe(task_id="c", tracker=tracker, **task_options)
        a >> b >> c
    return dag


async def tries(engine: Engine, run_id: str) -> dict[str, tuple[TaskState, int]]:
    return {t: (ti.state, ti.try_number) for t, ti in (await tis(engine, "abc", run_id)).items()}


async def xcoms(engine: Engine, run_id: str) -> dict[str, object]:
    return {t: await engine.get_xcom("abc", run_id, t) for t in "abc"}


async def test_clear_with_downstream_reruns_and_reopens_a_finished_run() -> None:
    tracker = Tracker()
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        await engine.wait_for_run("abc", run.run_id, timeout=5)
        assert await xcoms(engine, run.run_id) == {t: f"{t}@2024-01-01#1" for t in "abc"}
        events = collect(engine.subscribe())
        cleared = await engine.clear_task_instances("abc", run.run_id, ["b"], downstream=True)
        done = await engine.wait_for_run("abc", run.run_id, timeout=5)
        seen = await events()
        after = await tries(engine, run.run_id)
        values = await xcoms(engine, run.run_id)
    assert sorted(cleared) == ["b", "c"]
    assert done.state is DagRunState.SUCCESS
    assert after == {"a": (TaskState.SUCCESS, 1), "b": (TaskState.SUCCESS, 2),
                     "c": (TaskState.SUCCESS, 2)}  # fmt: skip
    assert values == {"a": "a@2024-01-01#1", "b": "b@2024-01-01#2", "c": "c@2024-01-01#2"}
    run_states = [e.new_state for e in seen if isinstance(e, DagRunStateChanged)]
    assert run_states == [DagRunState.QUEUED, DagRunState.RUNNING, DagRunState.SUCCESS]
    assert [t for t, _ in tracker.started] == ["a", "b", "c", "b", "c"]


async def test_clear_with_upstream_reruns_the_upstream_only() -> None:
    tracker = Tracker()
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc")
        await engine.wait_for_run("abc", run.run_id, timeout=5)
        cleared = await engine.clear_task_instances("abc", run.run_id, ["b"], upstream=True)
        done = await engine.wait_for_run("abc", run.run_id, timeout=5)
        after = await tries(engine, run.run_id)
    assert sorted(cleared) == ["a", "b"]
    assert done.state is DagRunState.SUCCESS
    assert {t: n for t, (_, n) in after.items()} == {"a": 2, "b": 2, "c": 1}


async def test_clear_only_failed_leaves_successful_tasks_alone() -> None:
    tracker = Tracker()
    tracker.failing.add(("b", "2024-01-01"))
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        failed = await engine.wait_for_run("abc", run.run_id, timeout=5)
        assert await tries(engine, run.run_id) == {
            "a": (TaskState.SUCCESS, 1), "b": (TaskState.FAILED, 1),
            "c": (TaskState.UPSTREAM_FAILED, 0),
        }  # fmt: skip
        tracker.failing.clear()
        cleared = await engine.clear_task_instances(
            "abc", run.run_id, ["a", "b", "c"], only_failed=True
        )
        done = await engine.wait_for_run("abc", run.run_id, timeout=5)
        after = await tries(engine, run.run_id)
    assert failed.state is DagRunState.FAILED
    assert sorted(cleared) == ["b", "c"]
    assert done.state is DagRunState.SUCCESS
    assert after == {"a": (TaskState.SUCCESS, 1), "b": (TaskState.SUCCESS, 2),
                     "c": (TaskState.SUCCESS, 1)}  # fmt: skip


async def test_marking_a_waiting_task_success_lets_its_downstream_run() -> None:
    tracker = Tracker()
    tracker.failing.add(("a", "2024-01-01"))
    dag = chain3(tracker, retries=1, retry_delay=timedelta(hours=1))
    async with make_engine([dag], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        await wait_ti(engine, "abc", run.run_id, "a", TaskState.UP_FOR_RETRY)
        marked = await engine.set_task_instance_state("abc", run.run_id, "a", "success")
        done = await engine.wait_for_run("abc", run.run_id, timeout=5)
        after = await tries(engine, run.run_id)
    assert marked == ["a"]
    assert done.state is DagRunState.SUCCESS
    assert after == {"a": (TaskState.SUCCESS, 1), "b": (TaskState.SUCCESS, 1),
                     "c": (TaskState.SUCCESS, 1)}  # fmt: skip


async def test_marking_a_failed_task_success_lets_its_downstream_run() -> None:
    tracker = Tracker()
    tracker.failing.add(("a", "2024-01-01"))
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        failed = await engine.wait_for_run("abc", run.run_id, timeout=5)
        assert failed.state is DagRunState.FAILED
        await engine.set_task_instance_state("abc", run.run_id, "a", "success")
        done = await engine.wait_for_run("abc", run.run_id, timeout=0.5)
        after = await tries(engine, run.run_id)
    assert done.state is DagRunState.SUCCESS
    assert after == {"a": (TaskState.SUCCESS, 1), "b": (TaskState.SUCCESS, 1),
                     "c": (TaskState.SUCCESS, 1)}  # fmt: skip


async def test_marking_on_a_finished_run_recomputes_its_state_from_the_leaves() -> None:
    tracker = Tracker()
    tracker.failing.add(("c", "2024-01-01"))
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        assert (await engine.wait_for_run("abc", run.run_id, timeout=5)).state is (
            DagRunState.FAILED
        )
        await engine.set_task_instance_state("abc", run.run_id, "c", "success")
        fixed = await engine.get_dag_run("abc", run.run_id)
        await engine.set_task_instance_state("abc", run.run_id, "c", "failed")
        broken = await engine.get_dag_run("abc", run.run_id)
    assert fixed.state is DagRunState.SUCCESS
    assert broken.state is DagRunState.FAILED
    assert [t for t, _ in tracker.started] == ["a", "b", "c"]  # marking runs nothing again


async def test_marking_a_failed_leaf_skipped_makes_the_run_succeed() -> None:
    tracker = Tracker()
    tracker.failing.add(("c", "2024-01-01"))
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        await engine.wait_for_run("abc", run.run_id, timeout=5)
        await engine.set_task_instance_state("abc", run.run_id, "c", "skipped")
        skipped = await engine.get_dag_run("abc", run.run_id)
    assert skipped.state is DagRunState.SUCCESS


async def test_marking_a_running_task_stops_it() -> None:
    tracker = Tracker(hold=True)
    async with make_engine([chain3(tracker)], FakeClock(NOW)) as engine:
        run = await engine.trigger_dag("abc", logical_date=NOW)
        await wait_ti(engine, "abc", run.run_id, "a", TaskState.RUNNING)
        await engine.set_task_instance_state("abc", run.run_id, "a", "failed")
        done = await engine.wait_for_run("abc", run.run_id, timeout=5)
        after = await tries(engine, run.run_id)
    assert done.state is DagRunState.FAILED
    assert after["a"][0] is TaskState.FAILED
    assert after["b"][0] is TaskState.UPSTREAM_FAILED
    assert tracker.cancelled == [("a", run.run_id)]
