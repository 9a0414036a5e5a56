"""The benchmark suite runs end to end at tiny N (no timing assertions: this is not a benchmark)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from benchmarks.cases import plan, shapes
from benchmarks.report import END_MARKER, START_MARKER, update_readme

ROOT = Path(__file__).resolve().parents[2]
ENTRY = "import sys; from benchmarks.suite import main; sys.exit(main(sys.argv[1:]))"


def test_quick_run_reports_every_shape_with_sane_numbers(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    done = subprocess.run(
        [sys.executable, "-c", ENTRY, "--quick", "--json", str(out), "--readme", "none"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    doc = json.loads(out.read_text())
    cases = {c.id: c for c in plan(quick=True)}
    assert {r["shape"] for r in doc["results"]} == set(shapes(list(cases.values())))
    assert {r["case"] for r in doc["results"]} == set(cases)
    for result in doc["results"]:
        assert result["errors"] == [], result
        assert result["samples"] == 1
        for metric in cases[result["case"]].metrics:
            value = result["metrics"][metric.key]["median"]
            if metric.key.startswith("over_"):  # a count that must stay at zero
                assert value == 0, (result["case"], metric.key)
            else:
                assert value > 0, (result["case"], metric.key)
    assert {r["loop"] for r in doc["results"]} >= {"asyncio", "uvloop"}
    assert doc["machine"]["cores"] and doc["machine"]["sqlite"]
    assert "| case | metric |" in done.stdout


def test_readme_table_is_replaced_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{START_MARKER}\nold table\n{END_MARKER}\noutro\n")
    update_readme(readme, "new table\n")
    assert readme.read_text() == f"intro\n{START_MARKER}\nnew table\n{END_MARKER}\noutro\n"
