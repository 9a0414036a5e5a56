"""The example DAGs in dags/: each loads, validates and runs offline, out of the box."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asyncflow.loading.dagbag import DagBag
from tests.daemon.helpers import cli

DAGS = Path(__file__).resolve().parents[2] / "dags"
EXPECTED = {"daily_report", "io_fanout", "tutorial", "tutorial_fan_in"}


def test_every_example_dag_file_loads_and_validates() -> None:
    bag = DagBag(DAGS)
    bag.collect()
    assert bag.import_errors == {}
    assert set(bag.dags) == EXPECTED
    assert all(dag.frozen for dag in bag.dags.values())  # validate() passed
    tutorial = bag.dags["tutorial"]
    assert tutorial.task_dict["tugas_1"].downstream_task_ids == {"tugas_2"}
    assert tutorial.task_dict["tugas_2"].downstream_task_ids == {"tugas_3"}
    assert tutorial.catchup is False  # no 2,900-run catchup on the first `make run`
    fan_in = bag.dags["tutorial_fan_in"]
    assert fan_in.task_dict["tugas_3"].upstream_task_ids == {"tugas_1_2", "tugas_2"}
    assert fan_in.task_dict["tugas_1_2"].upstream_task_ids == {"tugas_1"}
    fanout = bag.dags["io_fanout"]
    assert len(fanout.task_dict) > 1_000
    assert {t.pool for t in fanout.tasks if t.task_id != "summarize"} == {"api"}


def test_no_example_puts_run_configuration_into_a_shell_command() -> None:
    from asyncflow.operators import BashOperator

    bag = DagBag(DAGS)
    bag.collect()
    commands = [t.bash_command for d in bag.dags.values() for t in d.tasks
                if isinstance(t, BashOperator)]  # fmt: skip
    assert commands
    for command in commands:
        assert not any(word in command for word in ("conf", "params", "dag_run")), command


@pytest.mark.parametrize("dag_id", sorted(EXPECTED))
def test_each_example_runs_to_success(dag_id: str, tmp_path: Path) -> None:
    result = cli("dags", "test", dag_id, "--dags-folder", str(DAGS),
                 "--config", str(DAGS / "asyncflow.toml"),
                 "--database", str(tmp_path / "asyncflow.db"), "-o", "json")  # fmt: skip
    assert result.code == 0, result.err[-2000:]
    states = {row["task_id"]: row["state"] for row in json.loads(result.out)}
    assert set(states.values()) == {"success"}
