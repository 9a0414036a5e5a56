"""`asyncflow serve`: the daemon. One process, one event loop (uvloop when installed), one
database.

Start-up, in this order:

1. settings (`load_settings`; a `ConfigError` exits 78, which the unit does not restart), and
   the database path (`startup.preflight`: a folder, read-only, not a database: one line, 78;
   errors while opening it are explained the same way, `startup.explain`);
2. logging (`configure_logging`), then the process-wide DAG defaults from the settings, before
   any DAG file is imported;
3. the database lock (a second daemon exits 69 at once, naming the holder's PID);
4. the daemon becomes a child subreaper (`proctree.become_subreaper`): a task's processes that
   leave their parent are re-parented to it, found and ended with their task; stray task
   processes of a previous daemon on this database are ended (`strays.py`): the lock proves
   that no live daemon owns them;
5. the engine: recovery of what a previous daemon left running, the DAG folder, the scheduler.
   Then `READY=1`.

While it runs: a `WATCHDOG=1` ping while the scheduler answers (see `watchdog`), a rescan of the
DAG folder every `dag_dir_list_interval` seconds, a `STATUS=` line when the summary changes.

On SIGTERM or SIGINT: `STOPPING=1`; the engine stops creating runs and starting tasks, lets the
running ones finish for up to `drain_timeout` seconds, then cancels the rest (process groups get
SIGTERM, then SIGKILL; the attempts are recorded as failed, reason "shutdown", and retried by
their policy at the next start); any process still below the daemon is ended; the database is
checkpointed and closed; exit 0. A second signal during the drain cuts it short.

The process always ends (exit statuses in `asyncflow.exitcodes`):

* SIGTERM ends it within `drain_timeout + STOP_GRACE` seconds even when no commit succeeds (a
  full disk): every wait of the shutdown is bounded, and what could not be committed is
  recovered at the next start, as after a crash (exit 74, EX_IOERR). A last-resort timer ends
  the process `EXIT_GRACE` seconds later if closing hangs.
* If the scheduler itself fails, the daemon logs the error, closes what it can, and ends the
  process with 70 (EX_SOFTWARE) at once with `os._exit`: a thread left behind (aiosqlite's,
  a sync task's) must not keep a daemon alive that no longer schedules anything.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import anyio

from asyncflow.engine.engine import Engine
from asyncflow.exceptions import AsyncflowError, ConfigError, EngineLockedError
from asyncflow.exitcodes import (
    EX_CONFIG,
    EX_FAILED,
    EX_IOERR,
    EX_OK,
    EX_SOFTWARE,
    EX_UNAVAILABLE,
)
from asyncflow.loading.parsing import shared_server
from asyncflow.logs import get_logger
from asyncflow.models import dag as dag_module
from asyncflow.models.pool import Pool
from asyncflow.proctree import become_subreaper, end_descendants, reap_orphans
from asyncflow.service.apifile import remove_api_file, write_api_file
from asyncflow.service.config import MEMORY_DATABASE, Settings, load_settings
from asyncflow.service.lock import DatabaseLock
from asyncflow.service.logging import configure_logging
from asyncflow.service.startup import StartupFailure, explain, preflight
from asyncflow.service.strays import MARKER, kill_strays, marker_value
from asyncflow.service.systemd import NOTIFY_VARIABLES, Notifier

__all__ = [
    "EXIT_GRACE",
    "STOP_GRACE",
    "apply_dag_defaults",
    "engine_options",
    "own_database",
    "serve",
    "watchdog",
]

STOP_GRACE = 5.0
"""Seconds the engine gets after the drain to cancel what still runs and commit its state."""
EXIT_GRACE = 5.0
"""Seconds after that before a shutdown that hangs (closing the store) ends the process."""

STATUS_EVERY = 2.0
"""Seconds between checks of the one-line status summary (sent only when it changed)."""

log = get_logger("asyncflow.daemon")


def apply_dag_defaults(settings: Settings) -> None:
    """Make the settings' defaults those of every DAG built from now on (before loading)."""
    defaults = dag_module.DAG_DEFAULTS
    defaults.timezone = settings.default_timezone
    defaults.catchup = settings.catchup_by_default
    defaults.schedule = timedelta(seconds=settings.default_schedule_seconds)
    defaults.allow_seconds_in_cron = settings.allow_seconds_in_cron


def engine_options(settings: Settings) -> dict[str, Any]:
    """`Engine(...)` keyword arguments for the daemon's settings."""
    return {
        "dags_folder": settings.dags_folder,
        "database": settings.database,
        "parallelism": settings.parallelism,
        "thread_slots": settings.thread_slots or None,
        "process_slots": settings.process_slots or None,
        "pools": [Pool(name, slots) for name, slots in settings.pools.items()],
        "durability": settings.durability,
        "dagbag_import_timeout": settings.dagbag_import_timeout,
        "logs_folder": settings.logs_folder,
        "max_xcom_bytes": settings.max_xcom_bytes,
        "loop_stall_threshold": settings.loop_stall_threshold,
    }


def own_database(database: str) -> None:
    """Having taken the database lock: mark our task subprocesses with the database (so that
    the next owner finds them if we die) and end those a dead previous owner left running."""
    if database == MEMORY_DATABASE:
        return
    os.environ[MARKER] = marker_value(database)
    kill_strays(database)


def has_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def serve(*, config_file: str | None = None, flags: dict[str, object] | None = None) -> int:
    """Run the daemon until SIGTERM/SIGINT; returns the process exit status. After a failure
    it does not return: the process ends (`exit_now`)."""
    try:
        settings = load_settings(config_file=config_file, flags=flags)
    except ConfigError as exc:
        print(f"asyncflow serve: {exc}", file=sys.stderr)
        return EX_CONFIG
    configure_logging(fmt=settings.log_format, level=settings.log_level)
    apply_dag_defaults(settings)
    # systemd's variables are for this process only: read them once, then keep every child
    # (Bash tasks, and whatever a Python task spawns) from inheriting them.
    notifier = Notifier()
    for name in NOTIFY_VARIABLES:
        os.environ.pop(name, None)
    failure = preflight(settings.database)
    if failure is not None:
        log.error("asyncflow cannot start", error=failure.message, exit_status=failure.code)
        return failure.code
    lock = DatabaseLock(settings.database)
    try:
        lock.acquire()
    except EngineLockedError as exc:
        log.error("cannot start", error=str(exc))
        return EX_UNAVAILABLE
    except OSError as exc:
        failure = explain(exc, settings.database) or StartupFailure(
            f"cannot take the lock beside {settings.database}: {exc}", EX_FAILED
        )
        log.error("asyncflow cannot start", error=failure.message, exit_status=failure.code)
        return failure.code
    started = threading.Event()
    try:
        if not become_subreaper():
            log.info("not a child subreaper (Linux only): task processes that leave their "
                     "parent are found by their marker only")  # fmt: skip
        own_database(settings.database)
        uvloop = has_uvloop()
        code: int = anyio.run(
            _serve, settings, notifier, uvloop, started, backend_options={"use_uvloop": uvloop}
        )
    except Exception as exc:
        code = _failed(exc, settings.database, started=started.is_set())
    finally:
        lock.release()
        notifier.close()
    if code != EX_OK or _lingering_threads():
        if not started.is_set():  # a failed start: the store's thread is closing, let it end
            for thread in _lingering_threads():
                thread.join(0.5)
        exit_now(code)
    return code


def _failed(exc: Exception, database: str, *, started: bool) -> int:
    """Log why the daemon stopped; its exit status."""
    failure = None if started else explain(exc, database)
    if failure is not None:  # read-only, full, corrupt, too new: one line, the right status
        log.error("asyncflow cannot start", error=failure.message, exit_status=failure.code)
        return failure.code
    cause = _leaf(exc)
    if isinstance(cause, AsyncflowError) and not started:  # the store cannot open...
        log.error("asyncflow could not start", error=str(cause))
        return EX_FAILED
    log.error("asyncflow stopped on an unexpected error", error=f"{type(cause).__name__}: {cause}",
              exc_info=exc)  # fmt: skip
    return EX_SOFTWARE


def _leaf(exc: BaseException) -> BaseException:
    """The first exception inside (nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _lingering_threads() -> list[threading.Thread]:
    """Threads that would keep the interpreter from exiting (non-daemon, still alive)."""
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def exit_now(code: int) -> None:
    """End the process with `code` whatever threads are left: flush the logs and the standard
    streams, then `os._exit` (no interpreter shutdown, which would wait for those threads)."""
    lingering = _lingering_threads()
    if lingering:
        log.warning("ending the process with threads still running",
                    threads=[t.name for t in lingering], exit_status=code)  # fmt: skip
    # nothing is left to report a failed flush to (a closed pipe, a full disk)
    for flushable in (*logging.getLogger().handlers, sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            flushable.flush()
    os._exit(code)


# -- the running daemon ---------------------------------------------------------------------------


@dataclass
class _Stop:
    """The first signal asks for a graceful stop; a second one cuts the drain short."""

    #: seconds from the first signal until the process ends whatever happens (`last_resort`)
    deadline: float
    requested: anyio.Event = field(default_factory=anyio.Event)
    drain: anyio.CancelScope | None = None

    async def watch(self, signals: AsyncIterator[signal.Signals]) -> None:
        async for signum in signals:
            name = signal.Signals(signum).name
            if not self.requested.is_set():
                log.info("stop requested", signal=name)
                self.requested.set()
                last_resort(self.deadline)
            elif self.drain is not None:
                log.warning("second stop signal: cancelling running tasks now", signal=name)
                self.drain.cancel()


def last_resort(seconds: float) -> threading.Timer:
    """End the process in `seconds` unless it has ended by then: the shutdown's waits are
    bounded, but closing the store runs in a thread nothing can interrupt."""

    def expire() -> None:
        log.error("shutdown did not finish in time: ending the process", after=seconds)
        exit_now(EX_SOFTWARE)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()
    return timer


async def _serve(
    settings: Settings, notifier: Notifier, uvloop: bool, started: threading.Event
) -> int:
    """The running daemon; its exit status once stopped by a signal."""
    stop = _Stop(settings.drain_timeout + STOP_GRACE + EXIT_GRACE)
    committed = True
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stop.watch, signals)
            async with Engine(**engine_options(settings)) as engine:
                summary = Summary(engine)
                tg.start_soon(log_run_outcomes, engine)
                log.info(
                    "asyncflow started",
                    dags=len(engine.dags),
                    import_errors=len(engine.import_errors),
                    active_runs=engine.statistics()["active_runs"],
                    parallelism=settings.parallelism,
                    dags_folder=str(settings.dags_folder),
                    database=settings.database,
                    loop="uvloop" if uvloop else "asyncio",
                    pid=os.getpid(),
                )
                web = await _start_web(tg, engine, settings)
                if web is not None:
                    write_api_file(settings.database, web.url, web.token_file)
                notifier.ready(summary.line())
                started.set()
                if notifier.watchdog_interval is not None:  # pinged through the drain too
                    tg.start_soon(watchdog, probe_of(engine), notifier, notifier.watchdog_interval)
                async with anyio.create_task_group() as helpers:
                    helpers.start_soon(refresh_dags, engine, settings.dag_dir_list_interval)
                    helpers.start_soon(summary.keep_sending, notifier)
                    helpers.start_soon(reap_ended_orphans)
                    await stop.requested.wait()
                    helpers.cancel_scope.cancel()
                running = engine.statistics()["running"]
                notifier.stopping(f"draining {running} running tasks")
                log.info("draining", running=running, drain_timeout=settings.drain_timeout)
                drain = stop.drain = anyio.CancelScope()
                with drain:
                    committed = await engine.stop(
                        drain_timeout=settings.drain_timeout, grace=STOP_GRACE
                    )
                if drain.cancel_called:
                    committed = await engine.stop(drain_timeout=0, grace=STOP_GRACE)
                if web is not None:
                    remove_api_file(settings.database)
                    await web.stop()
            await end_leftovers()
            tg.cancel_scope.cancel()
    if not committed:
        log.error("asyncflow stopped without committing its last changes (see the errors "
                  "above); the next start recovers them from the database")  # fmt: skip
        return EX_IOERR
    log.info("asyncflow stopped")
    return EX_OK


async def log_run_outcomes(engine: Engine) -> None:
    """One line per finished run: the DAG, the run, its state and duration, its task
    instances counted by state, the failed ones by name (with their errors). Read from the
    engine's events and its public API; a failed run is a warning."""
    from asyncflow.engine.events import DagRunStateChanged
    from asyncflow.states import FAILED_STATES, RUN_FINISHED, DagRunState

    async with engine.subscribe() as events:
        async for event in events:
            if not isinstance(event, DagRunStateChanged) or event.new_state not in RUN_FINISHED:
                continue
            try:
                run = await engine.get_dag_run(event.dag_id, event.run_id)
                tis = await engine.get_task_instances(event.dag_id, event.run_id)
            except AsyncflowError as exc:  # gone meanwhile (deleted): say what we know
                log.info("run finished", dag_id=event.dag_id, run_id=event.run_id,
                         state=event.new_state.value, note=str(exc))  # fmt: skip
                continue
            counts: dict[str, int] = {}
            for ti in tis:
                counts[ti.state.value] = counts.get(ti.state.value, 0) + 1
            failed = {
                ti.task_id: ti.error or ti.state.value for ti in tis if ti.state in FAILED_STATES
            }
            fields: dict[str, Any] = {
                "dag_id": run.dag_id,
                "run_id": run.run_id,
                "state": run.state.value,
                "duration": None if run.duration is None else round(run.duration, 3),
                "tasks": dict(sorted(counts.items())),
            }
            if failed:
                fields["failed"] = failed
            if run.state is DagRunState.FAILED:
                log.warning("run failed", **fields)
            else:
                log.info("run succeeded", **fields)


#: seconds between sweeps for orphans (re-parented to us) that ended on their own
REAP_EVERY = 5.0


async def reap_ended_orphans() -> None:
    """Collect the exit status of orphans that were re-parented to the daemon (a subreaper)
    and ended on their own, so that they do not stay zombies."""
    zombies: set[tuple[int, int]] = set()
    while True:
        await anyio.sleep(REAP_EVERY)
        zombies = reap_orphans(zombies)


async def end_leftovers() -> None:
    """After the engine stopped: whatever a task started and is still running (a process that
    escaped its task's tree unseen, a parse) is ended; the daemon leaves nothing behind."""
    shared_server().close()  # the DAG parse server: ours, not a task's
    with anyio.CancelScope(shield=True):
        ended = await end_descendants(grace=2.0)
    if ended:
        log.warning("ended processes left running by tasks", count=len(ended),
                    pids=[p.pid for p in ended][:20])  # fmt: skip


async def _start_web(tg: anyio.abc.TaskGroup, engine: Engine, settings: Settings) -> Any:
    """The HTTP API and dashboard on `web_listen`, served through the drain (None when off)."""
    if settings.web_listen == "off":
        return None
    from asyncflow.web.server import start_web  # starlette and uvicorn only when serving

    return await start_web(tg, engine, listen=settings.web_listen, home=settings.home)


def probe_of(engine: Engine) -> Callable[[], Awaitable[None]]:
    """A no-op round trip through the scheduler's loop: it returns once the scheduler has taken
    a command from its inbox, run a step and committed.

    `Engine.ping()` when the engine has it; else the engine's internal `_sync()`, which is
    exactly that round trip."""
    ping = getattr(engine, "ping", None)
    if ping is not None:
        return ping  # type: ignore[no-any-return]
    return engine._sync


async def watchdog(
    probe: Callable[[], Awaitable[None]], notifier: Notifier, interval: float
) -> None:
    """Send `WATCHDOG=1` every `interval` seconds, but only while the scheduler makes progress.

    Each round sends the scheduler a no-op command (`probe`) and pings only if the answer
    arrives within the interval. The answer comes after the scheduler's loop took the command
    from its inbox, ran a step and committed, so it proves that the loop turns whether the
    scheduler is busy (the command waits behind at most the current step and commit) or idle
    (the command wakes it). A scheduler stuck in a step, in a store write that never returns,
    or an event loop blocked by synchronous code (this coroutine runs on the same loop) stops
    the pings, and systemd restarts the service after `WatchdogSec`. A thread pinging on a
    timer would hide all of these.
    """
    late = False
    while True:
        started = anyio.current_time()
        answered = False
        with anyio.move_on_after(interval):
            try:
                await probe()
                answered = True
            except Exception as exc:  # an engine that is gone does not answer
                log.warning("watchdog probe failed", error=f"{type(exc).__name__}: {exc}")
        if answered:
            notifier.watchdog()
            if late:
                log.info("scheduler answers again: watchdog pings resumed")
                late = False
        elif not late:
            late = True
            log.error("scheduler did not answer within the watchdog interval: not pinging",
                      interval=interval)  # fmt: skip
        await anyio.sleep(max(0.0, started + interval - anyio.current_time()))


async def refresh_dags(engine: Engine, interval: float) -> None:
    """Rescan the DAG folder every `interval` seconds (`Engine.reload_dags`)."""
    while True:
        await anyio.sleep(interval)
        try:
            changes = await engine.reload_dags()
        except Exception as exc:  # the next rescan may succeed; the daemon keeps running
            log.error("DAG folder rescan failed", error=f"{type(exc).__name__}: {exc}")
            continue
        added, changed, removed = (
            list(getattr(changes, name, [])) for name in ("added", "changed", "removed")
        )
        if added or changed or removed:
            log.info("DAG folder changed", added=added, changed=changed, removed=removed)


class Summary:
    """The one-line status shown by `systemctl status`."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def line(self) -> str:
        engine = self.engine
        stats = engine.statistics()
        errors = len(getattr(engine, "import_errors", {}) or {})
        text = (
            f"{_count(len(engine.dags), 'DAG')}, {_count(stats['active_runs'], 'active run')}, "
            f"{_count(stats['running'], 'running task')}"
        )
        if errors:
            text += f", {_count(errors, 'DAG file')} with import errors"
        return text

    async def keep_sending(self, notifier: Notifier) -> None:
        last = ""
        while True:
            line = self.line()
            if line != last:
                notifier.status(line)
                last = line
            await anyio.sleep(STATUS_EVERY)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
