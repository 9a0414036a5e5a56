"""`/metrics` in Prometheus' text format: the engine's statistics, counts taken from the event
stream, task durations, and how late the event loop wakes up (a loop blocked by synchronous
code shows here before anywhere else)."""

from __future__ import annotations

import bisect
from collections import Counter
from datetime import datetime

import anyio

from asyncflow.engine.engine import Engine
from asyncflow.engine.events import DagRunStateChanged, Event, TaskStateChanged
from asyncflow.states import FINISHED, DagRunState, TaskState

DURATION_BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600)
LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)
LAG_PERIOD = 0.25
_MAX_STARTS = 100_000


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value

    def lines(self, name: str) -> list[str]:
        out, total = [], 0
        for bound, count in zip(self.buckets, self.counts, strict=False):
            total += count
            out.append(f'{name}_bucket{{le="{bound:g}"}} {total}')
        total += self.counts[-1]
        out += [f'{name}_bucket{{le="+Inf"}} {total}', f"{name}_sum {self.sum:.6f}",
                f"{name}_count {total}"]  # fmt: skip
        return out


class Metrics:
    """Fed every event by the hub; rendered on each scrape."""

    def __init__(self) -> None:
        self.task_transitions: Counter[str] = Counter()
        self.run_transitions: Counter[str] = Counter()
        self.durations = Histogram(DURATION_BUCKETS)
        self.loop_lag = Histogram(LAG_BUCKETS)
        self._started: dict[tuple[str, str, str, int], datetime] = {}

    def observe(self, event: Event) -> None:
        if isinstance(event, TaskStateChanged):
            self.task_transitions[event.new_state.value] += 1
            key = (event.dag_id, event.run_id, event.task_id, event.map_index)
            if event.new_state is TaskState.RUNNING:
                if len(self._started) < _MAX_STARTS:
                    self._started[key] = event.timestamp
            elif event.old_state is TaskState.RUNNING:
                start = self._started.pop(key, None)
                if start is not None and event.new_state in FINISHED | {TaskState.UP_FOR_RETRY}:
                    self.durations.observe((event.timestamp - start).total_seconds())
        elif isinstance(event, DagRunStateChanged):
            self.run_transitions[event.new_state.value] += 1

    async def watch_loop(self) -> None:
        """Sleep `LAG_PERIOD` again and again; record how late each wake-up is."""
        while True:
            start = anyio.current_time()
            await anyio.sleep(LAG_PERIOD)
            self.loop_lag.observe(max(0.0, anyio.current_time() - start - LAG_PERIOD))

    async def render(self, engine: Engine, web: dict[str, int]) -> str:
        stats = engine.statistics()
        active = await engine.store.get_dag_runs(states=[DagRunState.QUEUED, DagRunState.RUNNING])
        by_state = Counter(r.state.value for r in active)
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, samples: list[str]) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples])

        gauges = {
            "running": "task instances running now",
            "ready": "task instances ready, waiting for a slot",
            "blocked": "task instances held by a pool or a max_active_tasks cap",
            "timers": "retry, reschedule and timeout deadlines pending",
        }
        for key, text in gauges.items():
            if key in stats:
                metric(f"asyncflow_scheduler_{key}", "gauge", text, [
                    f"asyncflow_scheduler_{key} {stats[key]}"])  # fmt: skip
        for key, text in {"steps": "scheduler steps", "commits": "store commits",
                          "published": "events published"}.items():  # fmt: skip
            if key in stats:
                metric(f"asyncflow_{key}_total", "counter", text, [
                    f"asyncflow_{key}_total {stats[key]}"])  # fmt: skip
        for key, count, text in (("step", "steps", "scheduler steps (a loop turn's work)"),
                                 ("commit", "commits", "store commits (one a step)")):  # fmt: skip
            if f"{key}_seconds" in stats:
                name = f"asyncflow_scheduler_{key}_seconds"
                metric(name, "summary", f"time spent in {text}", [
                    f"{name}_sum {stats[f'{key}_seconds']:.6f}",
                    f"{name}_count {stats[count]}"])  # fmt: skip
        metric("asyncflow_dag_runs_active", "gauge", "DAG runs queued or running", [
            f'asyncflow_dag_runs_active{{state="{s}"}} {by_state.get(s, 0)}'
            for s in ("queued", "running")])  # fmt: skip
        metric("asyncflow_dags", "gauge", "DAGs scheduled", [f"asyncflow_dags {len(engine.dags)}"])
        metric("asyncflow_import_errors", "gauge", "DAG files that failed to load", [
            f"asyncflow_import_errors {len(engine.import_errors)}"])  # fmt: skip
        metric("asyncflow_task_transitions_total", "counter",
               "task instance state changes since start, by new state", [
                   f'asyncflow_task_transitions_total{{state="{s.value}"}} '
                   f"{self.task_transitions.get(s.value, 0)}" for s in TaskState])  # fmt: skip
        metric("asyncflow_dag_run_transitions_total", "counter",
               "DAG run state changes since start, by new state", [
                   f'asyncflow_dag_run_transitions_total{{state="{s.value}"}} '
                   f"{self.run_transitions.get(s.value, 0)}" for s in DagRunState])  # fmt: skip
        metric("asyncflow_task_duration_seconds", "histogram",
               "how long task attempts ran (running to their next state)",
               self.durations.lines("asyncflow_task_duration_seconds"))  # fmt: skip
        metric("asyncflow_event_loop_lag_seconds", "histogram",
               "how late the event loop woke a 250 ms sleep (a stalled loop shows here)",
               self.loop_lag.lines("asyncflow_event_loop_lag_seconds"))  # fmt: skip
        metric("asyncflow_sse_clients", "gauge", "Server-Sent Events clients connected",
               [f"asyncflow_sse_clients {web['clients']}"])  # fmt: skip
        metric("asyncflow_sse_dropped_total", "counter",
               "SSE clients dropped for falling behind", [
                   f"asyncflow_sse_dropped_total {web['dropped']}"])  # fmt: skip
        return "\n".join(lines) + "\n"
