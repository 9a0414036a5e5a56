"""Attempt logs in one format (a timestamp on every line, whatever wrote it), `logging` inside
a task attributed to the task, and a library that stays silent when its host configures no
logging."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

TASKS_DAG = '''
import logging
import sys

from asyncflow import DAG
from asyncflow.operators import BashOperator, PythonOperator

log = logging.getLogger(__name__)


def talk():
    print("printed line")
    print("two", end="")
    print(" parts")
    sys.stderr.write("to stderr\\n")
    log.warning("logged by the DAG file")
    logging.getLogger("some.library").error("a library speaks")
    print("no newline at the end", end="")


def fail():
    raise RuntimeError("it broke")


with DAG("talky", schedule=None) as dag:
    PythonOperator(task_id="talk", python_callable=talk)
    BashOperator(task_id="shell", bash_command="echo from bash; echo again")
    PythonOperator(task_id="fail", python_callable=fail)
'''

SCRIPT = '''
import anyio, logging, sys
from asyncflow import Engine
{setup}

async def main():
    async with Engine(dags_folder=sys.argv[1], database=":memory:",
                      logs_folder=sys.argv[2]) as engine:
        run = await engine.trigger_dag("talky")
        await engine.wait_for_run("talky", run.run_id, timeout=30)
        print("RUN", run.run_id, file=sys.__stdout__)

anyio.run(main)
'''

LINE = re.compile(r"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00\] [A-Z]+ [\w.-]+: ")


def run_script(tmp_path: Path, setup: str = "") -> subprocess.CompletedProcess[str]:
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    (dags / "talky.py").write_text(TASKS_DAG)
    script = tmp_path / "host.py"
    script.write_text(SCRIPT.format(setup=setup))
    return subprocess.run(
        [sys.executable, str(script), str(dags), str(tmp_path / "logs")],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip


def attempt_log(tmp_path: Path, task_id: str) -> list[str]:
    [path] = (tmp_path / "logs" / "talky").glob(f"*/{task_id}/attempt=1.log")
    return path.read_text().splitlines()


def test_every_line_of_an_attempt_log_has_one_format(tmp_path: Path) -> None:
    run_script(tmp_path)
    talk = attempt_log(tmp_path, "talk")
    shell = attempt_log(tmp_path, "shell")
    fail = attempt_log(tmp_path, "fail")
    for line in [*talk, *shell, *fail]:
        assert LINE.match(line), line
    bodies = [LINE.sub("", line, count=1) for line in talk]
    assert bodies == [
        "printed line",
        "two parts",
        "to stderr",
        "logged by the DAG file",
        "a library speaks",
        "no newline at the end",
    ]
    sources = [line.split("] ", 1)[1].split(":", 1)[0] for line in talk]
    assert sources == [
        "INFO stdout", "INFO stdout", "WARNING stderr",
        "WARNING talk",  # the DAG file's logger (a hashed module name) is the task's
        "ERROR some.library", "INFO stdout",
    ]  # fmt: skip
    assert [LINE.sub("", line, count=1) for line in shell][:2] == ["from bash", "again"]
    text = "\n".join(fail)
    assert "in fail" in text and "RuntimeError: it broke" in text
    assert "asyncflow/engine" not in text  # the user's frames only


def test_an_embedding_application_that_configures_nothing_sees_nothing(tmp_path: Path) -> None:
    done = run_script(tmp_path)
    assert done.stdout.startswith("RUN ")
    assert done.stderr == ""


def test_an_application_that_configures_logging_gets_readable_lines(tmp_path: Path) -> None:
    setup = textwrap.dedent("""
        logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                            format="%(levelname)s %(name)s %(message)s")
    """)
    done = run_script(tmp_path, setup)
    err = done.stderr
    assert "WARNING asyncflow.runner task attempt failed dag_id='talky'" in err
    assert "RuntimeError: it broke" in err
    assert "{'event'" not in err  # a message, not a dict


def test_every_library_logger_goes_through_stdlib_logging() -> None:
    """structlog's own loggers print when nobody configured structlog: the package uses
    `asyncflow.logs.get_logger` everywhere, which never does."""
    package = Path(__file__).parents[2] / "asyncflow"
    direct = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "structlog.get_logger(" in path.read_text()
    ]
    assert direct == []
