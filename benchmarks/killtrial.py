"""Kill -9 trial: does lost work come back without a human, and is nothing done twice?

    python -m benchmarks.killtrial                 # 20 trials, 100 Bash tasks, retries=0
    python -m benchmarks.killtrial --trials 5 --tasks 50 --seed 7

Each trial starts `asyncflow serve` (a real subprocess) on a fresh database with one DAG of
N independent Bash tasks (retries=0, each sleeping 50-250 ms and appending to a ledger when its
body starts and when it ends), waits a random time into the run, sends SIGKILL, starts the
daemon again and waits (bounded) for the run to finish. Per trial it reports:

- whether the run ended `success` with no human action;
- successes recorded twice: a task whose success was committed before the kill and whose body
  ran again after it (must be 0);
- bodies that ran again (lost attempts re-run: at-least-once delivery);
- bodies that had finished while their success was not yet committed (finished, then lost).
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from pathlib import Path

DAG_SOURCE = """
from datetime import datetime
from asyncflow import DAG
from asyncflow.operators import BashOperator

with DAG("trial", start_date=datetime(2024, 1, 1), schedule="@once", catchup=True,
         default_args={{"retries": 0}}) as dag:
    for n in range({tasks}):
        BashOperator(
            task_id=f"t{{n:03d}}",
            bash_command=(
                f"echo start t{{n:03d}} >> {ledger}; sleep 0.{{5 + n % 20:02d}}; "
                f"echo end t{{n:03d}} >> {ledger}"
            ),
        )
"""


def query(database: Path, sql: str) -> list[tuple[object, ...]]:
    if not database.exists():
        return []
    conn = sqlite3.connect(database, timeout=10)
    try:
        return conn.execute(sql).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def start(root: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(root / "daemon.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "asyncflow.cli.main", "serve", "--dags-folder",
         str(root / "dags"), "--database", str(root / "state" / "asyncflow.db")],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip


def wait(check: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def trial(tasks: int, rng: random.Random) -> dict[str, object]:
    root = Path(tempfile.mkdtemp(prefix="killtrial-"))
    (root / "dags").mkdir()
    ledger = root / "ledger.txt"
    (root / "dags" / "trial.py").write_text(
        textwrap.dedent(DAG_SOURCE.format(tasks=tasks, ledger=ledger))
    )
    database = root / "state" / "asyncflow.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ASYNCFLOW_", "NOTIFY_"))}
    env.update(ASYNCFLOW_HOME=str(root / "state"), ASYNCFLOW_LOG_FORMAT="json",
               ASYNCFLOW_PARALLELISM="16", ASYNCFLOW_PROCESS_SLOTS="16",
               ASYNCFLOW_DRAIN_TIMEOUT="1")  # fmt: skip
    daemon = start(root, env)
    states = "SELECT task_id, state FROM task_instance WHERE dag_id='trial'"
    wait(lambda: query(database, states), 20)
    time.sleep(rng.uniform(0.0, 2.0))  # the run takes ~2 s at 16 at once
    daemon.send_signal(signal.SIGKILL)
    daemon.wait()
    at_kill = dict(query(database, states))
    committed = {t for t, s in at_kill.items() if s == "success"}
    lines = ledger.read_text().split("\n") if ledger.exists() else []
    ended_before = {line.split()[1] for line in lines if line.startswith("end ")}

    daemon = start(root, env)
    finished = wait(
        lambda: [r[0] for r in query(database, "SELECT state FROM dag_run")] in
        (["success"], ["failed"]), 60,
    )  # fmt: skip
    daemon.send_signal(signal.SIGTERM)
    daemon.wait(timeout=30)
    final = [r[0] for r in query(database, "SELECT state FROM dag_run")]
    starts = Counter(
        line.split()[1] for line in ledger.read_text().splitlines() if line.startswith("start ")
    )
    return {
        "killed_with_committed": len(committed),
        "running_at_kill": sum(1 for s in at_kill.values() if s == "running"),
        "completed_without_human": finished and final == ["success"],
        "successes_recorded_twice": sum(1 for t in committed if starts[t] > 1),
        "bodies_rerun": sum(n - 1 for n in starts.values() if n > 1),
        "finished_but_uncommitted": len(ended_before - committed),
        "all_tasks_ran": len(starts) == tasks,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.killtrial")
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    rows = []
    for n in range(1, args.trials + 1):
        row = trial(args.tasks, rng)
        rows.append(row)
        print(f"trial {n:2d}: " + ", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    completed = sum(1 for r in rows if r["completed_without_human"])
    twice = sum(int(r["successes_recorded_twice"]) for r in rows)  # type: ignore[call-overload]
    rerun = sum(int(r["bodies_rerun"]) for r in rows)  # type: ignore[call-overload]
    lost = sum(int(r["running_at_kill"]) for r in rows)  # type: ignore[call-overload]
    print(
        f"\n{args.trials} kill -9 trials of {args.tasks} Bash tasks (retries=0): "
        f"{completed}/{args.trials} runs completed without a human; "
        f"{twice} successes recorded twice; {lost} attempts running at the kill; "
        f"{rerun} bodies re-ran"
    )
    return 0 if completed == args.trials and twice == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
