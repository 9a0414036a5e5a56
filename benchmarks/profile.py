"""Profile one shape with pyinstrument (`pip install pyinstrument` into the venv):

    python -m benchmarks.profile fanout --params '{"n": 10000, "parallelism": 10000}'
    python -m benchmarks.profile chain --params '{"n": 1000, "parallelism": 10000}' --loop asyncio

prints pyinstrument's call tree of the whole measurement (event loop included) and writes it as
HTML next to the results. For the aiosqlite thread too, sample the child with py-spy instead:

    py-spy record --format speedscope -o fanout.speedscope.json -- \\
        python -m benchmarks.child fanout uvloop '{"n": 10000, "parallelism": 10000}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from benchmarks.cases import plan
from benchmarks.child import run

HERE = Path(__file__).resolve().parent


def main(argv: list[str] | None = None) -> int:
    modules = sorted({c.module for c in plan(quick=False)})
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("module", choices=modules)
    parser.add_argument("--params", default='{"n": 10000, "parallelism": 10000}')
    parser.add_argument("--loop", default="uvloop", choices=["asyncio", "uvloop"])
    parser.add_argument("--interval", type=float, default=0.0002, help="sampling interval, s")
    parser.add_argument("--html", type=Path, default=None, help="also write pyinstrument's HTML")
    args = parser.parse_args(argv)
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("pyinstrument is not installed: .venv/bin/pip install pyinstrument", file=sys.stderr)
        return 2
    profiler = Profiler(interval=args.interval, async_mode="disabled")
    with profiler:
        outcome = run(args.module, args.loop, json.loads(args.params))
    print(json.dumps(outcome["metrics"]))
    print(profiler.output_text(unicode=True, color=False, show_all=False))
    if args.html is not None:
        args.html.write_text(profiler.output_html())
    return 0


if __name__ == "__main__":
    sys.exit(main())
