"""Issue 9's figures: a DAG file that spins at import (`while True: pass`) beside a healthy one.

    python -m benchmarks.spinning_dag [IMPORT_TIMEOUT_S]

Starts `asyncflow serve` (a real subprocess) on both files, waits for READY, then prints the CPU
the daemon and its children use over the next 5 s (the file is parsed in a child process that
is killed at its time limit, so this should be near zero) and how long `asyncflow dags trigger`
on the healthy DAG takes beside it (the CLI imports only the files that name the DAG).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.daemon.helpers import daemon

SPIN = "from asyncflow import DAG\nwhile True:\n    pass\n"
OK = (
    "from asyncflow import DAG\nfrom asyncflow.operators.empty import EmptyOperator\n"
    "with DAG('ok', schedule=None) as dag:\n    EmptyOperator(task_id='t')\n"
)


def cpu_seconds(pid: int) -> float:
    """CPU time of `pid` and all its descendants."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            children = Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
        except OSError:
            continue
        for child in children:
            with contextlib.suppress(OSError):  # it ended meanwhile
                total += cpu_seconds(int(child))
    return total


def main() -> int:
    timeout = sys.argv[1] if len(sys.argv) > 1 else "30"
    root = Path(tempfile.mkdtemp(prefix="spin-"))
    with daemon(root, dagbag_import_timeout=timeout) as d:
        d.write_dag("spin.py", SPIN)
        d.write_dag("ok.py", OK)
        started = time.monotonic()
        d.start(ready=False)
        assert d.notify is not None
        d.notify.wait_for("READY=1", timeout=120)
        print(f"READY after {time.monotonic() - started:.1f} s")
        before, started = cpu_seconds(d.pid), time.monotonic()
        time.sleep(5)
        used, wall = cpu_seconds(d.pid) - before, time.monotonic() - started
        print(f"daemon (+children) CPU over {wall:.1f} s after READY: {100 * used / wall:.1f}% "
              "of a core")  # fmt: skip
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "asyncflow.cli.main", "dags", "trigger", "ok", "--dags-folder",
             str(d.dags), "--database", str(d.database)],
            env=dict(d.env), capture_output=True, text=True, check=False,
        )  # fmt: skip
        print(f"dags trigger ok: exit {done.returncode} in {time.monotonic() - started:.2f} s")
        print("daemon exit status", d.terminate(60))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
