"""One repetition of one case, in a fresh process:

    python -m benchmarks.child MODULE LOOP PARAMS_JSON

imports `benchmarks.shapes.MODULE`, runs its `measure(**params)` (on anyio's asyncio backend,
with uvloop when LOOP is "uvloop"; a sync `measure` is called with `loop=LOOP`, as it starts
processes of its own) and prints one line
`BENCH-RESULT {"metrics": {...}, "notes": {...}}` for the parent to read.
"""

from __future__ import annotations

import importlib
import inspect
import json
import resource
import sys
from typing import Any

import anyio

MARKER = "BENCH-RESULT "


def run(module_name: str, loop: str, params: dict[str, Any]) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.shapes.{module_name}")
    measure = module.measure
    if inspect.iscoroutinefunction(measure):
        result = anyio.run(
            lambda: measure(**params), backend_options={"use_uvloop": loop == "uvloop"}
        )
    else:
        result = measure(**params, loop=loop)
    metrics: dict[str, float] = {}
    notes: dict[str, str] = {}
    for key, value in result.items():
        if isinstance(value, str):
            notes[key] = value
        else:
            metrics[key] = float(value)
    metrics["child_peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"metrics": metrics, "notes": notes}


def main(argv: list[str]) -> int:
    module_name, loop, params = argv[0], argv[1], json.loads(argv[2])
    outcome = run(module_name, loop, params)
    print(MARKER + json.dumps(outcome), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
