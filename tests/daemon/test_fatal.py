"""The daemon always ends: a scheduler that fails ends the process with 70 whatever threads are
left, and SIGTERM ends it within the drain timeout plus a short grace even when no commit
succeeds. Both as real subprocesses, with the fault injected by tests/daemon/faults.py."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncflow.exitcodes import EX_IOERR, EX_SOFTWARE
from asyncflow.service.daemon import STOP_GRACE
from tests.daemon.helpers import Daemon, cli, daemon, run_states, ti_states, wait_for

FAULTS = Path(__file__).with_name("faults.py")

MANUAL = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import PythonOperator

with DAG("manual", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    PythonOperator(task_id="hello", python_callable=lambda: "hello")
"""

SLEEPER = """
from datetime import datetime, timedelta
from asyncflow import DAG
from asyncflow.operators import BashOperator

with DAG("sleeper", start_date=datetime(2024, 1, 1), schedule="@once") as dag:
    BashOperator(task_id="sleep", bash_command="sleep {seconds}", retries=2,
                 retry_delay=timedelta(0))
"""


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Daemon]:
    with daemon(tmp_path) as running:
        running.script = FAULTS
        yield running


def fault(d: Daemon, kind: str) -> tuple[Path, dict[str, str]]:
    flag = d.root / f"fault-{kind}"
    return flag, {"ASYNCFLOW_TEST_FAULT": f"{kind}:{flag}"}


def test_a_failed_scheduler_ends_the_process_with_70_within_seconds(d: Daemon) -> None:
    d.write_dag("manual.py", MANUAL)
    flag, env = fault(d, "crash")
    d.start(env=env)
    flag.touch()  # from now on, the daemon's next commit raises a RuntimeError
    result = cli("dags", "trigger", "manual", "--dags-folder", str(d.dags),
                 "--database", str(d.database))  # fmt: skip
    assert result.code == 0, result
    started = time.monotonic()
    code = d.wait(timeout=15)  # it adopts the run within a second, and its commit fails
    assert code == EX_SOFTWARE, d.log()
    assert time.monotonic() - started < 10
    log = d.log()
    assert "injected fault" in log and "unexpected error" in log


def test_sigterm_ends_the_daemon_when_no_commit_succeeds_and_the_next_start_recovers(
    d: Daemon,
) -> None:
    d.write_dag("sleeper.py", SLEEPER.format(seconds=3))
    flag, env = fault(d, "full")
    d.start(env=env)  # drain_timeout=1 s (daemon_env)
    wait_for(lambda: ti_states(d.database, "sleeper") == {"sleep": "running"},
             what="the task to run")  # fmt: skip
    flag.touch()  # the disk is full from now on
    started = time.monotonic()
    code = d.terminate(timeout=30)
    elapsed = time.monotonic() - started
    assert elapsed < 1 + STOP_GRACE + 2, f"took {elapsed:.1f} s for a 1 s drain:\n{d.log()}"
    assert code == EX_IOERR, d.log()
    assert "injected fault: database or disk is full" in d.log()

    flag.unlink()  # space again: the store is the truth, the next start recovers
    d.start(env=env)
    wait_for(lambda: run_states(d.database, "sleeper") == ["success"], timeout=20,
             what="the recovered run to succeed")  # fmt: skip
    assert d.terminate() == 0
