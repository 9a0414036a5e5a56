"""Deferred task instances at scale: N tasks deferred at once, half on timers, half on files.

Measures, in one engine on a SQLite file (the daemon's setting):
* slots held while all N wait (must be 0: a deferred task holds none);
* time to defer all N (execute, defer, commit, start each trigger), and to settle (every file
  trigger waiting, its first look done);
* idle CPU of the engine while they all wait (process CPU seconds / wall seconds): the file
  watcher is woken by inotify, and polls (each `--poke-interval` seconds) only where it cannot;
* wake-up latency, p50/p99: timers from each trigger's moment, files from the moment the file
  was written, to the resumed method running (trigger -> commit -> slot -> method). Events are
  spread over `--spread` seconds (timers' moments, files' writes); `--spread 0` measures the
  thundering herd instead (every event at once: latency is then the herd's throughput);
* peak RSS of the process.

    .venv/bin/python -m benchmarks.deferred [--tasks 10000] [--idle 5] [--poke-interval 1]
                                            [--spread 10]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from asyncflow import DAG, BaseOperator, Engine
from asyncflow.triggers import DateTimeTrigger, FileTrigger

#: task_id -> (wall time the resumed method ran, the moment it waited for or None)
RESUMED: dict[str, tuple[float, float | None]] = {}


class TimerWait(BaseOperator):
    def __init__(self, *, delay: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.delay = delay

    async def execute(self, context: Any) -> None:
        moment = datetime.now(UTC) + timedelta(seconds=self.delay)
        self.defer(trigger=DateTimeTrigger(moment), method_name="done")

    async def done(self, context: Any, event: datetime | None = None) -> None:
        RESUMED[self.task_id] = (time.time(), event.timestamp() if event else None)


class FileWait(BaseOperator):
    def __init__(self, *, path: str, poke_interval: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path, self.poke_interval = path, poke_interval

    async def execute(self, context: Any) -> None:
        trigger = FileTrigger(self.path, poke_interval=self.poke_interval)
        self.defer(trigger=trigger, method_name="done")

    async def done(self, context: Any, event: Any = None) -> None:
        RESUMED[self.task_id] = (time.time(), None)


def _settled(stats: dict[str, int], files: int) -> bool:
    """Every file trigger has reached its wait and been checked once (engines without these
    figures: as soon as every trigger started)."""
    return stats.get("file_waits", files) >= files and stats.get("file_checking", 0) == 0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def run(tasks: int, idle: float, poke_interval: float, delay: float,
              spread: float) -> dict[str, Any]:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="af-deferred-") as tmp:
        folder = Path(tmp)
        files = folder / "landing"
        files.mkdir()
        timers = tasks // 2
        with DAG("deferred", schedule=None, max_active_tasks=tasks) as dag:
            for n in range(timers):
                TimerWait(task_id=f"timer{n}", delay=delay + spread * n / max(1, timers))
            for n in range(tasks - timers):
                FileWait(task_id=f"file{n}", path=str(files / f"f{n}"),
                         poke_interval=poke_interval)  # fmt: skip
        async with Engine(dags=[dag], database=folder / "db.sqlite") as engine:
            started = time.perf_counter()
            run_record = await engine.trigger_dag("deferred")
            while engine.statistics()["triggers_waiting"] < tasks:
                await engine.ping()  # one scheduler round trip: no sleep
            deferred_in = time.perf_counter() - started
            while not _settled(engine.statistics(), tasks - timers):
                await engine.ping()  # every file trigger waits, and its first look is done
            settled_in = time.perf_counter() - started
            stats = engine.statistics()
            slots_held = stats["running"]
            cpu0, wall0 = time.process_time(), time.perf_counter()
            await anyio.sleep(idle)  # everything waits: what does waiting cost?
            idle_cpu = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
            slots_after_idle = engine.statistics()["running"]
            written: dict[str, float] = {}
            step = spread / max(1, tasks - timers)
            begin = time.time()
            for n in range(tasks - timers):
                if step:
                    await anyio.sleep(max(0.0, begin + n * step - time.time()))
                (files / f"f{n}").write_text("")
                written[f"file{n}"] = time.time()
            await engine.wait_for_run("deferred", run_record.run_id, timeout=600)
            total = time.perf_counter() - started
            states = {t.state.value for t in await engine.get_task_instances(
                "deferred", run_record.run_id)}  # fmt: skip
    timer_lat = [(ran - moment) * 1000 for tid, (ran, moment) in RESUMED.items()
                 if tid.startswith("timer") and moment is not None]  # fmt: skip
    file_lat = [(ran - written[tid]) * 1000 for tid, (ran, _) in RESUMED.items()
                if tid.startswith("file")]  # fmt: skip
    return {
        "tasks": tasks,
        "timers": timers,
        "files": tasks - timers,
        "poke_interval_s": poke_interval,
        "deferred_all_in_s": round(deferred_in, 2),
        "settled_in_s": round(settled_in, 2),
        "slots_held_while_deferred": slots_held,
        "slots_held_after_idle": slots_after_idle,
        "idle_cpu_share_of_one_core": round(idle_cpu, 4),
        "idle_window_s": idle,
        "events_spread_over_s": spread,
        "timer_wake_ms_p50": round(_pct(timer_lat, 0.5), 1),
        "timer_wake_ms_p99": round(_pct(timer_lat, 0.99), 1),
        "file_wake_ms_p50": round(_pct(file_lat, 0.5), 1),
        "file_wake_ms_p99": round(_pct(file_lat, 0.99), 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "total_s": round(total, 2),
        "final_states": sorted(states),
        "resumed": len(RESUMED),
        "cpus": os.cpu_count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds measured idle")
    parser.add_argument("--poke-interval", type=float, default=1.0)
    parser.add_argument("--spread", type=float, default=10.0,
                        help="seconds the events are spread over (0: all at once)")  # fmt: skip
    parser.add_argument("--delay", type=float, default=None,
                        help="timer delay after each deferral (default: past the idle window)")
    args = parser.parse_args()
    delay = args.delay if args.delay is not None else 15.0 + args.idle + args.tasks / 1000
    result = anyio.run(run, args.tasks, args.idle, args.poke_interval, delay, args.spread)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
