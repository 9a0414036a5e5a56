"""Private by default: the database, its -wal/-shm, the lock, the logs folder and the attempt
logs are created 0600/0700 under umask 022; tasks get an opaque engine id, not the path."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncflow import DAG, Engine
from asyncflow.operators import BashOperator
from asyncflow.service.lock import DatabaseLock, lock_path
from asyncflow.service.strays import MARKER, find_strays, marker_value
from tests.engine.support import finish


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.anyio
@pytest.mark.usefixtures("umask_022")
async def test_database_side_files_and_logs_are_private(tmp_path: Path) -> None:
    database = tmp_path / "state" / "asyncflow.db"
    logs = tmp_path / "logs"
    with DAG("private", schedule=None) as dag:
        BashOperator(task_id="talk", bash_command="echo secret")
    async with Engine(dags=[dag], database=str(database), logs_folder=logs) as engine:
        outcome = await finish(engine, "private")
        assert outcome.states == {"talk": "success"}
        side = [Path(f"{database}-wal"), Path(f"{database}-shm")]
        assert all(p.exists() for p in side)  # checked while the engine has them open
        assert {p.name: mode(p) for p in [database, *side]} == {
            p.name: 0o600 for p in [database, *side]
        }
    assert mode(database.parent) == 0o700
    log_files = [p for p in logs.rglob("*") if p.is_file()]
    assert log_files, "the attempt wrote no log"
    assert {mode(p) for p in log_files} == {0o600}
    assert {mode(p) for p in [logs, *logs.rglob("*")] if p.is_dir()} == {0o700}


@pytest.mark.usefixtures("umask_022")
def test_the_lock_file_is_private(tmp_path: Path) -> None:
    database = tmp_path / "asyncflow.db"
    with DatabaseLock(database):
        path = lock_path(database)
        assert path is not None
        assert mode(path) == 0o600


@pytest.mark.anyio
async def test_tasks_get_an_opaque_engine_id_not_the_database_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = tmp_path / "secret-place.db"
    dump = tmp_path / "env.txt"
    monkeypatch.setenv(MARKER, marker_value(database))  # what `asyncflow serve` exports
    with DAG("opaque", schedule=None) as dag:
        BashOperator(task_id="inherit", bash_command=f"env > {dump}.1")
        BashOperator(task_id="own_env", bash_command=f"env > {dump}.2", env={"ONLY": "this"})
    async with Engine(dags=[dag], database=str(database)) as engine:
        outcome = await finish(engine, "opaque")
    assert outcome.states == {"inherit": "success", "own_env": "success"}
    for n in (1, 2):
        seen = Path(f"{dump}.{n}").read_text()
        assert f"{MARKER}={marker_value(database)}" in seen.splitlines()  # the scan's marker
        assert "secret-place" not in seen  # and nothing that leads to the database


def test_the_stray_scan_finds_processes_by_the_opaque_id(tmp_path: Path) -> None:
    import subprocess

    database = tmp_path / "a.db"
    env = {**os.environ, MARKER: marker_value(database)}
    child = subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)
    try:
        found = find_strays(database)
        assert [s.pid for s in found] == [child.pid]
        assert find_strays(tmp_path / "b.db") == []
    finally:
        child.kill()
        child.wait()
