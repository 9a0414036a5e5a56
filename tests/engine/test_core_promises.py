"""Issue 8's promises, each reproduced: the store is the truth (depends_on_past after a
restart), one bad value never stops the engine, every attempt reports, lost work comes back at
no try's cost, and the state table is enforced."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from asyncflow import DAG, Engine, Param, task
from asyncflow.clock import FakeClock
from asyncflow.engine.dagruns import manual_run
from asyncflow.exceptions import InvalidRunIdError, InvalidStateTransition
from asyncflow.operators import EmptyOperator, PythonOperator
from asyncflow.states import DagRunState, TaskState
from asyncflow.store.base import NewRun, RunUpdate, TIRow, WriteBatch, iso, run_row
from asyncflow.store.sqlite import SQLiteStore
from asyncflow.timetables.base import DagRunInfo, DataInterval, Timetable
from tests.engine.support import finish
from tests.schedules.support import barrier, make_engine, tis, utc, wait_run_state

pytestmark = pytest.mark.anyio


def healthy_dag() -> DAG:
    with DAG("healthy", schedule=None) as dag:

        @task
        def ok() -> str:
            return "fine"

        ok()
    return dag


# -- the store is the truth ---------------------------------------------------------------------


def past_dag(fail: bool) -> DAG:
    def work() -> None:
        if fail:
            raise RuntimeError("run 1 fails")

    with DAG("past", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        PythonOperator(task_id="work", python_callable=work, depends_on_past=True)
    return dag


async def test_depends_on_past_looks_at_the_store_after_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    clock = FakeClock(utc(2024, 3, 1))
    async with make_engine([past_dag(fail=True)], clock, database=database) as engine:
        first = await engine.trigger_dag("past", logical_date=utc(2024, 1, 1), run_id="first")
        done = await engine.wait_for_run("past", first.run_id, timeout=5)
        assert done.state == "failed"

    async with make_engine([past_dag(fail=False)], clock, database=database) as engine:
        second = await engine.trigger_dag("past", logical_date=utc(2024, 1, 2), run_id="second")
        await barrier(engine)
        await barrier(engine)
        # the previous run's `work` failed: depends_on_past holds this one back
        assert (await tis(engine, "past", second.run_id))["work"].state == "scheduled"
        # clearing the failed one lets both go, in order
        await engine.clear_task_instances("past", "first", ["work"])
        result = await engine.wait_for_run("past", second.run_id, timeout=5)
    assert result.state == "success"


# -- one bad value never stops the engine -------------------------------------------------------


class BrokenTimetable(Timetable):
    """A timetable whose arithmetic fails at run time, as a user's own might."""

    description = "broken"

    def next_dagrun_info(self, **kwargs: Any) -> DagRunInfo | None:
        raise OverflowError("date value out of range")

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        return DataInterval(run_after, run_after)


async def test_a_timetable_that_fails_is_that_dags_error_and_others_run_on() -> None:
    with DAG("broken_schedule", schedule=BrokenTimetable(), start_date=datetime(2024, 1, 1)) as bad:
        EmptyOperator(task_id="never")
    clock = FakeClock(utc(2024, 1, 5))
    async with make_engine([bad, healthy_dag()], clock) as engine:
        await barrier(engine)
        errors = engine.import_errors
        (message,) = errors.values()
        assert "broken_schedule" in message and "OverflowError" in message
        assert "schedule" in message
        result = await finish(engine, "healthy", timeout=5)
        assert result.run.state == "success"
        assert engine._require().crashed is None


async def test_a_huge_dagrun_timeout_neither_crashes_nor_fires() -> None:
    with DAG("patient", schedule=None, dagrun_timeout=timedelta.max) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    async with Engine(dags=[dag, healthy_dag()], database=":memory:") as engine:
        assert (await finish(engine, "patient", timeout=5)).run.state == "success"
        assert (await finish(engine, "healthy", timeout=5)).run.state == "success"


async def test_conf_that_a_later_param_edit_rejects_fails_that_run_only(tmp_path: Path) -> None:
    database = tmp_path / "state.db"

    def versioned(schema: dict[str, Any]) -> DAG:
        default = "one" if schema.get("type") == "string" else 1  # a default must fit its schema
        with DAG("params", schedule=None, params={"n": Param(default, **schema)}) as dag:

            @task
            def use(params: Any = None) -> Any:
                return params["n"]

            use()
        return dag

    # a run queued (by the CLI, say) with conf that fits the DAG as it was then
    record = manual_run(versioned({"type": "integer"}), now=datetime.now(UTC), conf={"n": 5},
                        logical_date=None, run_id="queued")  # fmt: skip
    store = SQLiteStore(database)
    await store.open()
    await store.write(WriteBatch(new_runs=[NewRun(run_row(record), [])]))
    await store.close()
    # the DAG's file changed since: n must now be a string
    async with Engine(
        dags=[versioned({"type": "string"}), healthy_dag()], database=database
    ) as engine:
        done = await engine.wait_for_run("params", "queued", timeout=5)
        (ti,) = await engine.get_task_instances("params", "queued")
        assert done.state == "failed"
        assert ti.state == "failed" and "'n'" in (ti.error or "")
        assert (await finish(engine, "healthy", timeout=5)).run.state == "success"


async def test_exponential_backoff_over_a_hundred_retries_never_overflows() -> None:
    tries: list[int] = []

    def flaky(ti: Any) -> None:
        tries.append(ti.try_number)
        raise RuntimeError("still failing")

    with DAG("flaky", schedule=None) as dag:
        PythonOperator(task_id="flaky", python_callable=flaky, retries=100,
                       retry_delay=timedelta(seconds=1),
                       retry_exponential_backoff=True)  # fmt: skip
    clock = FakeClock(utc(2024, 1, 1))
    async with make_engine([dag, healthy_dag()], clock) as engine:
        run = await engine.trigger_dag("flaky")
        with anyio.fail_after(30):
            while len(tries) < 60:  # 2 ** 53 s no longer fits a timedelta
                await barrier(engine)
                clock.advance(timedelta(days=2))
        assert engine._require().crashed is None
        (ti,) = await engine.get_task_instances("flaky", run.run_id)
        assert ti.state in ("up_for_retry", "running", "scheduled")
        assert (await finish(engine, "healthy", timeout=5)).run.state == "success"


# -- every attempt reports ----------------------------------------------------------------------


async def test_an_unwritable_log_folder_drops_lines_not_attempts(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "logs"
    not_a_folder.write_text("a file where the logs folder should be")

    with DAG("chatty", schedule=None) as dag:

        @task
        def talk() -> int:
            print("hello")
            return 1

        talk() >> EmptyOperator(task_id="after")

    async with Engine(dags=[dag], database=":memory:", logs_folder=not_a_folder) as engine:
        result = await finish(engine, "chatty", timeout=5)
    assert result.run.state == "success"
    assert result.states == {"talk": "success", "after": "success"}


# -- lost work comes back -----------------------------------------------------------------------


async def _lose_attempt(database: Path, run_id: str, lost_before: int) -> None:
    """Write what a kill -9 leaves: the attempt still `running`, lost `lost_before` times."""
    store = SQLiteStore(database)
    await store.open()
    try:
        row = TIRow(TaskState.RUNNING.value, 1, 0, iso(datetime.now(UTC)), None, None, None,
                    None, lost_before, "lossy", run_id, "work", -1)  # fmt: skip
        await store.write(WriteBatch(ti_updates=[row]))
    finally:
        await store.close()


def lossy_dag(calls: list[str]) -> DAG:
    with DAG("lossy", schedule=None) as dag:
        PythonOperator(task_id="work", python_callable=lambda: calls.append("ran"), retries=0)
    return dag


async def test_an_attempt_lost_by_the_engine_runs_again_without_using_a_try(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    calls: list[str] = []
    async with Engine(dags=[lossy_dag(calls)], database=database) as engine:
        run = await engine.trigger_dag("lossy")
        await engine.wait_for_run("lossy", run.run_id, timeout=5)
    # make it look like the engine died while the attempt ran
    await _reopen_as_running(database, run.run_id)
    await _lose_attempt(database, run.run_id, lost_before=0)
    async with Engine(dags=[lossy_dag(calls)], database=database) as engine:
        done = await engine.wait_for_run("lossy", run.run_id, timeout=5)
        (ti,) = await engine.get_task_instances("lossy", run.run_id)
    assert done.state == "success"
    assert (ti.state, ti.try_number, ti.lost_count) == ("success", 1, 0)
    assert calls == ["ran", "ran"]


async def test_an_attempt_lost_three_times_in_a_row_is_failed_with_the_reason(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    calls: list[str] = []
    async with Engine(dags=[lossy_dag(calls)], database=database) as engine:
        run = await engine.trigger_dag("lossy")
        await engine.wait_for_run("lossy", run.run_id, timeout=5)
    await _reopen_as_running(database, run.run_id)
    await _lose_attempt(database, run.run_id, lost_before=2)
    async with Engine(dags=[lossy_dag(calls)], database=database) as engine:
        done = await engine.wait_for_run("lossy", run.run_id, timeout=5)
        (ti,) = await engine.get_task_instances("lossy", run.run_id)
    assert done.state == "failed"
    assert ti.state == "failed" and ti.lost_count == 3
    assert "lost 3 times in a row" in (ti.error or "")
    assert calls == ["ran"]


async def _reopen_as_running(database: Path, run_id: str) -> None:
    store = SQLiteStore(database)
    await store.open()
    try:
        record = await store.get_dag_run("lossy", run_id)
        assert record is not None
        running = replace(record, state=DagRunState.RUNNING, end_date=None)
        await store.write(WriteBatch(run_updates=[RunUpdate(*run_row(running)[:6])]))
    finally:
        await store.close()


# -- the state table is enforced ------------------------------------------------------------------


async def test_a_transition_the_table_forbids_is_refused() -> None:
    with DAG("windows", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        EmptyOperator(task_id="always")
        EmptyOperator(task_id="later", start_date=datetime(2030, 1, 1))
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "windows", logical_date=datetime(2024, 6, 1, tzinfo=UTC))
        assert result.states == {"always": "success", "later": "removed"}
        # removed -> success is not in the table: only a clear (-> none) may move it
        with pytest.raises(InvalidStateTransition, match="removed"):
            await engine.set_task_instance_state("windows", result.run.run_id, "later", "success")
        assert (await tis_of(engine, result.run.run_id))["later"] == "removed"
        await wait_run_state(engine, "windows", result.run.run_id, result.run.state)


async def tis_of(engine: Engine, run_id: str) -> dict[str, str]:
    return {ti.task_id: ti.state.value for ti in await engine.get_task_instances("windows", run_id)}


# -- run ids are checked where runs are made ------------------------------------------------------


@pytest.mark.parametrize("bad", ["x" * 300, "a/b", "two words", "../up", ""])
async def test_a_bad_run_id_is_refused_at_trigger_time(bad: str) -> None:
    async with Engine(dags=[healthy_dag()], database=":memory:") as engine:
        with pytest.raises(InvalidRunIdError, match="healthy"):
            await engine.trigger_dag("healthy", run_id=bad)
        assert await engine.get_dag_runs("healthy") == []


# -- prev_*_success, from the store too -------------------------------------------------------


async def test_prev_success_keys_name_the_latest_successful_run_even_after_a_restart(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    seen: dict[str, Any] = {}

    def make(fail: bool) -> DAG:
        with DAG("prev", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False) as dag:

            @task
            def look(**context: Any) -> None:
                seen[context["run_id"]] = (
                    context["prev_data_interval_start_success"],
                    context["prev_start_date_success"],
                )
                if fail:
                    raise RuntimeError("this one fails")

            look()
        return dag

    clock = FakeClock(utc(2024, 3, 1))
    async with make_engine([make(fail=False)], clock, database=database,
                           run_schedules=False) as engine:  # fmt: skip
        first = await finish(engine, "prev", logical_date=utc(2024, 1, 1), run_id="first")
    async with make_engine([make(fail=True)], clock, database=database,
                           run_schedules=False) as engine:  # fmt: skip
        await finish(engine, "prev", logical_date=utc(2024, 1, 2), run_id="failed")
        await finish(engine, "prev", logical_date=utc(2024, 1, 3), run_id="third")
    assert seen["first"] == (None, None)
    # the failed run in between does not count; the first engine's success does, from the store
    assert seen["failed"] == seen["third"] == (
        first.run.data_interval_start, first.run.start_date,
    )  # fmt: skip
