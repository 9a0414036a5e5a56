"""`db check` on a corrupt database says `corrupt`, names the file and exits 1 (no traceback)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.helpers import Result, cli


def run(root: Path, database: Path, *args: str) -> Result:
    return cli(*args, "--dags-folder", str(root), "--database", str(database),
               "--home", str(root / "state"))  # fmt: skip


@pytest.mark.parametrize("damage", ["not_a_database", "malformed_pages"])
def test_db_check_says_corrupt_and_exits_non_zero(tmp_path: Path, damage: str) -> None:
    database = tmp_path / "asyncflow.db"
    if damage == "not_a_database":
        database.write_bytes(b"this is not SQLite " * 1000)
    else:
        assert run(tmp_path, database, "db", "migrate").code == 0
        with database.open("r+b") as file:  # wipe the pages after the header page
            file.seek(4096)
            file.write(b"\xff" * 8192)
    result = run(tmp_path, database, "db", "check")
    assert result.code == 1
    assert "corrupt" in result.err and str(database) in result.err
    assert "Traceback" not in result.err
