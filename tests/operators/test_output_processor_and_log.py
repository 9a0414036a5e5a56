"""`BashOperator(output_processor=...)` / `@task.bash(output_processor=...)` turn the last
output line into the XCom (each key its own XCom with multiple_outputs), and `self.log` of any
operator writes into the attempt's log."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from asyncflow import DAG, BaseOperator, DagDefinitionError, Engine, task
from asyncflow.operators import BashOperator
from tests.engine.support import finish, run_dag

pytestmark = pytest.mark.anyio


async def test_output_processor_shapes_the_xcom_and_multiple_outputs_splits_it() -> None:
    seen: dict[str, Any] = {}
    with DAG("processed", schedule=None) as dag:
        count = BashOperator(
            task_id="count",
            bash_command="echo noise; echo '{\"files\": 3, \"folder\": \"/x\"}'",
            output_processor=json.loads,
            multiple_outputs=True,
        )

        @task.bash(output_processor=lambda line: int(line) * 2)
        def doubled() -> str:
            return "echo 21"

        @task
        def use(files: int, folder: str, number: int) -> None:
            seen.update(files=files, folder=folder, number=number)

        use(count.output["files"], count.output["folder"], doubled())

    result = await run_dag(dag)
    assert result.states == {"count": "success", "doubled": "success", "use": "success"}
    assert result.xcoms["count"] == {"files": 3, "folder": "/x"}
    assert result.xcoms["doubled"] == 42
    assert seen == {"files": 3, "folder": "/x", "number": 42}


async def test_a_failing_output_processor_fails_the_task_naming_it(tmp_path: Path) -> None:
    with DAG("bad_processor", schedule=None) as dag:
        BashOperator(task_id="t", bash_command="echo not-json", output_processor=json.loads)
    async with Engine(dags=[dag], database=":memory:", logs_folder=tmp_path) as engine:
        result = await finish(engine, "bad_processor")
    assert result.states == {"t": "failed"}
    assert "output_processor raised JSONDecodeError" in (result.tis["t"].error or "")


def test_an_output_processor_that_is_not_callable_is_a_load_error() -> None:
    with pytest.raises(DagDefinitionError, match="output_processor"), DAG("d", schedule=None):
        BashOperator(task_id="t", bash_command="true", output_processor="json")


async def test_self_log_lands_in_the_attempt_log(tmp_path: Path) -> None:
    class Talker(BaseOperator):
        def execute(self, context: Any) -> None:
            self.log.info("info from %s", self.task_id)
            self.log.debug("debug is below the level")

    class AsyncTalker(BaseOperator):
        async def execute(self, context: Any) -> None:
            self.log.warning("warning from the loop")

    with DAG("talk", schedule=None) as dag:
        Talker(task_id="sync")
        AsyncTalker(task_id="async")
    async with Engine(dags=[dag], database=":memory:", logs_folder=tmp_path) as engine:
        result = await finish(engine, "talk", run_id="r")
    assert result.states == {"sync": "success", "async": "success"}
    sync_log = (tmp_path / "talk" / "r" / "sync" / "attempt=1.log").read_text()
    async_log = (tmp_path / "talk" / "r" / "async" / "attempt=1.log").read_text()
    assert "INFO" in sync_log and "info from sync" in sync_log
    assert "debug is below" not in sync_log
    assert "WARNING" in async_log and "warning from the loop" in async_log
    assert "info from" not in async_log  # each attempt's lines in its own file


async def test_task_bash_env_may_hold_another_tasks_output() -> None:
    with DAG("bash_env_ref", schedule=None) as dag:

        @task
        def count() -> dict[str, int]:
            return {"files": 4}

        @task.bash
        def show() -> str:
            return 'echo "found $FILES"'

        counted = count()
        show.override(env={"FILES": counted["files"]})()

    result = await run_dag(dag)
    assert result.states == {"count": "success", "show": "success"}
    assert result.xcoms["show"] == "found 4"
