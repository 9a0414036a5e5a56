"""Turning samples into the report: medians with min-max, the machine, the Markdown table, and the
README section between its markers."""

from __future__ import annotations

import contextlib
import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.cases import LOOPS, NO_LOOP, Case

DASH, TIMES = "\u2013", "\u00d7"  # en dash, multiplication sign
START_MARKER = "<!-- results:start -->"
END_MARKER = "<!-- results:end -->"


def summarize(values: list[float]) -> dict[str, Any]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for package in ("asyncflow", "anyio", "aiosqlite", "uvloop"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "system": f"{platform.system()} {platform.release()}",
        "packages": versions,
        "tempdir": tempfile.gettempdir(),
        "commit": _commit(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def _commit() -> str:
    try:
        done = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() or "unknown"


def number(value: float) -> str:
    magnitude = abs(value)
    if magnitude >= 1000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:.0f}"
    if magnitude >= 10:
        return f"{value:.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


def cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "error"
    if len(summary["values"]) == 1:
        return number(summary["median"])
    return f"{number(summary['median'])} ({number(summary['min'])}{DASH}{number(summary['max'])})"


def describe_machine(info: dict[str, Any]) -> str:
    packages = ", ".join(f"{k} {v}" for k, v in info["packages"].items())
    return (
        f"{info['cpu']}, {info['cores']} cores, {info['system']}; Python {info['python']}, "
        f"SQLite {info['sqlite']}; {packages}; commit {info['commit']}; {info['date']}"
    )


def markdown(doc: dict[str, Any], cases: list[Case]) -> str:
    """The results table: one row per (case, metric), asyncio and uvloop side by side."""
    by_key = {(r["case"], r["loop"]): r for r in doc["results"]}
    repeat = doc["repeat"]
    lines = [
        f"Measured with `{doc['command']}` ({repeat} repetition{'s' if repeat > 1 else ''}, "
        "each a fresh process "
        f"with a fresh on-disk SQLite database; median ({DASH.join(('min', 'max'))})) on: "
        f"{describe_machine(doc['machine'])}.",
        "",
        "| case | metric | asyncio | uvloop | uvloop gain | target | met (asyncio / uvloop) |",
        "|---|---|---:|---:|---:|---|---|",
    ]
    notes: list[str] = []
    for case in cases:
        no_loop = case.loops == (NO_LOOP,)
        columns = (NO_LOOP,) if no_loop else LOOPS
        results = [by_key.get((case.id, loop)) for loop in columns]
        if all(r is None for r in results):
            continue
        for metric in case.metrics:
            summaries = [_metric(r, metric.key) for r in results]
            gain = DASH
            if not no_loop and summaries[0] and summaries[1]:
                a, u = summaries[0]["median"], summaries[1]["median"]
                if a and u:  # a count of zero has no ratio
                    ratio = u / a if metric.higher_is_better else a / u
                    gain = f"{ratio:.2f}{TIMES}"
            if no_loop:
                cells = [f"{cell(summaries[0])} (no loop)", DASH]
            else:
                cells = [
                    DASH if r is None else cell(s) for r, s in zip(results, summaries, strict=True)
                ]
            target, met = "", ""
            if metric.target is not None:
                target = str(metric.target)
                met = " / ".join(
                    DASH if s is None else ("pass" if metric.target.met(s["median"]) else "FAIL")
                    for s in summaries
                )
            lines.append(
                f"| {case.title} | {metric.label} | {cells[0]} | {cells[1]} | {gain} | "
                f"{target} | {met} |"
            )
        for result in results:
            if result is None:
                continue
            for error in result["errors"]:
                notes.append(f"- {case.title} ({result['loop']}): **error** {error}")
            for key, value in result["notes"].items():
                note = f"- {case.title}: {key} = {value}"
                if note not in notes:
                    notes.append(note)
        if case.note:
            notes.append(f"- {case.title}: {case.note}")
    if notes:
        lines += ["", *notes]
    lines += ratio_table(doc.get("ratios", []))
    return "\n".join(lines) + "\n"


def ratio_table(ratios: list[dict[str, Any]]) -> list[str]:
    """One row per compared pair: this case ÷ its baseline, each loop's ratio taken per
    repetition (the two ran back to back) and shown as median (min-max)."""
    if not ratios:
        return []
    lines = [
        "",
        "| ratio (paired by repetition) | asyncio | uvloop | target | met (asyncio / uvloop) |",
        "|---|---:|---:|---|---|",
    ]
    pairs = dict.fromkeys((r["case"], r["versus"]) for r in ratios)
    for case, versus in pairs:
        rows = {r["loop"]: r for r in ratios if (r["case"], r["versus"]) == (case, versus)}
        first = next(iter(rows.values()))
        cells, met = [], []
        for loop in LOOPS:
            row = rows.get(loop)
            summary = None if row is None else row["ratio"]
            cells.append(DASH if row is None else _ratio_cell(summary))
            if row is not None and row["met"] is not None:
                met.append("pass" if row["met"] else "FAIL")
            elif first["target"] is not None:
                met.append(DASH)
        lines.append(
            f"| {first['title']} {chr(0xF7)} {first['versus_title']} | {cells[0]} | {cells[1]} | "
            f"{first['target'] or ''} | {' / '.join(met)} |"
        )
    return lines


def _ratio_cell(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "error"
    if len(summary["values"]) == 1:
        return f"{summary['median']:.2f}{TIMES}"
    return f"{summary['median']:.2f}{TIMES} ({summary['min']:.2f}{DASH}{summary['max']:.2f})"


def _metric(result: dict[str, Any] | None, key: str) -> dict[str, Any] | None:
    if result is None:
        return None
    summary: dict[str, Any] | None = result["metrics"].get(key)
    return summary


def update_readme(
    readme: Path,
    table: str,
    start: str = START_MARKER,
    end: str = END_MARKER,
    section: str = "Latest results",
) -> None:
    """Put `table` between the `start` and `end` markers (appending a section if there are
    none)."""
    text = readme.read_text() if readme.exists() else "# asyncflow benchmarks\n"
    block = f"{start}\n{table}{end}"
    if start in text and end in text:
        head, rest = text.split(start, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + f"\n\n## {section}\n\n{block}\n"
    readme.write_text(text)
