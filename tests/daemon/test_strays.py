"""Task processes left by a daemon killed with -9 are found by their marker and ended."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from asyncflow.service.strays import MARKER, find_strays, kill_strays, marker_value
from tests.daemon.helpers import wait_for


def spawn(env: dict[str, str], command: str = "sleep 300") -> subprocess.Popen[bytes]:
    """A task subprocess as the engine starts one: bash in its own session."""
    return subprocess.Popen(["bash", "-c", command], env=env, start_new_session=True)


def test_a_marked_process_group_is_found_and_killed(tmp_path: Path) -> None:
    database = tmp_path / "asyncflow.db"
    # `sleep 300; true` keeps bash as the group leader with sleep as its child: the whole
    # group must go, not just the process that carries the marker.
    stray = spawn({**os.environ, MARKER: marker_value(database)}, "sleep 300; true")
    other_db = spawn({**os.environ, MARKER: marker_value(tmp_path / "other.db")})
    unmarked = spawn({k: v for k, v in os.environ.items() if k != MARKER})
    try:
        found = find_strays(database)
        assert stray.pid in {s.pid for s in found}
        assert {s.pgid for s in found} == {stray.pid}  # its own session and group
        assert other_db.pid not in {s.pid for s in found}

        killed = kill_strays(database, grace=2.0)

        assert stray.pid in {s.pid for s in killed}
        assert stray.wait(5) == -signal.SIGTERM
        assert find_strays(database) == []  # the group's sleep child is gone too
        assert other_db.poll() is None and unmarked.poll() is None
    finally:
        for process in (stray, other_db, unmarked):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(5)


def test_a_process_ignoring_sigterm_gets_sigkill(tmp_path: Path) -> None:
    database = tmp_path / "asyncflow.db"
    marked = {**os.environ, MARKER: marker_value(database)}
    stubborn = spawn(marked, "trap '' TERM; sleep 300; true")
    try:
        # bash has installed its trap once its child sleep exists
        children = Path(f"/proc/{stubborn.pid}/task/{stubborn.pid}/children")
        wait_for(lambda: children.read_text().strip(), timeout=5, what="bash to start sleep")
        kill_strays(database, grace=0.2)
        assert stubborn.wait(5) == -signal.SIGKILL
    finally:
        if stubborn.poll() is None:
            os.killpg(stubborn.pid, signal.SIGKILL)
            stubborn.wait(5)


def test_nothing_to_do_without_strays(tmp_path: Path) -> None:
    assert kill_strays(tmp_path / "none.db") == []
