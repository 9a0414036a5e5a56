"""`BashOperator`: env / append_env / cwd, exit code 99 skips, the last stdout line is the XCom."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow import DAG
from asyncflow.operators import BashOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


async def test_the_last_line_of_stdout_is_the_xcom() -> None:
    with DAG("bash_xcom", schedule=None) as dag:
        BashOperator(task_id="lines", bash_command="echo first; echo second; printf 'last'")
        BashOperator(task_id="newline", bash_command="echo one; echo two")
        BashOperator(task_id="silent", bash_command="true")
    result = await run_dag(dag)
    assert result.states == {"lines": "success", "newline": "success", "silent": "success"}
    assert result.xcoms == {"lines": "last", "newline": "two", "silent": None}


async def test_env_replaces_the_environment_unless_append_env(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ASYNCFLOW_TEST_OUTER", "outer")
    command = 'echo "${ASYNCFLOW_TEST_OUTER:-unset}/${INNER:-unset}"'
    with DAG("bash_env", schedule=None) as dag:
        BashOperator(task_id="inherit", bash_command=command)
        BashOperator(task_id="replace", bash_command=command, env={"INNER": "inner"})
        BashOperator(
            task_id="append", bash_command=command, env={"INNER": "inner"}, append_env=True
        )
    result = await run_dag(dag)
    assert result.xcoms == {
        "inherit": "outer/unset",
        "replace": "unset/inner",
        "append": "outer/inner",
    }


async def test_cwd_is_the_working_directory(tmp_path: Path) -> None:
    with DAG("bash_cwd", schedule=None) as dag:
        BashOperator(task_id="pwd", bash_command="pwd -P", cwd=str(tmp_path))
        BashOperator(task_id="missing", bash_command="pwd", cwd=str(tmp_path / "nope"))
    result = await run_dag(dag)
    assert result.xcoms["pwd"] == str(tmp_path.resolve())
    assert result.states["missing"] == "failed"
    assert "is not a directory" in (result.tis["missing"].error or "")


async def test_exit_code_99_skips_and_other_codes_fail() -> None:
    with DAG("bash_exit", schedule=None) as dag:
        BashOperator(task_id="skip99", bash_command="exit 99")
        BashOperator(task_id="fail1", bash_command="echo partial; exit 3")
        BashOperator(task_id="custom", bash_command="exit 3", skip_on_exit_code=[3, 4])
        BashOperator(task_id="no_skip", bash_command="exit 99", skip_on_exit_code=None)
    result = await run_dag(dag)
    assert result.states == {
        "skip99": "skipped",
        "fail1": "failed",
        "custom": "skipped",
        "no_skip": "failed",
    }
    assert "exit code 3" in (result.tis["fail1"].error or "")
    assert "exit code 99" in (result.tis["no_skip"].error or "")


async def test_stdin_is_closed() -> None:
    with DAG("bash_stdin", schedule=None) as dag:
        BashOperator(task_id="read", bash_command="cat; echo done")
    result = await run_dag(dag, timeout=5)
    assert result.xcoms["read"] == "done"


async def test_bash_tasks_run_concurrently() -> None:
    with DAG("bash_parallel", schedule=None) as dag:
        for n in range(8):
            BashOperator(task_id=f"sleep_{n}", bash_command="sleep 0.3; echo ok")
    result = await run_dag(dag, timeout=5)
    assert set(result.xcoms.values()) == {"ok"}
    run = result.run
    assert run.end_date is not None and run.start_date is not None
    # eight 0.3 s sleeps one after another would take 2.4 s
    assert (run.end_date - run.start_date).total_seconds() < 1.5
