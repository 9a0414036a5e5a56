"""Each attempt's output goes to its own file: logs/<dag>/<run>/<task>/attempt=<n>.log."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from asyncflow import DAG, Engine, task
from asyncflow.operators import BashOperator

pytestmark = pytest.mark.anyio


async def test_each_attempt_writes_its_own_log(tmp_path: Path) -> None:
    tries: list[int] = []
    with DAG("logged", schedule=None) as dag:

        @task(retries=1, retry_delay=timedelta(0))
        def flaky() -> str:
            tries.append(1)
            print(f"print from try {len(tries)}")
            logging.getLogger("user.code").warning("logging from try %d", len(tries))
            if len(tries) == 1:
                raise ValueError("first try fails")
            return "ok"

        flaky() >> BashOperator(task_id="shell", bash_command="echo from bash; echo to stderr >&2")

    logs = tmp_path / "logs"
    async with Engine(dags=[dag], database=":memory:", logs_folder=logs) as engine:
        run = await engine.trigger_dag("logged", run_id="r1")
        assert (await engine.wait_for_run("logged", "r1", timeout=10)).state == "success"

    first = (logs / "logged" / "r1" / "flaky" / "attempt=1.log").read_text()
    second = (logs / "logged" / "r1" / "flaky" / "attempt=2.log").read_text()
    assert "print from try 1" in first and "logging from try 1" in first
    assert "ValueError: first try fails" in first  # the traceback is in the attempt's log
    assert "print from try 2" in second and "try 1" not in second
    shell = (logs / "logged" / "r1" / "shell" / "attempt=1.log").read_text()
    assert "from bash" in shell and "to stderr" in shell
    assert run.run_id == "r1"
