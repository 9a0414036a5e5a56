"""The suite's entry point: plan the cases, run each repetition in a fresh child process, and
write the table (printed, and into README.md) and the JSON (results/latest.json).

Repetitions are interleaved (every case and loop once, then again), so that a noisy moment on
a shared machine spreads over all rows instead of sinking one, and the asyncio/uvloop ratio is
measured side by side in the same run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.cases import Case, plan, shapes
from benchmarks.child import MARKER
from benchmarks.report import machine, markdown, summarize, update_readme

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CHILD_TIMEOUT_S = 900


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="repetitions of each case (default 5; 1 with --quick)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny N, one repetition, no labelled variants: a smoke run",
    )
    parser.add_argument(
        "--only", default="", help="comma-separated shapes to run, e.g. fanout,chain"
    )
    parser.add_argument(
        "--cases",
        default="",
        help="comma-separated case ids to run, e.g. fanout-10k-p64 (which brings its baseline, "
        "fanout-10k-p64-bare, for the asyncflow ÷ bare loop ratio)",
    )
    parser.add_argument(
        "--loops", default="asyncio,uvloop", help="event loops to run the loop-dependent shapes on"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=HERE / "results" / "latest.json",
        help="where to write the JSON (default benchmarks/results/latest.json)",
    )
    parser.add_argument(
        "--readme", default=str(HERE / "README.md"), help="README to put the table into, or 'none'"
    )
    args = parser.parse_args(argv)
    if args.repeat is None:
        args.repeat = 1 if args.quick else 5
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def select(args: argparse.Namespace) -> list[Case]:
    cases = plan(quick=args.quick)
    known = shapes(cases)
    wanted = [s for s in args.only.split(",") if s]
    unknown = sorted(set(wanted) - set(known))
    if unknown:
        raise SystemExit(f"unknown shape(s) {unknown}; choose from {known}")
    ids = {c.id for c in cases}
    wanted_ids = {s for s in args.cases.split(",") if s}
    if wanted_ids - ids:
        raise SystemExit(f"unknown case(s) {sorted(wanted_ids - ids)}; choose from {sorted(ids)}")
    wanted_ids |= {c.versus for c in cases if c.id in wanted_ids and c.versus}
    loops = [loop for loop in args.loops.split(",") if loop]
    selected = []
    for case in cases:
        if wanted and case.shape not in wanted:
            continue
        if wanted_ids and case.id not in wanted_ids:
            continue
        kept = tuple(loop for loop in case.loops if loop in loops or len(case.loops) == 1)
        if kept:
            selected.append(dataclasses.replace(case, loops=kept))
    return selected


def run_child(case: Case, loop: str) -> dict[str, Any]:
    """One repetition in a fresh interpreter; {"metrics", "notes"} or {"error"}."""
    command = [sys.executable, "-m", "benchmarks.child", case.module, loop, json.dumps(case.params)]
    try:
        done = subprocess.run(
            command,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(MARKER):
            outcome: dict[str, Any] = json.loads(line[len(MARKER) :])
            return outcome
    tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
    return {"error": f"exit {done.returncode}: {tail[0][:300]}"}


Samples = dict[tuple[str, str], list[dict[str, Any]]]


def jobs(cases: list[Case], rep: int) -> list[tuple[Case, str]]:
    """One repetition's runs, in table order, except that a case compared with a baseline runs
    right beside it on each loop, first one then the other in turn, so that each ratio's two
    sides share their moment and neither always runs first."""
    by_id = {c.id: c for c in cases}
    partner = {c.versus: c for c in cases if c.versus in by_id}
    order: list[tuple[Case, str]] = []
    for case in cases:
        if case.id in partner:
            continue  # runs beside the case compared with it
        other = by_id.get(case.versus)
        for loop in case.loops:
            order.append((case, loop))
            if other is not None and loop in other.loops:
                order.insert(len(order) - (rep % 2), (other, loop))
    return order


def run_all(cases: list[Case], repeat: int) -> tuple[list[dict[str, Any]], Samples]:
    samples: Samples = {}
    for rep in range(repeat):
        for case, loop in jobs(cases, rep):
            started = time.perf_counter()
            outcome = run_child(case, loop)
            samples.setdefault((case.id, loop), []).append(outcome)
            shown = outcome.get("error") or ", ".join(
                f"{m.key}={outcome['metrics'][m.key]:.4g}"
                for m in case.metrics
                if m.key in outcome["metrics"]
            )
            print(
                f"[{rep + 1}/{repeat}] {case.title} ({loop}): {shown} "
                f"[{time.perf_counter() - started:.1f} s]",
                file=sys.stderr,
                flush=True,
            )
    results = []
    for case in cases:
        for loop in case.loops:
            outcomes = samples[(case.id, loop)]
            good = [o for o in outcomes if "error" not in o]
            keys = dict.fromkeys(k for o in good for k in o["metrics"])
            results.append(
                {
                    "case": case.id,
                    "shape": case.shape,
                    "title": case.title,
                    "params": case.params,
                    "loop": loop,
                    "samples": len(good),
                    "errors": [o["error"] for o in outcomes if "error" in o],
                    "notes": {k: v for o in good for k, v in o["notes"].items()},
                    "metrics": {
                        k: summarize([o["metrics"][k] for o in good if k in o["metrics"]])
                        for k in keys
                    },
                }
            )
    return results, samples


def ratios(cases: list[Case], samples: Samples) -> list[dict[str, Any]]:
    """Each case with a `versus` ÷ that case, on the first metric: paired by repetition and loop
    (the two ran one after the other), so a noisy moment weighs on both sides of a ratio."""
    by_id = {c.id: c for c in cases}
    found = []
    for case in cases:
        other = by_id.get(case.versus)
        if other is None:
            continue
        key = case.metrics[0].key
        for loop in case.loops:
            if loop not in other.loops:
                continue
            pairs = zip(samples[(case.id, loop)], samples[(other.id, loop)], strict=True)
            values = [
                mine["metrics"][key] / theirs["metrics"][key]
                for mine, theirs in pairs
                if "error" not in mine and "error" not in theirs
            ]
            summary = summarize(values) if values else None
            target = case.versus_target
            found.append(
                {
                    "case": case.id,
                    "versus": other.id,
                    "title": case.title,
                    "versus_title": other.title,
                    "metric": key,
                    "loop": loop,
                    "ratio": summary,
                    "target": None if target is None else str(target),
                    "met": None if target is None or summary is None
                    else target.met(summary["median"]),
                }
            )  # fmt: skip
    return found


def targets(cases: list[Case], results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_key = {(r["case"], r["loop"]): r for r in results}
    checks = []
    for case in cases:
        for metric in case.metrics:
            if metric.target is None:
                continue
            for loop in case.loops:
                summary = by_key[(case.id, loop)]["metrics"].get(metric.key)
                checks.append(
                    {
                        "case": case.id,
                        "metric": metric.key,
                        "loop": loop,
                        "target": str(metric.target),
                        "median": None if summary is None else summary["median"],
                        "met": None if summary is None else metric.target.met(summary["median"]),
                    }
                )
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    cases = select(args)
    shown_args = sys.argv[1:] if argv is None else argv
    command = " ".join(["python -m benchmarks", *shown_args])
    started = time.perf_counter()
    results, samples = run_all(cases, args.repeat)
    doc = {
        "command": command,
        "machine": machine(),
        "repeat": args.repeat,
        "quick": args.quick,
        "seconds": round(time.perf_counter() - started, 1),
        "results": results,
        "targets": targets(cases, results),
        "ratios": ratios(cases, samples),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    table = markdown(doc, cases)
    print(table)
    if args.readme != "none":
        update_readme(Path(args.readme), table)
    print(
        f"wrote {args.json}" + ("" if args.readme == "none" else f" and {args.readme}"),
        file=sys.stderr,
    )
    return 0
