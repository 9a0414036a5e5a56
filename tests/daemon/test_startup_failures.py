"""A daemon that cannot start says why in one line (the file, the problem, the fix), with no
traceback, and exits 78 when only a person can fix it (the unit does not restart 78), 74 on a
full disk (restarted: space may come back). Each case is a real `asyncflow serve`."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from asyncflow.exitcodes import EX_CONFIG, EX_IOERR
from tests.daemon.helpers import daemon_env


def serve(root: Path, database: Path, wrapper: Sequence[str] = ()) -> tuple[int, list[str]]:
    """Run the daemon until it exits; its exit status and the lines it wrote."""
    (root / "dags").mkdir(exist_ok=True)
    command = [*wrapper, sys.executable, "-m", "asyncflow.cli.main", "serve",
               "--dags-folder", str(root / "dags"), "--database", str(database)]  # fmt: skip
    done = subprocess.run(command, env=daemon_env(root), capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    return done.returncode, (done.stdout + done.stderr).splitlines()


def one_line(lines: list[str], *words: str) -> str:
    assert len(lines) == 1, "\n".join(lines)
    [line] = lines
    assert "Traceback" not in line
    for word in words:
        assert word in line, line
    return line


def mounts_allowed(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "tmpfs", str(tmp_path)],
                           capture_output=True)  # fmt: skip
    return probe.returncode == 0


def in_a_mount(script: str) -> list[str]:
    """Run the daemon in a mount namespace of its own, after `script` (sh) prepared it."""
    return ["unshare", "-m", "sh", "-c", script + ' && exec "$@"', "sh"]


def test_a_database_path_that_is_a_folder(tmp_path: Path) -> None:
    database = tmp_path / "state" / "asyncflow.db"
    database.mkdir(parents=True)

    code, lines = serve(tmp_path, database)

    assert code == EX_CONFIG
    one_line(lines, f"database path {database} is a folder, not a file", "point --database")


def test_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    database = tmp_path / "state" / "asyncflow.db"
    database.parent.mkdir()
    database.write_bytes(b"this is not SQLite" * 500)

    code, lines = serve(tmp_path, database)

    assert code == EX_CONFIG
    one_line(lines, f"database {database} is corrupt", "restore it from a backup")


def test_a_database_corrupt_inside(tmp_path: Path) -> None:
    database = tmp_path / "state" / "asyncflow.db"
    database.parent.mkdir()
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE filler (a)")
    conn.executemany("INSERT INTO filler VALUES (?)", [("y" * 500,)] * 200)
    conn.commit()
    conn.close()
    data = bytearray(database.read_bytes())
    data[100:4096] = b"\xff" * 3996  # the schema page, after a valid header
    database.write_bytes(bytes(data))

    code, lines = serve(tmp_path, database)

    assert code == EX_CONFIG
    one_line(lines, f"database {database} is corrupt (database disk image is malformed)")


def test_a_database_of_a_newer_asyncflow(tmp_path: Path) -> None:
    database = tmp_path / "state" / "asyncflow.db"
    database.parent.mkdir()
    conn = sqlite3.connect(database)
    conn.execute("PRAGMA user_version=999")
    conn.commit()
    conn.close()

    code, lines = serve(tmp_path, database)

    assert code == EX_CONFIG
    one_line(lines, f"database {database} has schema version 999", "upgrade asyncflow")


@pytest.mark.parametrize("existing", [True, False], ids=["database", "no-database"])
def test_a_read_only_folder(tmp_path: Path, existing: bool) -> None:
    if not mounts_allowed(tmp_path):
        pytest.skip("needs unshare and mount (a read-only bind mount)")
    state = tmp_path / "state"
    state.mkdir()
    database = state / "asyncflow.db"
    if existing:
        sqlite3.connect(database).close()
    read_only = f"mount --bind {state} {state} && mount -o remount,bind,ro {state}"

    code, lines = serve(tmp_path, database, in_a_mount(read_only))

    assert code == EX_CONFIG
    one_line(lines, f"{state} is read-only (read-only file system)", "writable folder")


@pytest.mark.parametrize("lock", [False, True], ids=["lock-to-create", "lock-exists"])
def test_a_full_disk(tmp_path: Path, lock: bool) -> None:
    if not mounts_allowed(tmp_path):
        pytest.skip("needs unshare and mount (a small tmpfs)")
    state = tmp_path / "state"
    state.mkdir()
    database = state / "asyncflow.db"
    fill = f"mount -t tmpfs -o size=64k tmpfs {state}"
    if lock:
        fill += f" && touch {state}/asyncflow.db.lock"
    fill += f" && (dd if=/dev/zero of={state}/fill bs=1k count=128 2>/dev/null; true)"

    code, lines = serve(tmp_path, database, in_a_mount(fill))

    assert code == EX_IOERR
    one_line(lines, f"the disk holding {database} is full", "free some space")
