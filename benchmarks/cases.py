"""What the suite measures: each `Case` is one shape with its parameters, the metrics shown in the
table, and the targets from issue 5. `plan()` lists them, in table order."""

from __future__ import annotations

import importlib.util
import operator
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: the event loops every loop-dependent case runs on, side by side
LOOPS = ("asyncio", "uvloop")
#: loop-independent cases (whole-process start-up) run once, under this name
NO_LOOP = "none"
#: fan-out width: high enough that parallelism / max_active_tasks are not the bottleneck
WIDE = 10_000
#: the rows that show what the engine's GC tuning buys run with CPython's default thresholds
CPYTHON_GC = "CPython's default GC thresholds"
#: a realistic parallelism, for the row that shows what the cap costs
REALISTIC = 64
#: issue 8: asyncflow's fan-out at REALISTIC reaches at least this share of the bare loop's
BASELINE_SHARE = 0.5

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class Target:
    op: str  # one of _OPS
    value: float

    def met(self, measured: float) -> bool:
        return _OPS[self.op](measured, self.value)

    def __str__(self) -> str:
        symbol = {">=": "≥", "<=": "≤", "<": "<"}[self.op]
        return f"{symbol} {self.value:,g}"


@dataclass(frozen=True)
class Metric:
    key: str  # the key `measure()` returns
    label: str  # shown in the table, with its unit
    higher_is_better: bool
    target: Target | None = None


@dataclass(frozen=True)
class Case:
    id: str  # unique, stable: the key in the JSON
    shape: str  # the module in benchmarks/shapes/
    title: str  # the table's first column
    params: dict[str, Any]
    metrics: tuple[Metric, ...]
    loops: tuple[str, ...] = LOOPS
    note: str = ""
    extra: bool = False  # a labelled variant; `--quick` skips it
    runner: str = ""  # the module in benchmarks/shapes/ when it is not the shape's own
    #: the id of the case this one is compared with: the report shows this ÷ that, paired by
    #: repetition and loop, on the first metric (selecting this case selects that one too)
    versus: str = ""
    versus_target: Target | None = None

    @property
    def module(self) -> str:
        """The module in benchmarks/shapes/ that measures it."""
        return self.runner or _MODULES.get(self.shape, self.shape)


_MODULES = {"io": "io_bound", "bash": "bash_bound"}  # `io` would read as the standard library's


def plan(*, quick: bool) -> list[Case]:
    """Every case, in table order. `quick`: tiny N for a smoke run, one repetition, no labelled
    variants and no targets (they are set for the full sizes)."""
    k, big = (20, 40) if quick else (1_000, 10_000)
    sleepers, scale_n = (20, 200) if quick else (10_000, 100_000)
    wide = {"parallelism": WIDE}

    def goal(op: str, value: float) -> Target | None:
        return None if quick else Target(op, value)

    def tis(target: Target | None = None) -> tuple[Metric, ...]:
        return (Metric("tis_per_s", "TI/s", higher_is_better=True, target=target),)

    def lower(key: str, label: str, target: Target | None = None) -> Metric:
        return Metric(key, label, higher_is_better=False, target=target)

    gap = "upstream end → downstream start"
    cases = [
        Case("fanout-1k", "fanout", f"fanout N={k:,}", {"n": k, **wide}, tis()),
        Case(
            "fanout-10k",
            "fanout",
            f"fanout N={big:,}",
            {"n": big, **wide},
            tis(goal(">=", 20_000)),
        ),
        Case(
            "fanout-10k-full",
            "fanout",
            f"fanout N={big:,}, durability=full",
            {"n": big, "durability": "full", **wide},
            tis(),
            extra=True,
        ),
        Case(
            "fanout-10k-p64",
            "fanout",
            f"fanout N={big:,}, parallelism={REALISTIC}",
            {"n": big, "parallelism": REALISTIC},
            tis(),
            versus="fanout-10k-p64-bare",
            versus_target=goal(">=", BASELINE_SHARE),
        ),
        Case(
            "fanout-10k-p64-bare",
            "fanout",
            f"fanout N={big:,}, parallelism={REALISTIC}, bare loop + group commit",
            {"n": big, "parallelism": REALISTIC},
            tis(),
            runner="baseline",
            note="no asyncflow: the bare loop (64 asyncio workers on a ready queue) persisting "
            "queued, running and success of every task instance with an awaited aiosqlite "
            "group commit into asyncflow's schema (benchmarks/shapes/baseline.py)",
        ),
        Case(
            "fanout-10k-empty",
            "fanout",
            f"fanout N={big:,}, EmptyOperator (no worker)",
            {"n": big, "empty": True, **wide},
            tis(),
            extra=True,
            note="the scheduler completes an EmptyOperator itself: no attempt, no worker",
        ),
        Case(
            "fanout-10k-gc",
            "fanout",
            f"fanout N={big:,}, {CPYTHON_GC}",
            {"n": big, "cpython_gc": True, **wide},
            tis(),
            extra=True,
            note="gc.set_threshold(700, 10, 10) and Engine(tune_gc=False) where the engine has it: "
            "what the engine's raised GC thresholds buy",
        ),
        Case("chain-1k", "chain", f"chain N={k:,}", {"n": k, **wide}, tis(goal(">=", 5_000))),
        Case("chain-10k", "chain", f"chain N={big:,}", {"n": big, **wide}, tis()),
        Case(
            "chain-1k-full",
            "chain",
            f"chain N={k:,}, durability=full",
            {"n": k, "durability": "full", **wide},
            tis(),
            extra=True,
        ),
        Case(
            "io-10k",
            "io",
            f"io N={sleepers:,} x sleep 50 ms",
            {"n": sleepers, "sleep_s": 0.05, **wide},
            (
                lower("wall_s", "wall s", goal("<=", 0.5)),
                Metric("max_concurrency", "max running", higher_is_better=True),
            ),
        ),
        Case(
            "io-10k-defaults",
            "io",
            f"io N={sleepers:,} x sleep 50 ms, the engine's defaults",
            {"n": sleepers, "sleep_s": 0.05, "parallelism": None},
            (
                lower("wall_s", "wall s", goal("<", 1.0)),
                Metric("max_concurrency", "max running", higher_is_better=True),
            ),
            note="no parallelism and no max_active_tasks given: what a new user gets",
        ),
        Case(
            "bash-1k-defaults",
            "bash",
            f"bash N={k:,} x sleep 10 ms, the engine's defaults",
            {"n": k, "sleep_s": 0.01},
            (
                lower("over_the_bound", "subprocesses over process_slots", goal("<=", 0)),
                Metric("max_subprocesses", "most subprocesses at once", higher_is_better=False),
                lower("wall_s", "wall s"),
            ),
            note="subprocess tasks are bounded by process_slots (2 per CPU, at least 4)",
        ),
        Case(
            "io-10k-gc",
            "io",
            f"io N={sleepers:,} x sleep 50 ms, {CPYTHON_GC}",
            {"n": sleepers, "sleep_s": 0.05, "cpython_gc": True, **wide},
            (lower("wall_s", "wall s"),),
            extra=True,
        ),
        Case(
            "latency",
            "latency",
            f"latency, chain N={k:,}",
            {"n": k, **wide},
            (
                lower("gap_p50_ms", f"{gap} p50 ms", goal("<=", 0.2)),
                lower("gap_p99_ms", f"{gap} p99 ms"),
                lower("scheduled_ms", "due time → first task start ms"),
            ),
        ),
        Case(
            "scale-100k",
            "scale",
            f"scale, one run of N={scale_n:,}",
            {"n": scale_n, **wide},
            (
                lower("peak_rss_mib", "peak RSS MiB", goal("<", 500)),
                lower("bytes_per_ti", "bytes/TI (peak - after imports)"),
                lower("dag_bytes_per_task", "of which DAG definition, bytes/task"),
                lower("wall_s", "wall s"),
            ),
        ),
        Case(
            "startup-import",
            "startup",
            "startup: import",
            {"what": "import", "runs": 3 if quick else 21},
            (
                lower("import_ms", "`import asyncflow` ms", goal("<=", 150)),
                lower("pass_ms", "`python -c pass` ms"),
            ),
            loops=(NO_LOOP,),
        ),
        Case(
            "startup-dags-test",
            "startup",
            "startup: one-task dags test",
            {"what": "dags_test", "runs": 1 if quick else 5},
            (lower("dags_test_s", "whole process s", goal("<=", 0.6)),),
            loops=(NO_LOOP,) if cli_available() else LOOPS,
            note="`asyncflow dags test` when the CLI has it, else `python -c` + `dag.test()`",
        ),
    ]
    return [c for c in cases if not (quick and c.extra)]


def cli_available() -> bool:
    """Whether the `asyncflow` command is installed next to this Python."""
    return (Path(sys.executable).parent / "asyncflow").exists() and bool(
        _has_module("asyncflow.cli.main")
    )


def shapes(cases: list[Case]) -> list[str]:
    return list(dict.fromkeys(c.shape for c in cases))


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ImportError:
        return False
