"""SSE latency: from a state change in the daemon to the event read by an HTTP client.

Starts `asyncflow serve` on a temporary folder with a DAG of N no-op tasks in a chain, reads
`/api/v2/events`, triggers R runs one after another, and for each task event takes
(time read by the client) - (the event's timestamp, stamped by the scheduler before the commit
that makes it durable). That upper-bounds commit -> client. Same host, same clock.

    .venv/bin/python -m benchmarks.sse_latency [--tasks 50] [--runs 10]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from tests.web.helpers import web_daemon

DAG = """
from asyncflow import DAG
from asyncflow.operators import EmptyOperator
with DAG("chain", schedule=None) as dag:
    prev = None
    for i in range({n}):
        t = EmptyOperator(task_id=f"t{{i}}")
        if prev is not None:
            prev >> t
        prev = t
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp, web_daemon(
        Path(tmp), {"chain.py": DAG.format(n=args.tasks)}, log_level="warning"
    ) as web, web.client() as client:
        for run in range(args.runs):
            with client.stream("GET", "/api/v2/events?dag_id=chain") as stream:
                client.post("/api/v2/dags/chain/dagRuns", json={"dag_run_id": f"r{run}"})
                for line in stream.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    received = time.time()
                    data = json.loads(line[6:])
                    stamp = datetime.fromisoformat(data["timestamp"]).timestamp()
                    if "task_id" in data:
                        latencies.append(received - stamp)
                    elif data["new_state"] in ("success", "failed"):
                        break
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"{len(latencies)} task events over {args.runs} runs of a {args.tasks}-task chain")
    print(f"SSE latency state change -> client: p50 {statistics.median(latencies) * 1000:.2f} ms,"
          f" p99 {p99 * 1000:.2f} ms, max {latencies[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    main()
