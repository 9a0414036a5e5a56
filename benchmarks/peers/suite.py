"""`python -m benchmarks.peers`: asyncflow, Apache Airflow and Prefect on the same small shapes,
in the same run, each as a whole process with its own fresh SQLite database.

For each run: the process's wall time (start-up included), the span from the first task's start
to the last task's end (the run itself, as the tasks saw it), and the peak RSS of the largest
process of its tree (`wait4`'s rusage). Ratios are peer / asyncflow: how many times faster
asyncflow was, on the whole process and on the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.report import DASH, TIMES, describe_machine, machine, number, update_readme

HERE = Path(__file__).resolve().parent
BENCH = HERE.parent
ROOT = BENCH.parent
VENVS = BENCH / ".peers"
RUN_TIMEOUT_S = 900
INSTALL_TIMEOUT_S = 1800
START_MARKER, END_MARKER = "<!-- peers:start -->", "<!-- peers:end -->"


@dataclass(frozen=True)
class Peer:
    name: str
    package: str  # its version decides whether the virtualenv is ready
    version: str
    requirements: tuple[str, ...]  # pinned; found with `pip index versions`
    why: str = ""


PEERS = (
    Peer("airflow", "apache-airflow", "3.3.2", ("apache-airflow==3.3.2",)),
    Peer(
        "prefect",
        "prefect",
        "3.8.8",
        ("prefect==3.8.8", "fastapi==0.139.0"),
        why="prefect 3.9.1 needs certifi>=2026.10.19, not on this index; 3.8.8 with the newest "
        "fastapi fails at import (Body(min_items=...)), so fastapi is pinned to its minimum",
    ),
)


@dataclass(frozen=True)
class Shape:
    name: str  # fanout | chain | io
    n: int
    sleep_s: float = 0.0

    @property
    def tasks(self) -> int:
        return self.n + 2 if self.name == "fanout" else self.n

    @property
    def title(self) -> str:
        sleep = f" x sleep {self.sleep_s * 1e3:.0f} ms" if self.sleep_s else ""
        return f"{self.name} N={self.n:,}{sleep}"


SHAPES = (Shape("fanout", 100), Shape("fanout", 1000), Shape("chain", 100), Shape("io", 1000, 0.05))
QUICK_SHAPES = (Shape("fanout", 10), Shape("chain", 10), Shape("io", 10, 0.05))


# -- installing ---------------------------------------------------------------------------------
def python_of(peer: Peer) -> Path:
    return VENVS / peer.name / "bin" / "python"


def installed_version(peer: Peer) -> str | None:
    python = python_of(peer)
    if not python.exists():
        return None
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({peer.package!r}))"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() if done.returncode == 0 else None


def ensure(peer: Peer) -> str | None:
    """Create the peer's virtualenv and install it (minutes, once); None or why it failed."""
    if installed_version(peer) == peer.version:
        return None
    VENVS.mkdir(parents=True, exist_ok=True)
    log = VENVS / f"{peer.name}-install.log"
    base = getattr(sys, "_base_executable", sys.executable)
    python = str(python_of(peer))
    steps = [
        [base, "-m", "venv", "--clear", str(VENVS / peer.name)],
        [python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
        [python, "-m", "pip", "install", "--quiet", *peer.requirements],
    ]
    print(
        f"installing {' '.join(peer.requirements)} into {VENVS / peer.name} (log: {log})",
        file=sys.stderr,
        flush=True,
    )
    with log.open("w") as out:
        for step in steps:
            try:
                done = subprocess.run(
                    step,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=INSTALL_TIMEOUT_S,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                return f"`{' '.join(step[2:])}` timed out after {INSTALL_TIMEOUT_S} s"
            if done.returncode != 0:
                return f"`{' '.join(step[2:])}` failed (exit {done.returncode}), see {log}"
    return None


# -- running ------------------------------------------------------------------------------------
def run_process(
    command: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> tuple[float, int, float]:
    """Run `command` to its end: (wall seconds, exit code, peak RSS MiB of its largest process)."""
    with log.open("w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        killer = threading.Timer(RUN_TIMEOUT_S, os.killpg, (proc.pid, signal.SIGKILL))
        killer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, proc.returncode, usage.ru_maxrss / 1024


def read_marks(path: Path) -> list[tuple[float, float]]:
    if not path.exists():
        return []
    marks = []
    for line in path.read_text().splitlines():
        start, end = line.split()
        marks.append((float(start), float(end)))
    return marks


def measure(system: str, shape: Shape) -> dict[str, Any]:
    """One whole-process run of `shape` with `system`, in a fresh temporary folder."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{system}-") as tmp:
        folder = Path(tmp)
        marks = folder / "marks.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PREFECT"))}
        args = [shape.name, str(shape.n), str(shape.sleep_s), str(marks)]
        try:
            command = PREPARE[system](folder, env, shape, marks, args)
        except RuntimeError as exc:
            return {"error": str(exc)}
        wall, code, rss = run_process(command, env, folder / "run.log")
        if code != 0:
            tail = (folder / "run.log").read_text().strip().splitlines()[-3:]
            return {"error": f"exit {code}: {' | '.join(tail)[:400]}"}
        got = read_marks(marks)
    if len(got) != shape.tasks:
        return {"error": f"{len(got)} of {shape.tasks} tasks recorded a run"}
    span = max(end for _, end in got) - min(start for start, _ in got)
    return {"whole_s": wall, "span_s": span, "tis_per_s": shape.tasks / span, "peak_rss_mib": rss}


def _asyncflow(
    folder: Path, env: dict[str, str], shape: Shape, marks: Path, args: list[str]
) -> list[str]:
    return [sys.executable, str(HERE / "run_asyncflow.py"), *args]


def _airflow(
    folder: Path, env: dict[str, str], shape: Shape, marks: Path, args: list[str]
) -> list[str]:
    dags = folder / "dags"
    dags.mkdir()
    shutil.copy(HERE / "airflow_dag.py", dags / "bench_dag.py")
    env.update(
        {
            "AIRFLOW_HOME": str(folder / "home"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "BENCH_SHAPE": shape.name,
            "BENCH_N": str(shape.n),
            "BENCH_SLEEP_S": str(shape.sleep_s),
            "BENCH_MARKS": str(marks),
        }
    )
    airflow = str(python_of(PEERS[0]).parent / "airflow")
    _, code, _ = run_process([airflow, "db", "migrate"], env, folder / "migrate.log")  # untimed
    if code != 0:
        raise RuntimeError(f"`airflow db migrate` exited {code}")
    return [airflow, "dags", "test", shape.name]


def _prefect(
    folder: Path, env: dict[str, str], shape: Shape, marks: Path, args: list[str]
) -> list[str]:
    env.update({"PREFECT_HOME": str(folder / "home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"})
    return [str(python_of(PEERS[1])), str(HERE / "run_prefect.py"), *args]


PREPARE: dict[str, Callable[[Path, dict[str, str], Shape, Path, list[str]], list[str]]] = {
    "asyncflow": _asyncflow,
    "airflow": _airflow,
    "prefect": _prefect,
}


# -- reporting ----------------------------------------------------------------------------------
def summarize_runs(runs: list[dict[str, Any]]) -> dict[str, Any]:
    good = [r for r in runs if "error" not in r]
    out: dict[str, Any] = {"errors": [r["error"] for r in runs if "error" in r]}
    for key in ("whole_s", "span_s", "tis_per_s", "peak_rss_mib"):
        values = sorted(r[key] for r in good)
        if values:
            out[key] = {"median": values[len(values) // 2], "min": values[0], "max": values[-1]}
    return out


def markdown(doc: dict[str, Any]) -> str:
    lines = [
        f"Measured with `{doc['command']}` ({doc['repeat']} run each, median when more) on: "
        f"{describe_machine(doc['machine'])}. Peers: {doc['versions']}.",
        "",
        "| shape | system | whole process s | first task start → last task end s | TI/s in the run "
        "| peak RSS MiB | asyncflow faster: whole process | asyncflow faster: run |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    notes = []
    for shape in doc["shapes"]:
        rows = doc["results"][shape]
        base = rows.get("asyncflow", {})
        for system, row in rows.items():
            if "whole_s" not in row:
                reason = "; ".join(row["errors"]) or "not run"
                lines.append(f"| {shape} | {system} | error | | | | | |")
                notes.append(f"- {shape}, {system}: {reason}")
                continue
            cells = [
                number(row[k]["median"]) for k in ("whole_s", "span_s", "tis_per_s", "peak_rss_mib")
            ]
            ratios = []
            for key in ("whole_s", "span_s"):
                if system == "asyncflow" or key not in base:
                    ratios.append(DASH)
                else:
                    ratio = row[key]["median"] / base[key]["median"]
                    ratios.append(f"{ratio:,.0f}{TIMES}" if ratio >= 10 else f"{ratio:.1f}{TIMES}")
            lines.append(f"| {shape} | {system} | {' | '.join(cells)} | {' | '.join(ratios)} |")
    for name, reason in doc["skipped"].items():
        notes.append(f"- {name}: not run: {reason}")
    for peer in PEERS:
        if peer.why:
            notes.append(f"- {peer.name} {peer.version}: {peer.why}")
    return "\n".join(lines + (["", *notes] if notes else [])) + "\n"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="runs per shape and system (default 1: Airflow takes minutes)",
    )
    parser.add_argument("--only", default="airflow,prefect", help="peers to run")
    parser.add_argument("--quick", action="store_true", help="tiny N (a check that it works)")
    parser.add_argument("--json", type=Path, default=BENCH / "results" / "peers.json")
    parser.add_argument(
        "--readme", default=str(BENCH / "README.md"), help="README to put the table into, or 'none'"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    wanted = [p for p in PEERS if p.name in args.only.split(",")]
    skipped: dict[str, str] = {}
    for peer in wanted:
        problem = ensure(peer)
        if problem is not None:
            skipped[peer.name] = problem
            print(f"{peer.name}: {problem}; carrying on without it", file=sys.stderr, flush=True)
    systems = ["asyncflow", *(p.name for p in wanted if p.name not in skipped)]
    shapes = QUICK_SHAPES if args.quick else SHAPES
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rep in range(args.repeat):
        for shape in shapes:
            for system in systems:
                outcome = measure(system, shape)
                runs.setdefault((shape.title, system), []).append(outcome)
                shown = outcome.get("error") or (
                    f"whole {outcome['whole_s']:.2f} s, run {outcome['span_s']:.3f} s"
                )
                print(
                    f"[{rep + 1}/{args.repeat}] {shape.title} {system}: {shown}",
                    file=sys.stderr,
                    flush=True,
                )
    doc = {
        "command": " ".join(
            ["python -m benchmarks.peers", *(sys.argv[1:] if argv is None else argv)]
        ),
        "machine": machine(),
        "versions": ", ".join(f"{p.package} {p.version}" for p in wanted),
        "repeat": args.repeat,
        "skipped": skipped,
        "shapes": [s.title for s in shapes],
        "results": {
            s.title: {system: summarize_runs(runs[(s.title, system)]) for system in systems}
            for s in shapes
        },
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    table = markdown(doc)
    print(table)
    if args.readme != "none":
        update_readme(Path(args.readme), table, START_MARKER, END_MARKER, "Peers")
    return 0
