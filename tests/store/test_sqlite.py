"""The SQLite store: WAL, numbered migrations, one run per run_id and per logical_date, state
that survives a restart, and group commit (one transaction per burst, not per row)."""

from __future__ import annotations

import sqlite3
import threading
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG, AsyncflowError, DagRunAlreadyExists, Engine
from asyncflow.exceptions import StoreError
from asyncflow.operators import EmptyOperator, PythonOperator
from asyncflow.store import migrations
from asyncflow.store.sqlite import SQLiteStore
from tests.engine.support import finish

pytestmark = pytest.mark.anyio

WHEN = datetime(2024, 5, 1, tzinfo=UTC)


def small_dag(dag_id: str = "store") -> DAG:
    with DAG(dag_id, schedule=None) as dag:
        PythonOperator(task_id="value", python_callable=lambda: {"n": 1}) >> EmptyOperator(
            task_id="end"
        )
    return dag


def connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path)


async def test_the_database_is_wal_and_at_the_latest_migration(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    async with Engine(dags=[small_dag()], database=database):
        with connect(database) as db:
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("PRAGMA user_version").fetchone()[0] == len(migrations.STEPS)
    assert len(migrations.STEPS) == migrations.LATEST >= 1


async def test_the_schema_enforces_one_run_per_run_id_and_per_logical_date(
    tmp_path: Path,
) -> None:
    database = tmp_path / "state.db"
    async with Engine(dags=[small_dag()], database=database) as engine:
        await finish(engine, "store", run_id="r1", logical_date=WHEN)
    with connect(database) as db:
        row = db.execute("SELECT * FROM dag_run WHERE run_id='r1'").fetchone()
        columns = [c[1] for c in db.execute("PRAGMA table_info(dag_run)")]
        values = dict(zip(columns, row, strict=True))
        values.pop("id")
        for changed in ({"logical_date": "2030-01-01T00:00:00+00:00"}, {"run_id": "r2"}):
            duplicate = {**values, **changed}
            with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
                db.execute(
                    f"INSERT INTO dag_run ({', '.join(duplicate)}) "
                    f"VALUES ({', '.join('?' * len(duplicate))})",
                    tuple(duplicate.values()),
                )


async def test_triggering_a_taken_run_id_or_logical_date_raises() -> None:
    async with Engine(dags=[small_dag()], database=":memory:") as engine:
        first = await finish(engine, "store", run_id="r1", logical_date=WHEN)
        with pytest.raises(DagRunAlreadyExists, match=r"'store'.*run_id 'r1'") as caught:
            await engine.trigger_dag("store", run_id="r1", logical_date=datetime(2030, 1, 1))
        assert isinstance(caught.value, AsyncflowError) and isinstance(caught.value, ValueError)
        with pytest.raises(DagRunAlreadyExists, match="logical_date"):
            await engine.trigger_dag("store", run_id="r2", logical_date=WHEN)
        assert [r.run_id for r in await engine.get_dag_runs("store")] == [first.run.run_id]


async def test_a_run_still_in_flight_also_blocks_its_run_id_and_logical_date() -> None:
    release = anyio.Event()

    async def blocked() -> None:
        await release.wait()

    with DAG("in_flight", schedule=None) as dag:
        PythonOperator(task_id="blocked", python_callable=blocked)
    async with Engine(dags=[dag], database=":memory:") as engine:
        run = await engine.trigger_dag("in_flight", run_id="r1", logical_date=WHEN)
        with pytest.raises(DagRunAlreadyExists):
            await engine.trigger_dag("in_flight", run_id="r1", logical_date=datetime(2030, 1, 1))
        with pytest.raises(DagRunAlreadyExists):
            await engine.trigger_dag("in_flight", run_id="r2", logical_date=WHEN)
        release.set()
        assert (await engine.wait_for_run("in_flight", run.run_id, timeout=5)).state == "success"


async def test_state_survives_reopening_the_database(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    async with Engine(dags=[small_dag()], database=database) as engine:
        first = await finish(engine, "store", conf={"k": [1, 2]}, logical_date=WHEN)
    async with Engine(dags=[small_dag()], database=database) as reopened:
        (run,) = await reopened.get_dag_runs("store")
        tis = await reopened.get_task_instances("store", run.run_id)
        xcom = await reopened.get_xcom("store", run.run_id, "value")
        with pytest.raises(DagRunAlreadyExists):
            await reopened.trigger_dag("store", logical_date=WHEN)
    assert run == first.run
    assert {ti.task_id: ti for ti in tis} == first.tis
    assert xcom == {"n": 1}


async def test_a_fan_out_of_200_tasks_is_group_committed(tmp_path: Path) -> None:
    async def noop() -> None:
        return None

    with DAG("fan_out", schedule=None) as dag:
        start = EmptyOperator(task_id="start")
        for n in range(200):
            start >> PythonOperator(task_id=f"t{n:03}", python_callable=noop)
    async with Engine(dags=[dag], database=tmp_path / "state.db", parallelism=256) as engine:
        before = engine.statistics()["commits"]
        result = await finish(engine, "fan_out")
        commits = engine.statistics()["commits"] - before
        store_commits = engine.store.commits  # type: ignore[attr-defined]
    assert set(result.states.values()) == {"success"}
    # each task changes state three times (scheduled, queued/running, success): one commit
    # per change would be 600, one per task 200; one per burst is a handful
    assert commits <= 60, commits  # measured: 14
    assert store_commits >= commits


async def test_an_in_memory_database_writes_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Engine(dags=[small_dag()], database=":memory:") as engine:
        result = await finish(engine, "store")
    assert result.run.state == "success"
    assert list(tmp_path.iterdir()) == []


async def test_the_database_folder_is_created(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "folder" / "state.db"
    async with Engine(dags=[small_dag()], database=database) as engine:
        await finish(engine, "store")
    assert database.exists()


async def test_a_database_from_a_newer_asyncflow_is_refused(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    with connect(database) as db:
        db.execute(f"PRAGMA user_version={migrations.LATEST + 1}")
    store = SQLiteStore(database)
    try:
        with pytest.raises(StoreError, match="upgrade asyncflow"):
            async with Engine(dags=[small_dag()], store=store):
                pass  # pragma: no cover
    finally:
        await store.close()  # see the test below: open() leaks its connection here


async def test_a_refused_database_leaves_no_connection_thread(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    with connect(database) as db:
        db.execute(f"PRAGMA user_version={migrations.LATEST + 1}")
    before = set(threading.enumerate())
    store = SQLiteStore(database)
    try:
        with pytest.raises(StoreError):
            await store.open()
        for thread in set(threading.enumerate()) - before:
            thread.join(timeout=5)  # it may still be on its way out; it must not stay
        leaked = [t for t in set(threading.enumerate()) - before if t.is_alive()]
        assert leaked == []
    finally:
        await store.close()


async def test_migrations_are_applied_once(tmp_path: Path) -> None:
    database = tmp_path / "state.db"
    for _ in range(2):  # the second open finds the schema current and changes nothing
        async with Engine(dags=[small_dag()], database=database) as engine:
            await finish(engine, "store")
    with connect(database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert {"dag", "dag_run", "task_instance", "xcom"} <= tables
        assert db.execute("SELECT count(*) FROM dag_run").fetchone()[0] == 2
