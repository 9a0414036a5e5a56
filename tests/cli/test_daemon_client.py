"""The CLI as a client of a running daemon (`asyncflow serve` as a subprocess, its web server
on a loopback port): state changes go through the daemon's API and are carried out at once;
with the daemon gone (stopped, or killed leaving its address file) the CLI acts on the
database as before."""

from __future__ import annotations

import json
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.helpers import Result, cli, query, run_states, wait_for
from tests.web.helpers import Web, web_daemon

DAGS = {
    "quick.py": """
from asyncflow import DAG
from asyncflow.operators import EmptyOperator
with DAG("quick", schedule=None):
    EmptyOperator(task_id="only")
""",
    "gated.py": """
from pathlib import Path
import anyio
from asyncflow import DAG, task

GATE = Path(__file__).with_name("gate")

with DAG("gated", schedule=None) as dag:
    @task
    async def wait():
        while not GATE.exists():
            await anyio.sleep(0.02)

    @task
    def after():
        return "after ran"

    wait() >> after()
""",
}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with web_daemon(tmp_path, DAGS) as w:
        yield w


def run_cli(web: Web, *args: str, code: int = 0) -> Result:
    d = web.daemon
    result = cli(*args, "--dags-folder", str(d.dags), "--database", str(d.database))
    assert result.code == code, result
    return result


def api_file(web: Web) -> Path:
    return Path(str(web.daemon.database) + ".api.json")


def ti_state(web: Web, run_id: str, task_id: str) -> str | None:
    rows = query(web.daemon.database, "SELECT state FROM task_instance WHERE run_id=? AND "
                 "task_id=?", (run_id, task_id))  # fmt: skip
    return rows[0][0] if rows else None


def requests_made(web: Web) -> int:
    return int(query(web.daemon.database, "SELECT count(*) FROM request")[0][0])


def test_the_daemon_publishes_its_address_beside_the_database(web: Web) -> None:
    path = api_file(web)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    address = json.loads(path.read_text())
    assert address["pid"] == web.daemon.pid
    assert address["url"] == web.url
    assert Path(address["token_file"]) == web.token_file
    assert web.daemon.terminate() == 0
    assert not path.exists()  # removed on a clean stop


def test_a_trigger_is_run_at_once_through_the_api(web: Web) -> None:
    for n in range(3):  # the database path waits for the daemon's 1 s poll: 0 to 1 s
        started = time.monotonic()
        run_cli(web, "dags", "trigger", "quick", "--run-id", f"at-once-{n}")
        wait_for(lambda n=n: ti_state(web, f"at-once-{n}", "only") == "success", timeout=5,
                 what="the triggered run's task")  # fmt: skip
        assert time.monotonic() - started < 0.35
    assert run_states(web.daemon.database, "quick") == ["success"] * 3


def test_clear_and_mark_of_a_running_run_answer_at_once(web: Web) -> None:
    run_cli(web, "dags", "trigger", "gated", "--run-id", "busy")
    wait_for(lambda: ti_state(web, "busy", "wait") == "running", what="the waiting task")
    started = time.monotonic()
    out = run_cli(web, "tasks", "clear", "gated", "--run-id", "busy", "--task-ids", "wait").out
    assert "wait" in out
    assert time.monotonic() - started < 0.5  # the request table would need up to a second
    assert requests_made(web) == 0  # the daemon was asked through its API, not its table
    wait_for(lambda: ti_state(web, "busy", "wait") == "running", what="the cleared task again")

    started = time.monotonic()
    out = run_cli(web, "tasks", "mark", "gated", "wait", "busy", "--state", "success").out
    assert "wait" in out and "success" in out
    wait_for(lambda: run_states(web.daemon.database, "gated") == ["success"], timeout=5,
             what="the run to go on after the mark")  # fmt: skip
    assert time.monotonic() - started < 1.0
    assert ti_state(web, "busy", "after") == "success"
    assert requests_made(web) == 0


def test_pause_and_delete_through_the_api(web: Web) -> None:
    run_cli(web, "dags", "pause", "quick")
    with web.client() as client:
        assert client.get("/api/v2/dags/quick").json()["is_paused"] is True
    run_cli(web, "dags", "unpause", "quick")
    run_cli(web, "dags", "trigger", "quick", "--run-id", "doomed")
    wait_for(lambda: run_states(web.daemon.database, "quick") == ["success"], what="the run")

    run_cli(web, "dags", "trigger", "gated", "--run-id", "keeps-it")
    wait_for(lambda: ti_state(web, "keeps-it", "wait") == "running", what="the waiting task")
    refused = run_cli(web, "dags", "delete", "gated", "-y", code=1)
    assert "queued or running" in refused.err and "keeps-it" in refused.err

    out = run_cli(web, "dags", "delete", "quick", "-y", "-o", "json").out
    assert json.loads(out)["deleted"]["dag_run"] == 1
    assert run_states(web.daemon.database, "quick") == []
    # the DAG is still in the folder: the daemon schedules it afresh and runs it again
    run_cli(web, "dags", "trigger", "quick", "--run-id", "doomed")
    wait_for(lambda: run_states(web.daemon.database, "quick") == ["success"], what="a new run")


def test_with_the_daemon_stopped_or_killed_the_cli_acts_on_the_database(web: Web) -> None:
    d = web.daemon
    d.kill9()
    assert api_file(web).exists()  # left behind; its pid is dead
    result = run_cli(web, "dags", "trigger", "quick", "--run-id", "offline")
    assert "no daemon is running" in result.err
    assert run_states(d.database, "quick") == ["queued"]
    run_cli(web, "dags", "pause", "quick")
    assert query(d.database, "SELECT is_paused FROM dag WHERE dag_id='quick'") == [(1,)]

    d.start()  # a new daemon adopts the queued run and overwrites the address file
    wait_for(lambda: json.loads(api_file(web).read_text())["pid"] == d.pid, what="the file")
    run_cli(web, "dags", "unpause", "quick")
    wait_for(lambda: run_states(d.database, "quick") == ["success"], what="the queued run")
    assert os.path.exists(api_file(web))
