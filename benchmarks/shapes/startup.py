"""`startup`: whole processes, timed from outside.

- `import asyncflow` against `python -c pass` (the interpreter's own start), median of `runs`
  runs, interleaved so that noise hits both alike;
- a one-task `asyncflow dags test` of a tiny DAG file as a whole process (import, DAG file,
  engine on a database, one attempt, exit). Until the CLI has `dags test`, the same through
  `python -c` + `dag.test()`, labelled so in the notes.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TINY_DAG = """\
from datetime import datetime, timezone

from asyncflow import DAG, task


@task
async def hello():
    return None


with DAG("tiny", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=timezone.utc)) as dag:
    hello()
"""


def measure(what: str, runs: int, loop: str) -> dict[str, float | str]:
    if what == "import":
        return _imports(runs)
    return _dags_test(runs, use_uvloop=loop != "asyncio")


def _time(command: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{command} exited {done.returncode}: {done.stderr[-2000:]}")
    return elapsed


def _imports(runs: int) -> dict[str, float | str]:
    python = sys.executable
    bare: list[float] = []
    imported: list[float] = []
    for _ in range(runs):
        bare.append(_time([python, "-c", "pass"]))
        imported.append(_time([python, "-c", "import asyncflow"]))
    return {
        "import_ms": statistics.median(imported) * 1e3,
        "pass_ms": statistics.median(bare) * 1e3,
        "import_only_ms": (statistics.median(imported) - statistics.median(bare)) * 1e3,
    }


def _dags_test(runs: int, *, use_uvloop: bool) -> dict[str, float | str]:
    with tempfile.TemporaryDirectory(prefix="asyncflow-bench-") as folder:
        dag_file = Path(folder) / "dags" / "tiny.py"
        dag_file.parent.mkdir()
        dag_file.write_text(TINY_DAG)
        env = {**os.environ, "ASYNCFLOW_HOME": folder}
        cli = Path(sys.executable).parent / "asyncflow"
        command = [
            str(cli),
            "dags",
            "test",
            "tiny",
            "--dags-folder",
            str(dag_file.parent),
            "--database",
            str(Path(folder) / "cli.db"),
        ]
        how = "asyncflow dags test"
        try:
            if not cli.exists():
                raise RuntimeError("no asyncflow command installed")
            _time(command, env)  # it works, and the DAG file's bytecode is cached for all runs
        except RuntimeError as exc:
            reason = str(exc).strip().splitlines()[-1][:120]
            how = f"python -c + dag.test() (the CLI failed: {reason})"
            script = (
                "import runpy; "
                f"runpy.run_path({str(dag_file)!r})['dag'].test(use_uvloop={use_uvloop})"
            )
            command = [sys.executable, "-c", script]
        times = [_time(command, env) for _ in range(runs)]
    return {"dags_test_s": statistics.median(times), "dags_test_how": how}
