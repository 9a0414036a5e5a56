"""Under the daemon (a child subreaper), the processes a bash task starts end with it: also
those that left its session (`setsid`, `start_new_session`), forked twice or scrubbed their
environment (`env -i`); none is left, not even as a zombie, after a timeout or a shutdown."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.helpers import Daemon, daemon, ti_states, wait_for

ESCAPES = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator

PIDS = {pids!r}
SLEEPER = "sh -c 'echo $$ > {{}}; exec sleep 1000'"
COMMAND = "\\n".join([
    "setsid " + SLEEPER.format(PIDS + "/setsid") + " &",
    "{python} -c \\"import subprocess; subprocess.Popen(['sh', '-c', 'echo \\\\$\\\\$ > "
    + PIDS + "/new_session; exec sleep 1000'], start_new_session=True)\\"",
    "( " + SLEEPER.format(PIDS + "/double_fork") + " & )",
    "env -i " + SLEEPER.format(PIDS + "/env_i") + " &",
    "env -i setsid " + SLEEPER.format(PIDS + "/env_i_setsid") + " &",
    "sleep 100",
])

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule="@once") as dag:
    BashOperator(task_id="escapes", bash_command=COMMAND, execution_timeout={timeout})
"""

NAMES = ("setsid", "new_session", "double_fork", "env_i", "env_i_setsid")


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Daemon]:
    with daemon(tmp_path) as running:
        yield running


def escaped(pids: Path) -> dict[str, int]:
    found = {}
    for name in NAMES:
        text = (pids / name).read_text().strip() if (pids / name).exists() else ""
        if text:
            found[name] = int(text)
    return found if len(found) == len(NAMES) else {}


def left(pids: dict[str, int]) -> dict[str, str]:
    """name -> state of each escaped process that still exists (a zombie counts)."""
    states = {}
    for name, pid in pids.items():
        try:
            states[name] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
    return states


def test_nothing_is_left_after_a_timeout(d: Daemon, tmp_path: Path) -> None:
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    d.write_dag("escapes.py", ESCAPES.format(pids=str(pids_dir), python=sys.executable,
                                             dag_id="escapes", timeout=3))  # fmt: skip
    d.start()
    pids = wait_for(lambda: escaped(pids_dir), what="the escaped processes")
    wait_for(lambda: ti_states(d.database, "escapes") == {"escapes": "failed"}, timeout=15,
             what="the timeout")  # fmt: skip

    wait_for(lambda: not left(pids), timeout=5, what=f"no process left: {left(pids)}")
    assert d.terminate() == 0


def test_nothing_is_left_after_a_shutdown(d: Daemon, tmp_path: Path) -> None:
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    d.write_dag("escapes.py", ESCAPES.format(pids=str(pids_dir), python=sys.executable,
                                             dag_id="escapes", timeout=None))  # fmt: skip
    d.start()
    pids = wait_for(lambda: escaped(pids_dir), what="the escaped processes")
    assert left(pids).keys() == set(NAMES)

    assert d.terminate() == 0  # drain_timeout=1 s (daemon_env)

    assert left(pids) == {}
