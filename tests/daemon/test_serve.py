"""`asyncflow serve` as a real subprocess: systemd notifications, the DAG folder while running,
crash recovery after kill -9, graceful stop on SIGTERM, one daemon per database."""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from asyncflow.service.strays import find_strays
from tests.daemon.helpers import Daemon, cli, daemon, query, run_states, ti_states, wait_for

ONCE = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import PythonOperator

with DAG("{dag_id}", start_date=datetime(2024, 1, 1), schedule="@once") as dag:
    PythonOperator(task_id="hello", python_callable=lambda: "{dag_id}")
"""


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Daemon]:
    with daemon(tmp_path) as running:
        yield running


def test_ready_status_and_watchdog_on_the_notify_socket(d: Daemon) -> None:
    d.write_dag("once.py", ONCE.format(dag_id="once"))
    d.start(ready=False, env={"WATCHDOG_USEC": "200000"})  # ping every 0.1 s
    assert d.notify is not None
    ready = d.notify.wait_for("READY=1")
    assert any(line.startswith("STATUS=1 DAG, ") for line in ready.split("\n")), ready
    d.notify.wait_for("WATCHDOG=1", timeout=5)
    d.notify.wait_for("WATCHDOG=1", timeout=5)
    assert d.terminate() == 0
    assert any("STOPPING=1" in m for m in d.notify.messages) or d.notify.wait_for("STOPPING=1")
    assert '"asyncflow started"' in d.log()


def test_a_dag_file_added_while_running_is_scheduled(d: Daemon) -> None:
    d.write_dag("first.py", ONCE.format(dag_id="first"))
    d.start()
    wait_for(lambda: run_states(d.database, "first") == ["success"], what="first's run")
    d.write_dag("second.py", ONCE.format(dag_id="second"))  # rescanned every 0.2 s
    wait_for(lambda: run_states(d.database, "second") == ["success"], what="second's run")
    assert d.terminate() == 0


BROKEN = """
from asyncflow import DAG
with DAG("broken" as dag:   # a syntax error
    pass
"""


def test_a_broken_dag_file_does_not_stop_the_others(d: Daemon) -> None:
    d.write_dag("broken.py", BROKEN)
    d.write_dag("good.py", ONCE.format(dag_id="good"))
    d.start()
    wait_for(lambda: run_states(d.database, "good") == ["success"], what="good's run")
    result = cli("dags", "list-import-errors", "--dags-folder", str(d.dags),
                 "--database", str(d.database), "-o", "json")  # fmt: skip
    assert result.code == 1
    assert "broken.py" in result.out and "SyntaxError" in result.out
    stored = query(d.database, "SELECT fileloc FROM import_error")
    assert [Path(f).name for (f,) in stored] == ["broken.py"]
    assert d.terminate() == 0


FIFTY = """
import os
from datetime import datetime, timedelta
import anyio
from asyncflow import DAG, task

LEDGER = {ledger!r}

@task
async def work(n):
    await anyio.sleep(0.15)
    fd = os.open(LEDGER, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"t{{n:02d}}\\n".encode())  # the side effect: one line per execution
    os.close(fd)
    return n

with DAG("fifty", start_date=datetime(2024, 1, 1), schedule="@once",
         default_args={{"retries": 0, "retry_delay": timedelta(seconds=0)}}) as dag:
    for n in range(50):
        work.override(task_id=f"t{{n:02d}}")(n)
"""


def test_kill_9_mid_run_then_restart_completes_every_task_exactly_once(
    d: Daemon, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger.txt"
    d.write_dag("fifty.py", FIFTY.format(ledger=str(ledger)))
    d.start(env={"ASYNCFLOW_PARALLELISM": "5"})  # ten waves of 0.15 s

    def successes() -> int:
        return sum(1 for s in ti_states(d.database, "fifty").values() if s == "success")

    wait_for(lambda: successes() >= 15, what="15 tasks to succeed")
    d.kill9()
    at_kill = ti_states(d.database, "fifty")
    committed = {t for t, s in at_kill.items() if s == "success"}
    assert 15 <= len(committed) < 50, "the kill must land in the middle of the run"
    lost = {t for t, s in at_kill.items() if s == "running"}
    assert lost, "some attempt was running at the kill"

    d.start(env={"ASYNCFLOW_PARALLELISM": "5"})
    wait_for(lambda: run_states(d.database, "fifty") == ["success"], timeout=20,
             what="the run to finish after the restart")  # fmt: skip
    assert d.terminate() == 0

    states = ti_states(d.database, "fifty")
    assert len(states) == 50 and set(states.values()) == {"success"}
    runs = Counter(ledger.read_text().split())
    assert set(runs) == set(states)  # every task ran
    # A success committed before the kill is never re-run; an attempt that was running at the
    # kill was lost and ran again (at most once more).
    assert {t: runs[t] for t in committed} == dict.fromkeys(committed, 1)
    assert max(runs.values()) <= 2
    # The engine failing is not the task failing: with retries=0, every attempt lost at the
    # kill ran again without using a try, and the run succeeded without a human.
    tries = dict(query(d.database, "SELECT task_id, try_number FROM task_instance"))
    assert set(tries.values()) == {1}


SLEEPERS = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator

with DAG("sleepers", start_date=datetime(2024, 1, 1), schedule="@once") as dag:
    for n in range(3):
        BashOperator(task_id=f"sleep_{{n}}", bash_command="sleep 30; echo {retries}",
                     retries={retries})
"""


def test_sigterm_drains_then_ends_subprocess_tasks_and_exits_0(d: Daemon) -> None:
    d.write_dag("sleepers.py", SLEEPERS.format(retries=0))
    d.start()  # drain_timeout=1 s (daemon_env)
    wait_for(lambda: len(find_strays(d.database)) >= 6, what="3 bash + 3 sleep processes")
    started = time.monotonic()
    assert d.terminate() == 0
    elapsed = time.monotonic() - started
    assert elapsed < 1 + 4, f"took {elapsed:.1f} s for a 1 s drain"
    assert find_strays(d.database) == []  # no task process left behind
    rows = query(d.database, "SELECT state, try_number, error FROM task_instance "
                             "WHERE dag_id='sleepers'")  # fmt: skip
    assert len(rows) == 3
    # a redeploy is not the task failing: with retries=0, the interrupted attempts cost no try
    # and wait, scheduled, for the next start
    assert all(state == "scheduled" and tries == 0 and "shut down" in error
               for state, tries, error in rows), rows  # fmt: skip
    assert run_states(d.database, "sleepers") == ["running"]
    log = d.log()
    assert '"draining"' in log and '"asyncflow stopped"' in log


def test_task_processes_of_a_killed_daemon_are_ended_at_the_next_start(d: Daemon) -> None:
    d.write_dag("sleepers.py", SLEEPERS.format(retries=0))
    d.start()
    strays = wait_for(lambda: len(find_strays(d.database)) >= 6 and find_strays(d.database),
                      what="the task processes")  # fmt: skip
    d.kill9()
    assert {s.pid for s in find_strays(d.database)} == {s.pid for s in strays}  # orphans

    d.start()  # READY=1 comes after the strays are gone
    assert find_strays(d.database) == []
    for stray in strays:
        assert not Path(f"/proc/{stray.pid}").exists() or _zombie(stray.pid)
    # the lost attempts cost no try (retries=0): they run again, counted as lost once
    wait_for(lambda: set(ti_states(d.database, "sleepers").values()) == {"running"},
             what="the lost attempts to run again")  # fmt: skip
    rows = query(d.database, "SELECT try_number, lost_count FROM task_instance "
                             "WHERE dag_id='sleepers'")  # fmt: skip
    assert rows == [(1, 1)] * 3
    assert run_states(d.database, "sleepers") == ["running"]
    assert d.terminate() == 0


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_a_second_daemon_on_the_same_database_refuses_to_start(d: Daemon, tmp_path: Path) -> None:
    d.start()
    second = Daemon(tmp_path, d.env, log_name="second.log")  # same dags and database
    try:
        started = time.monotonic()
        second.start(ready=False)
        assert second.wait(10) == 69
        assert time.monotonic() - started < 5
        assert f"PID {d.pid}" in second.log()
    finally:
        second.close()
    assert d.process is not None and d.process.poll() is None  # the first one runs on
    assert d.terminate() == 0


def test_sigint_also_stops_gracefully(d: Daemon) -> None:
    d.start()
    assert d.process is not None
    os.kill(d.pid, signal.SIGINT)
    assert d.wait() == 0
