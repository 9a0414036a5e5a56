"""Every process a bash task starts ends with it: also those that left its process group or
session (`setsid`, `Popen(start_new_session=True)`), forked twice, or scrubbed their
environment (`env -i`); after a timeout and after a normal end alike. Real processes."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from asyncflow import DAG
from asyncflow.operators import BashOperator
from asyncflow.proctree import read_proc
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio

#: writes its pid to the file given as {pid}, then sleeps: the process that must not survive
SLEEPER = "sh -c 'echo $$ > {pid}; exec sleep 1000'"

ESCAPES = {
    "setsid": "setsid " + SLEEPER + " &",
    "start_new_session": (
        f"{sys.executable} -c \"import subprocess; subprocess.Popen(['sh', '-c', "
        "'echo \\$\\$ > {pid}; exec sleep 1000'], start_new_session=True)\""
    ),
    "double_fork": "( " + SLEEPER + " & )",
    "env_i": "env -i " + SLEEPER + " &",
    "env_i_setsid": "env -i setsid " + SLEEPER + " &",
}


def alive(pid: int) -> bool:
    proc = read_proc(pid)
    return proc is not None and proc.alive


async def escaped_pid(path: Path) -> int:
    with anyio.fail_after(5):
        while not path.exists() or not path.read_text().strip():
            await anyio.sleep(0.01)
    return int(path.read_text())


async def assert_gone(pid: int) -> None:
    with anyio.fail_after(3):
        while alive(pid):
            await anyio.sleep(0.02)


@pytest.mark.parametrize("how", sorted(ESCAPES))
async def test_an_escaped_process_ends_when_the_task_times_out(tmp_path: Path, how: str) -> None:
    pid_file = tmp_path / "pid"
    command = ESCAPES[how].format(pid=pid_file) + f"\nwhile [ ! -s {pid_file} ]; do :; done\n"
    command += "sleep 100"
    with DAG(f"escape_timeout_{how}", schedule=None) as dag:
        BashOperator(task_id="t", bash_command=command, execution_timeout=1.0)

    with anyio.fail_after(10):
        result = await run_dag(dag)

    assert result.tis["t"].state == "failed"
    await assert_gone(await escaped_pid(pid_file))


@pytest.mark.parametrize("how", sorted(ESCAPES))
async def test_an_escaped_process_ends_when_the_task_succeeds(tmp_path: Path, how: str) -> None:
    pid_file = tmp_path / "pid"
    command = ESCAPES[how].format(pid=pid_file) + f"\nwhile [ ! -s {pid_file} ]; do :; done\n"
    command += "sleep 0.6; echo done"
    with DAG(f"escape_success_{how}", schedule=None) as dag:
        BashOperator(task_id="t", bash_command=command)

    with anyio.fail_after(10):
        result = await run_dag(dag)

    assert result.tis["t"].state == "success"
    await assert_gone(await escaped_pid(pid_file))
