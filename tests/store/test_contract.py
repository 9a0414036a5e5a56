"""The store contract (`asyncflow.store.base.Store`), run against every backend: one batch is
one transaction, taken run_ids / logical_dates are reported as conflicts, reads return records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from asyncflow import DagRun, DagRunState, DagRunType, TaskState
from asyncflow.exceptions import StoreError
from asyncflow.store.base import (
    ConnectionRow,
    NewRun,
    Store,
    TIKey,
    TIRow,
    VariableRow,
    WriteBatch,
    XComKey,
    run_row,
)
from asyncflow.store.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture(params=["sqlite-memory", "sqlite-file"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    database = ":memory:" if request.param == "sqlite-memory" else tmp_path / "state.db"
    backend = SQLiteStore(database)
    await backend.open()
    try:
        yield backend
    finally:
        await backend.close()


def dag_run(run_id: str, logical_date: datetime, **changes: object) -> DagRun:
    fields: dict[str, object] = {
        "dag_id": "d",
        "run_id": run_id,
        "logical_date": logical_date,
        "data_interval_start": logical_date,
        "data_interval_end": logical_date + timedelta(days=1),
        "run_type": DagRunType.SCHEDULED,
        "state": DagRunState.QUEUED,
        "conf": {"k": run_id},
        "queued_at": logical_date,
    }
    fields.update(changes)
    return DagRun(**fields)  # type: ignore[arg-type]


def ti_row(run_id: str, task_id: str, state: TaskState = TaskState.NONE, tries: int = 0) -> TIRow:
    return TIRow(state.value, tries, 1, None, None, None, None, None, 0, "d", run_id, task_id, -1)


def new_run(run: DagRun, *task_ids: str) -> NewRun:
    return NewRun(run_row(run), [ti_row(run.run_id, t) for t in task_ids])


async def test_a_new_run_and_its_task_instances_read_back(store: Store) -> None:
    run = dag_run("r1", T0)
    result = await store.write(WriteBatch(new_runs=[new_run(run, "a", "b")]))
    assert result.conflicts == []
    assert await store.get_dag_run("d", "r1") == run
    assert await store.find_dag_run("d", T0) == run
    tis = await store.get_task_instances("d", "r1")
    assert [(ti.task_id, ti.state, ti.try_number, ti.max_tries) for ti in tis] == [
        ("a", "none", 0, 1),
        ("b", "none", 0, 1),
    ]
    assert await store.get_dag_run("d", "nope") is None


async def test_a_taken_run_id_or_logical_date_is_a_conflict_and_writes_nothing(
    store: Store,
) -> None:
    await store.write(WriteBatch(new_runs=[new_run(dag_run("r1", T0), "a")]))
    same_id = dag_run("r1", T0 + timedelta(days=5))
    same_date = dag_run("r2", T0)
    fresh = dag_run("r3", T0 + timedelta(days=1))
    result = await store.write(
        WriteBatch(new_runs=[new_run(same_id, "x"), new_run(same_date, "y"), new_run(fresh, "z")])
    )
    assert sorted(result.conflicts) == [("d", "r1"), ("d", "r2")]
    assert (await store.get_dag_run("d", "r1")) == dag_run("r1", T0)
    assert await store.get_dag_run("d", "r2") is None
    assert [ti.task_id for ti in await store.get_task_instances("d", "r1")] == ["a"]
    assert [ti.task_id for ti in await store.get_task_instances("d", "r3")] == ["z"]


async def test_updates_xcoms_and_clears(store: Store) -> None:
    run = dag_run("r1", T0)
    await store.write(WriteBatch(new_runs=[new_run(run, "a")]))
    done = run_row(dag_run("r1", T0, state=DagRunState.SUCCESS, start_date=T0, end_date=T0))
    await store.write(
        WriteBatch(
            run_updates=[done[:6]],  # type: ignore[list-item]
            ti_updates=[ti_row("r1", "a", TaskState.SUCCESS, tries=1)],
            xcoms=[("d", "r1", "a", -1, "return_value", "[1, 2]")],
        )
    )
    assert (await store.get_dag_run("d", "r1")).state == "success"  # type: ignore[union-attr]
    (ti,) = await store.get_task_instances("d", "r1")
    assert (ti.state, ti.try_number) == ("success", 1)
    assert await store.get_xcom("d", "r1", "a", "return_value") == "[1, 2]"
    assert await store.get_run_xcoms("d", "r1") == [("d", "r1", "a", -1, "return_value", "[1, 2]")]
    await store.write(WriteBatch(xcom_clears=[XComKey("d", "r1", "a")]))
    assert await store.get_xcom("d", "r1", "a", "return_value") is None


async def test_mapped_instances_rows_and_xcoms_by_map_index(store: Store) -> None:
    """A mapped task's -1 row is replaced by its instances; one instance's XComs are dropped
    without touching the others'."""
    run = dag_run("r1", T0)
    await store.write(WriteBatch(new_runs=[new_run(run, "m")]))
    instances = [ti_row("r1", "m")._replace(map_index=i) for i in range(3)]
    await store.write(
        WriteBatch(
            ti_deletes=[TIKey("d", "r1", "m", -1)],
            ti_inserts=instances,
            xcoms=[("d", "r1", "m", i, "return_value", str(i)) for i in range(3)],
        )
    )
    tis = await store.get_task_instances("d", "r1")
    assert sorted(ti.map_index for ti in tis) == [0, 1, 2]
    await store.write(WriteBatch(xcom_clears=[XComKey("d", "r1", "m", 1)]))
    assert await store.get_xcom("d", "r1", "m", "return_value", 0) == "0"
    assert await store.get_xcom("d", "r1", "m", "return_value", 1) is None
    assert await store.get_xcom("d", "r1", "m", "return_value", 2) == "2"


async def test_runs_newest_first_filtered_by_state_and_the_latest_scheduled(store: Store) -> None:
    runs = [
        dag_run("old", T0),
        dag_run("mid", T0 + timedelta(days=1), state=DagRunState.RUNNING),
        dag_run("new", T0 + timedelta(days=2), run_type=DagRunType.MANUAL),
    ]
    await store.write(WriteBatch(new_runs=[new_run(r) for r in runs]))
    assert [r.run_id for r in await store.get_dag_runs("d")] == ["new", "mid", "old"]
    assert [r.run_id for r in await store.get_dag_runs("d", limit=1)] == ["new"]
    running = await store.get_dag_runs(states=[DagRunState.RUNNING])
    assert [r.run_id for r in running] == ["mid"]
    latest = await store.latest_automated_run("d")
    assert latest is not None and latest.run_id == "mid"  # manual runs do not count


async def test_pools_and_pause_flags(store: Store) -> None:
    await store.set_pool("db", 3)
    await store.set_pool("db", 4)
    await store.set_pool("gone", 1)
    await store.set_pool("gone", None)
    assert await store.get_pools() == {"db": 4}
    await store.write(WriteBatch(dags=[("d", None, "/dags/d.py", T0.isoformat())]))
    assert await store.get_paused() == {"d": False}
    await store.write(WriteBatch(dags=[("d", True, None, None)]))
    await store.write(WriteBatch(dags=[("d", None, "/dags/d.py", T0.isoformat())]))
    assert await store.get_paused() == {"d": True}  # None keeps the flag


async def test_a_closed_store_raises_store_error() -> None:
    closed = SQLiteStore(":memory:")
    with pytest.raises(StoreError, match="not open"):
        await closed.get_dag_runs()
    assert issubclass(StoreError, OSError)


async def test_variables_are_set_replaced_listed_and_deleted(store: Store) -> None:
    await store.set_variable(VariableRow("b", '{"x": 1}', "json"))
    await store.set_variable(VariableRow("a", "one"))
    await store.set_variable(VariableRow("a", "two", "replaced"))
    assert await store.get_variables() == [
        VariableRow("a", "two", "replaced"),
        VariableRow("b", '{"x": 1}', "json"),
    ]
    assert await store.delete_variable("a") is True
    assert await store.delete_variable("a") is False
    assert [row.key for row in await store.get_variables()] == ["b"]


async def test_the_sync_access_sees_and_makes_the_same_variables(store: Store) -> None:
    await store.set_variable(VariableRow("k", "v"))
    assert store.get_variable_sync("k") == VariableRow("k", "v", "")
    assert store.get_variable_sync("missing") is None
    store.set_variable_sync(VariableRow("k2", "from a task"))
    assert VariableRow("k2", "from a task", "") in await store.get_variables()
    assert store.delete_variable_sync("k2") is True
    assert store.delete_variable_sync("k2") is False
    assert [row.key for row in await store.get_variables()] == ["k"]


async def test_the_sync_access_works_from_a_worker_thread(store: Store) -> None:
    import anyio.to_thread

    await store.set_variable(VariableRow("k", "v"))
    row = await anyio.to_thread.run_sync(store.get_variable_sync, "k")
    assert row is not None and row.value == "v"


async def test_connections_are_set_read_and_deleted(store: Store) -> None:
    row = ConnectionRow("db", "postgres", "main", "h", "s", "u", "p@ss", 5432, '{"sslmode": "x"}')
    await store.set_connection(row)
    await store.set_connection(ConnectionRow("a", "http", host="example.org"))
    assert await store.get_connections() == [ConnectionRow("a", "http", host="example.org"), row]
    assert store.get_connection_sync("db") == row
    assert store.get_connection_sync("nope") is None
    assert await store.delete_connection("db") is True
    assert await store.delete_connection("db") is False
    assert store.get_connection_sync("db") is None


# -- pages and grids ----------------------------------------------------------------------------


async def test_runs_in_pages_and_counted(store: Store) -> None:
    runs = [dag_run(f"r{i}", T0 + timedelta(days=i)) for i in range(5)]
    await store.write(WriteBatch(new_runs=[new_run(r) for r in runs]))
    page = await store.get_dag_runs("d", limit=2, offset=1)
    assert [r.run_id for r in page] == ["r3", "r2"]
    assert [r.run_id for r in await store.get_dag_runs("d", offset=3)] == ["r1", "r0"]
    assert await store.count_dag_runs("d") == 5
    assert await store.count_dag_runs("other") == 0


async def test_ti_states_of_some_runs_and_some_tasks(store: Store) -> None:
    runs = [dag_run(f"r{i}", T0 + timedelta(days=i)) for i in range(3)]
    await store.write(WriteBatch(new_runs=[new_run(r, "a", "b", "c") for r in runs]))
    await store.write(WriteBatch(ti_updates=[ti_row("r1", "b", TaskState.SUCCESS, tries=1)]))
    found = await store.get_ti_states("d", ["r1", "r2"], ["b"])
    assert sorted(found) == [("r1", "b", -1, TaskState.SUCCESS), ("r2", "b", -1, TaskState.NONE)]
    assert len(await store.get_ti_states("d", ["r0"])) == 3
    assert await store.get_ti_states("d", ["r0"], []) == []
    assert await store.get_ti_states("d", []) == []


# -- deleting history ---------------------------------------------------------------------------


async def finished_run(store: Store, run_id: str, day: int, **changes: object) -> None:
    when = T0 + timedelta(days=day)
    fields: dict[str, object] = {"state": DagRunState.SUCCESS, "start_date": when,
                                 "end_date": when, **changes}  # fmt: skip
    run = dag_run(run_id, when, **fields)
    await store.write(WriteBatch(new_runs=[new_run(run, "a")]))
    await store.write(WriteBatch(
        ti_updates=[ti_row(run_id, "a", TaskState.SUCCESS, tries=1)],
        xcoms=[("d", run_id, "a", -1, "return_value", "1")],
    ))  # fmt: skip


async def test_delete_dag_removes_every_row_of_that_dag_only(store: Store) -> None:
    await finished_run(store, "r1", 0)
    other = dag_run("x1", T0, dag_id="e")
    await store.write(WriteBatch(new_runs=[new_run(other)], dags=[("d", True, None, None)]))
    assert await store.delete_dag("d", dry_run=True) == {
        "xcom": 1, "task_instance": 1, "dag_run": 1, "dag": 1}  # fmt: skip
    assert await store.get_dag_run("d", "r1") is not None  # a dry run deletes nothing
    assert await store.delete_dag("d") == {"xcom": 1, "task_instance": 1, "dag_run": 1, "dag": 1}
    assert await store.get_dag_runs("d") == []
    assert await store.get_task_instances("d", "r1") == []
    assert await store.get_xcom("d", "r1", "a", "return_value") is None
    assert "d" not in await store.get_paused()
    assert [r.run_id for r in await store.get_dag_runs("e")] == ["x1"]


async def test_purge_keeps_active_runs_recent_runs_and_the_latest_scheduled(store: Store) -> None:
    await finished_run(store, "old-manual", 0, run_type=DagRunType.MANUAL)
    await finished_run(store, "old-scheduled", 1)
    await finished_run(store, "latest-scheduled", 2)
    await finished_run(store, "recent", 20, run_type=DagRunType.MANUAL)
    active = dag_run("active", T0 + timedelta(days=3), state=DagRunState.RUNNING, start_date=T0,
                     run_type=DagRunType.MANUAL)  # fmt: skip
    await store.write(WriteBatch(new_runs=[new_run(active, "a")]))
    cutoff = T0 + timedelta(days=10)
    would = await store.purge(cutoff, ["dag_run"], dry_run=True)
    assert would == {"xcom": 2, "task_instance": 2, "dag_run": 2}
    assert len(await store.get_dag_runs("d")) == 5
    assert await store.purge(cutoff, ["dag_run"]) == would
    left = sorted(r.run_id for r in await store.get_dag_runs("d"))
    assert left == ["active", "latest-scheduled", "recent"]
    assert await store.get_task_instances("d", "old-manual") == []
    assert await store.get_xcom("d", "old-scheduled", "a", "return_value") is None


async def test_purge_of_xcoms_alone_keeps_runs_and_task_instances(store: Store) -> None:
    await finished_run(store, "old", 0, run_type=DagRunType.MANUAL)
    await finished_run(store, "latest", 1)
    assert await store.purge(T0 + timedelta(days=5), ["xcom"]) == {"xcom": 2}
    assert len(await store.get_dag_runs("d")) == 2
    assert len(await store.get_task_instances("d", "old")) == 1
    assert await store.get_xcom("d", "latest", "a", "return_value") is None


async def test_purge_of_import_errors_and_an_unknown_table(store: Store) -> None:
    from asyncflow.records import ImportErrorRecord

    await store.replace_import_errors([
        ImportErrorRecord("/old.py", "boom", "", T0),
        ImportErrorRecord("/new.py", "boom", "", T0 + timedelta(days=30)),
    ])  # fmt: skip
    assert await store.purge(T0 + timedelta(days=1), ["import_error"]) == {"import_error": 1}
    assert [e.fileloc for e in await store.get_import_errors()] == ["/new.py"]
    with pytest.raises(ValueError, match=r"cannot clean table.*nope"):
        await store.purge(T0, ["nope"])


async def test_task_state_is_kept_per_task_instance_and_expires(store: Store) -> None:
    one, other = ("d", "r", "t", -1), ("d", "r", "t", 0)
    store.set_task_state_sync(one, "k", '"a"', T0, None)
    store.set_task_state_sync(one, "soon", "1", T0, T0 + timedelta(hours=1))
    store.set_task_state_sync(other, "k", '"b"', T0, None)
    assert store.get_task_state_sync(one, "k", T0) == '"a"'
    assert store.get_task_state_sync(other, "k", T0) == '"b"'
    assert store.get_task_state_sync(("d", "r2", "t", -1), "k", T0) is None
    assert store.get_task_state_sync(one, "soon", T0 + timedelta(minutes=59)) == "1"
    assert store.get_task_state_sync(one, "soon", T0 + timedelta(hours=1)) is None
    store.set_task_state_sync(one, "k", '"replaced"', T0, None)
    assert store.get_task_state_sync(one, "k", T0) == '"replaced"'
    assert store.delete_task_state_sync(one, "k") is True
    assert store.delete_task_state_sync(one, "k") is False
    assert store.clear_task_state_sync(other) == 1
    assert store.get_task_state_sync(other, "k", T0) is None
    import anyio.to_thread  # from a worker thread too, as sync tasks call it

    row = await anyio.to_thread.run_sync(store.get_task_state_sync, one, "soon", T0)
    assert row == "1"


async def test_asset_state_is_kept_per_asset(store: Store) -> None:
    store.set_asset_state_sync("a", "watermark", '"w1"', T0)
    store.set_asset_state_sync("b", "watermark", '"other"', T0)
    store.set_asset_state_sync("a", "watermark", '"w2"', T0)
    store.set_asset_state_sync("a", "runs", "2", T0)
    assert store.get_asset_state_sync("a", "watermark") == '"w2"'
    assert store.get_asset_state_sync("a", "missing") is None
    assert store.delete_asset_state_sync("a", "runs") is True
    assert store.delete_asset_state_sync("a", "runs") is False
    assert store.clear_asset_state_sync("a") == 1
    assert store.get_asset_state_sync("a", "watermark") is None
    assert store.get_asset_state_sync("b", "watermark") == '"other"'
