"""reload_dags(): the DAG folder changes while the engine runs. Added DAGs are scheduled,
changed ones replaced, removed or broken ones stop (their history stays), fixed ones return."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow import DagNotFound, Engine

pytestmark = pytest.mark.anyio

HEADER = "from asyncflow import DAG\nfrom asyncflow.operators import EmptyOperator\n"


def dag_file(tasks: list[str]) -> str:
    body = "".join(f'    EmptyOperator(task_id="{t}")\n' for t in tasks)
    return HEADER + 'with DAG("d", schedule=None):\n' + body


async def test_changed_removed_broken_and_fixed_files(tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    path = dags / "d.py"
    path.write_text(dag_file(["a"]))
    async with Engine(
        dags_folder=dags, database=tmp_path / "s.db", external_poll_interval=None
    ) as engine:
        first = await engine.trigger_dag("d", run_id="first")
        await engine.wait_for_run("d", first.run_id, timeout=10)

        path.write_text(dag_file(["a", "b"]))  # changed: new runs use the new DAG
        changes = await engine.reload_dags()
        assert changes.changed == ["d"]
        assert sorted(engine.get_dag("d").task_ids) == ["a", "b"]
        second = await engine.trigger_dag("d", run_id="second")
        await engine.wait_for_run("d", second.run_id, timeout=10)
        assert [t.task_id for t in await engine.get_task_instances("d", "second")] == ["a", "b"]

        path.write_text(HEADER + "this is not python\n")  # broken: stops, error recorded
        await engine.reload_dags()
        assert "d" not in engine.dags
        with pytest.raises(DagNotFound):
            await engine.trigger_dag("d")
        assert list(engine.import_errors) == [str(path)]
        assert [e.fileloc for e in await engine.store.get_import_errors()] == [str(path)]

        path.write_text(dag_file(["a"]))  # fixed: back, and the error is gone
        await engine.reload_dags()
        assert "d" in engine.dags and engine.import_errors == {}
        assert await engine.store.get_import_errors() == []

        path.unlink()  # removed: no new runs; the history stays
        changes = await engine.reload_dags()
        assert changes.removed == ["d"] and "d" not in engine.dags
        assert [r.run_id for r in await engine.store.get_dag_runs("d")] == ["second", "first"]
