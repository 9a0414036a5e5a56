"""`tasks list` stays bounded on a huge DAG: ids only by default, capped cells in the table,
every value whole in `-o json`."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from asyncflow.cli.output import MAX_CELL, format_table
from tests.daemon.helpers import Result, cli

N = 20_000
WIDE = f"""
from asyncflow import DAG
from asyncflow.operators import EmptyOperator

with DAG("wide", schedule=None) as dag:
    join = EmptyOperator(task_id="join")
    for n in range({N - 1}):
        EmptyOperator(task_id=f"a_rather_long_task_name_number_{{n:05d}}") >> join
"""


@pytest.fixture(scope="module")
def wide(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wide")
    (root / "dags").mkdir()
    (root / "dags" / "wide.py").write_text(textwrap.dedent(WIDE))
    return root


def run(root: Path, *args: str) -> Result:
    result = cli(*args, "--dags-folder", str(root / "dags"), "--database",
                 str(root / "state" / "asyncflow.db"), "--home", str(root / "state"))  # fmt: skip
    assert result.code == 0, result
    return result


def test_tasks_list_prints_ids_one_a_line(wide: Path) -> None:
    lines = run(wide, "tasks", "list", "wide").out.splitlines()
    assert len(lines) == N
    assert lines[0] == "a_rather_long_task_name_number_00000"  # upstream first
    assert lines[-1] == "join"
    assert max(map(len, lines)) == len(lines[0])


def test_tasks_list_details_caps_every_cell(wide: Path) -> None:
    out = run(wide, "tasks", "list", "wide", "--details").out
    lines = out.splitlines()
    assert len(lines) == N + 2  # header and rule
    # six columns of at most MAX_CELL characters and their separators: the 19,999 upstream
    # ids of `join` (700 kB) pad no row
    assert max(map(len, lines)) <= 6 * (MAX_CELL + 2)
    assert len(out) < N * 6 * (MAX_CELL + 2)
    assert lines[-1].startswith("join") and "..." in lines[-1]


def test_tasks_list_json_has_every_value_whole(wide: Path) -> None:
    rows = json.loads(run(wide, "tasks", "list", "wide", "-o", "json").out)
    assert len(rows) == N
    assert len(rows[-1]["upstream"]) == N - 1


def test_a_long_cell_is_cut_and_pads_nothing() -> None:
    rows = [{"a": "x" * 10_000, "b": "end"}, {"a": "short", "b": "end"}]
    lines = format_table(rows, ["a", "b"]).splitlines()
    assert max(map(len, lines)) == MAX_CELL + 2 + len("end")
    assert lines[2].startswith("x" * (MAX_CELL - 3) + "...")
