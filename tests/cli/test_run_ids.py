"""A run_id is checked at trigger time (Airflow's rule: letters, digits and `_ . ~ : + -`, at
most 250 characters, no `..`), with an error naming the DAG and the value; and the CLI changes
state only through the store-level commands (asyncflow/engine/commands.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

import asyncflow.cli
from asyncflow.exceptions import InvalidRunIdError
from asyncflow.models.dagrun import RUN_ID_MAX_LENGTH, validate_run_id
from tests.cli.test_commands import Env
from tests.daemon.helpers import query


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.mark.parametrize(
    "run_id",
    [
        "r1",
        "manual__2024-01-01T00:00:00+00:00",
        f"manual__{datetime(2024, 1, 1, 6, 30, 0, 123456, tzinfo=UTC).isoformat()}",
        "release~1.2:nightly",
        "x" * RUN_ID_MAX_LENGTH,
    ],
)
def test_allowed_run_ids(run_id: str) -> None:
    assert validate_run_id("demo", run_id) == run_id


@pytest.mark.parametrize(
    ("run_id", "why"),
    [
        ("x" * (RUN_ID_MAX_LENGTH + 1), "251 characters long; the limit is 250"),
        ("a/b", "'/'"),
        ("with space", "' '"),
        ("naïve", "'ï'"),
        ("a..b", "'..' is not allowed"),
        ("", "empty"),
    ],
)
def test_rejected_run_ids_name_the_dag_the_value_and_why(run_id: str, why: str) -> None:
    with pytest.raises(InvalidRunIdError) as caught:
        validate_run_id("demo", run_id)
    message = str(caught.value)
    assert "DAG 'demo'" in message and why in message
    assert repr(run_id[:20])[:-1] in message  # the value, shortened when long
    assert isinstance(caught.value, ValueError)


def test_dags_trigger_rejects_a_bad_run_id_and_writes_nothing(env: Env) -> None:
    long = env.run("dags", "trigger", "ok", "--run-id", "r" * 300)
    assert long.code == 1, long
    assert "DAG 'ok'" in long.err and "300 characters" in long.err
    slash = env.run("dags", "trigger", "ok", "--run-id", "../../etc")
    assert slash.code == 1 and "'/'" in slash.err, slash
    assert query(env.database, "SELECT run_id FROM dag_run") == []


def test_the_cli_writes_no_rows_and_no_sql_of_its_own() -> None:
    """Its state changes go through asyncflow.engine.commands; it reads through the store."""
    folder = Path(asyncflow.cli.__file__).parent
    raw = re.compile(r"WriteBatch|NewRun|run_row|ti_updates|\.execute\(|\bINSERT\b|\bUPDATE\b")
    found = [f"{path.name}: {m.group()}" for path in sorted(folder.glob("*.py"))
             for m in raw.finditer(path.read_text())]  # fmt: skip
    assert found == []
