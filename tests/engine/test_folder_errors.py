"""A DAG file whose DAG cannot run (an unknown pool) is an import error; the others run."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow import DAG, Engine
from asyncflow.exceptions import UnknownPoolError
from asyncflow.operators import EmptyOperator

pytestmark = pytest.mark.anyio

HEADER = "from asyncflow import DAG\nfrom asyncflow.operators import EmptyOperator\n"


async def test_a_dag_naming_an_unknown_pool_is_an_import_error_of_its_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.py").write_text(
        HEADER
        + 'with DAG("badpool", schedule=None):\n    EmptyOperator(task_id="x", pool="nope")\n'
    )
    (tmp_path / "good.py").write_text(
        HEADER + 'with DAG("good", schedule=None):\n    EmptyOperator(task_id="x")\n'
    )
    async with Engine(
        dags_folder=tmp_path, database=tmp_path / "s.db", external_poll_interval=None
    ) as engine:
        assert sorted(engine.dags) == ["good"]
        run = await engine.trigger_dag("good")
        assert (await engine.wait_for_run("good", run.run_id, timeout=10)).state == "success"
        errors = await engine.store.get_import_errors()
    assert [e.fileloc for e in errors] == [str(tmp_path / "bad.py")]
    assert "pool 'nope' is not declared" in errors[0].message


async def test_a_dag_given_in_code_with_an_unknown_pool_fails_the_engine_at_once() -> None:
    with DAG("coded", schedule=None) as dag:
        EmptyOperator(task_id="x", pool="nope")
    with pytest.raises(UnknownPoolError, match="'nope'"):
        async with Engine(dags=[dag], database=":memory:"):
            pass


async def test_the_engine_raises_gc_thresholds_while_it_runs_and_restores_them() -> None:
    import gc

    before = gc.get_threshold()
    async with Engine(database=":memory:"):
        assert gc.get_threshold()[0] >= 50_000
    assert gc.get_threshold() == before
    async with Engine(database=":memory:", tune_gc=False):
        assert gc.get_threshold() == before
