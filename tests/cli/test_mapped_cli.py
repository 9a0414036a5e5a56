"""A mapped task through the CLI: `tasks states-for-dag-run` shows each instance's map_index,
`tasks logs --map-index` prints one instance's attempt log."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from tests.daemon.helpers import Result, cli

MAPPED = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator

with DAG("mapped", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=True) as dag:
    BashOperator.partial(task_id="say").expand(bash_command=["echo first", "echo second"])
"""


def run(root: Path, *args: str) -> Result:
    return cli(*args, "--dags-folder", str(root / "dags"), "--database",
               str(root / "state" / "asyncflow.db"), "--home", str(root / "state"))  # fmt: skip


def test_states_and_logs_per_map_index(tmp_path: Path) -> None:
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "mapped.py").write_text(textwrap.dedent(MAPPED))
    done = run(tmp_path, "dags", "backfill", "mapped", "-s", "2024-01-01", "-e", "2024-01-01",
               "-o", "json")  # fmt: skip
    assert done.code == 0, done
    run_id = json.loads(done.out)[0]["run_id"]
    states = run(tmp_path, "tasks", "states-for-dag-run", "mapped", run_id, "-o", "json")
    assert states.code == 0, states
    rows = json.loads(states.out)
    assert [(r["task_id"], r["map_index"], r["state"]) for r in rows] == [
        ("say", 0, "success"), ("say", 1, "success"),
    ]  # fmt: skip
    second = run(tmp_path, "tasks", "logs", "mapped", "say", run_id, "--map-index", "1")
    assert second.code == 0, second
    assert "second" in second.out and "first" not in second.out
    missing = run(tmp_path, "tasks", "logs", "mapped", "say", run_id)
    assert missing.code == 1 and "attempt=1.log" in missing.err
