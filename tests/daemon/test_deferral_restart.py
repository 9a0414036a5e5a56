"""A deferred task survives `kill -9` of the daemon: after the restart it waits on its stored
trigger again and resumes from it, without running `execute` a second time."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.helpers import Daemon, daemon, query, run_states, ti_states, wait_for

DEFERS = """
from datetime import datetime
from asyncflow import DAG, BaseOperator
from asyncflow.triggers import FileTrigger

LEDGER = {ledger!r}


class WaitForFlag(BaseOperator):
    def execute(self, context):
        with open(LEDGER, "a") as f:
            f.write("execute\\n")
        self.defer(trigger=FileTrigger({flag!r}, poke_interval=0.05), method_name="resume",
                   kwargs={{"note": "kept across the kill"}})

    def resume(self, context, event=None, note=""):
        with open(LEDGER, "a") as f:
            f.write(f"resume {{event}} {{note}} try={{context['ti'].try_number}}\\n")
        return note


with DAG("defers", start_date=datetime(2024, 1, 1), schedule="@once") as dag:
    WaitForFlag(task_id="wait")
"""


@pytest.fixture
def d(tmp_path: Path) -> Iterator[Daemon]:
    with daemon(tmp_path) as running:
        yield running


def test_a_deferred_task_resumes_from_its_trigger_after_kill_9(d: Daemon, tmp_path: Path) -> None:
    ledger, flag = tmp_path / "ledger.txt", tmp_path / "flag"
    d.write_dag("defers.py", DEFERS.format(ledger=str(ledger), flag=str(flag)))
    d.start()
    wait_for(lambda: ti_states(d.database, "defers") == {"wait": "deferred"},
             what="the task to defer")  # fmt: skip
    stored = query(d.database, "SELECT classpath, next_method FROM deferral")
    assert stored == [("asyncflow.triggers.file.FileTrigger", "resume")]
    d.kill9()

    d.start()
    flag.write_text("go")
    wait_for(lambda: run_states(d.database, "defers") == ["success"], timeout=20,
             what="the run to finish after the restart")  # fmt: skip
    assert d.terminate() == 0
    assert ledger.read_text().splitlines() == [
        "execute", f"resume {flag} kept across the kill try=1",
    ]
    assert query(d.database, "SELECT try_number FROM task_instance") == [(1,)]
    assert query(d.database, "SELECT count(*) FROM deferral") == [(0,)]
