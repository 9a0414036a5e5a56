"""`asyncflow dags ...`: list, list-import-errors, trigger, test, pause, unpause,
next-execution, backfill, list-runs."""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asyncflow.cli.context import Cli
from asyncflow.cli.localrun import local_pools, run_in_memory
from asyncflow.cli.output import CommandError
from asyncflow.cli.render import RUN_COLUMNS, run_dict
from asyncflow.exitcodes import EX_UNAVAILABLE, EX_USAGE

if TYPE_CHECKING:
    from asyncflow.cli.client import DaemonApi
    from asyncflow.models.dag import DAG
    from asyncflow.records import DagRun
    from asyncflow.store.sqlite import SQLiteStore


def parse_conf(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        conf = json.loads(text)
    except ValueError as exc:
        raise CommandError(f"--conf is not valid JSON ({exc}): {text!r}", EX_USAGE) from None
    if not isinstance(conf, dict):
        raise CommandError(f"--conf must be a JSON object, got {text!r}", EX_USAGE)
    return conf


# -- list, list-import-errors -----------------------------------------------------------------


def list_dags(cli: Cli) -> int:
    bag = cli.dagbag
    none: dict[str, bool] = {}
    paused = cli.read_store(lambda store: store.get_paused(), none)
    folder = cli.settings.dags_folder
    rows = [
        {
            "dag_id": dag.dag_id,
            "schedule": dag.timetable.summary,
            "is_paused": paused.get(dag.dag_id, bool(dag.is_paused_upon_creation)),
            "tasks": len(dag.task_dict),
            "tags": dag.tags,
            "fileloc": os.path.relpath(dag.fileloc, folder) if dag.fileloc else None,
        }
        for dag in sorted(bag.dags.values(), key=lambda d: d.dag_id)
    ]
    columns = ("dag_id", "schedule", "is_paused", "tasks", "tags", "fileloc")
    cli.out.rows(rows, columns, empty=f"no DAGs in {folder}")
    return 0


def list_import_errors(cli: Cli) -> int:
    """Each failing file (relative to the DAG folder), then its error wrapped below it;
    `-o json|yaml|plain` a record per file."""
    import textwrap

    errors = cli.dagbag.import_errors
    folder = cli.settings.dags_folder
    rows = []
    for path, error in sorted(errors.items()):
        message = str(error)
        message = message.removeprefix(f"{path}: ")
        rows.append({"filepath": path, "file": os.path.relpath(path, folder), "error": message})
    if cli.out.format != "table" or not rows:
        cli.out.rows(rows, ("filepath", "error"), empty="no import errors")
        return 1 if rows else 0
    for row in rows:
        print(row["file"])
        for paragraph in row["error"].splitlines() or [""]:
            print(textwrap.fill(paragraph, width=100, initial_indent="    ",
                                subsequent_indent="    ", break_on_hyphens=False))  # fmt: skip
    return 1


# -- trigger ------------------------------------------------------------------------------------


def trigger(cli: Cli) -> int:
    """Through the daemon's API when one serves the database (it creates the run at once),
    else queued in the database for a daemon to adopt."""
    from asyncflow.cli.client import through_daemon

    args = cli.args
    conf = parse_conf(args.conf)
    logical = cli.parse_date(args.logical_date) if args.logical_date else None
    row = through_daemon(
        cli, lambda api: _trigger_through(api, args.dag_id, conf, logical, args.run_id)
    )
    if row is None:
        row = _queue_in_database(cli, conf, logical)
    if not args.wait:
        cli.out.record(row, ("dag_id", "run_id", "state", "logical_date", "conf"))
    if bool(row.pop("_paused", False)):
        cli.out.note(f"note: DAG {args.dag_id} is paused: the run stays queued until "
                     f"`asyncflow dags unpause {args.dag_id}`")  # fmt: skip
    daemon = cli.daemon_pid()
    if daemon is None:
        cli.out.note(
            f"note: no daemon is running on {cli.settings.database}: the run starts when "
            "`asyncflow serve` does"
        )
    if not args.wait:
        return 0
    if daemon is None:
        raise CommandError("--wait needs a running daemon to run the queued run", EX_UNAVAILABLE)
    return follow(cli, cli.get_dag(args.dag_id), row["run_id"])


def _trigger_through(
    api: DaemonApi,
    dag_id: str,
    conf: dict[str, Any] | None,
    logical: datetime | None,
    run_id: str | None,
) -> dict[str, Any]:
    from asyncflow.cli.client import segment

    body: dict[str, Any] = {"conf": conf, "dag_run_id": run_id,
                            "logical_date": logical.isoformat() if logical else None}  # fmt: skip
    run = api.call("POST", f"/api/v2/dags/{segment(dag_id)}/dagRuns", body)
    dag = api.call("GET", f"/api/v2/dags/{segment(dag_id)}")
    return {"dag_id": run["dag_id"], "run_id": run["dag_run_id"], "state": run["state"],
            "logical_date": run["logical_date"], "conf": run["conf"],
            "_paused": dag.get("is_paused", False)}  # fmt: skip


def _queue_in_database(
    cli: Cli, conf: dict[str, Any] | None, logical: datetime | None
) -> dict[str, Any]:
    from asyncflow.engine.commands import queue_manual_run

    dag = cli.get_dag(cli.args.dag_id)
    record = cli.with_store(
        lambda store: queue_manual_run(store, dag, now=datetime.now(UTC), conf=conf,
                                       logical_date=logical, run_id=cli.args.run_id)
    )  # fmt: skip
    return {**run_dict(record), "_paused": cli.is_paused(dag)}


def follow(cli: Cli, dag: DAG, run_id: str) -> int:
    """Poll the database until the run finishes, showing its task instances counted by state;
    then print each task's state in the DAG's order; exit 1 unless it succeeded."""
    import anyio

    from asyncflow.cli.progress import Progress, counts_of
    from asyncflow.cli.render import ti_rows
    from asyncflow.records import TaskInstance
    from asyncflow.states import RUN_FINISHED, DagRunState

    async def watch(store: SQLiteStore) -> tuple[DagRun, list[TaskInstance]]:
        progress = Progress(len(dag.task_dict))
        try:
            while True:
                run = await store.get_dag_run(dag.dag_id, run_id)
                tis = await store.get_task_instances(dag.dag_id, run_id)
                if run is None:
                    raise CommandError(f"run {run_id} of DAG {dag.dag_id} was deleted")
                progress.update(f"{dag.dag_id} {run.state.value}", counts_of(tis))
                if run.state in RUN_FINISHED:
                    return run, tis
                await anyio.sleep(0.25)
        finally:
            progress.close()

    run, tis = cli.with_store(watch)
    columns: tuple[str, ...] = ("task_id", "state", "try_number", "duration", "error")
    if any(ti.map_index >= 0 for ti in tis):  # a mapped task: which instance each row is
        columns = ("task_id", "map_index", *columns[1:])
    cli.out.rows(ti_rows(dag, tis), columns)
    if not cli.out.json:
        cli.out.note(f"run {run.run_id}: {run.state.value}")
    return 0 if run.state is DagRunState.SUCCESS else 1


# -- test ---------------------------------------------------------------------------------------


def test_dag(cli: Cli) -> int:
    args = cli.args
    dag = cli.get_dag(args.dag_id)
    date = args.logical_date or args.logical_date_flag
    logical = cli.parse_date(date) if date else None
    return run_in_memory(cli, dag, parse_conf(args.conf), logical)


# -- pause, unpause -----------------------------------------------------------------------------


def _set_paused(cli: Cli, is_paused: bool) -> int:
    """Through the daemon's API when one serves the database, else in the database (a
    running daemon without a web server reads the flag within a second)."""
    from asyncflow.cli.client import segment, through_daemon
    from asyncflow.engine.commands import set_paused

    dag_id = cli.args.dag_id
    path = f"/api/v2/dags/{segment(dag_id)}"
    done = through_daemon(cli, lambda api: api.call("PATCH", path, {"is_paused": is_paused}))

    async def write(store: SQLiteStore) -> None:
        if dag_id not in await store.get_paused():
            cli.get_dag(dag_id)  # not known to the database yet: it must be in the folder
        await set_paused(store, dag_id, is_paused)

    if done is None:
        cli.with_store(write)
    word = "paused" if is_paused else "unpaused"
    cli.out.text(f"DAG {dag_id} {word}", {"dag_id": dag_id, "is_paused": is_paused})
    return 0


def pause(cli: Cli) -> int:
    return _set_paused(cli, True)


def unpause(cli: Cli) -> int:
    return _set_paused(cli, False)


# -- next-execution -----------------------------------------------------------------------------


def next_execution(cli: Cli) -> int:
    """Airflow's semantics: the logical date of the next scheduled run, from the timetable and
    the latest scheduled run in the database; None when the DAG will not run on its own."""
    from asyncflow.timetables import DataInterval, TimeRestriction

    dag = cli.get_dag(cli.args.dag_id)

    async def read(store: SQLiteStore) -> tuple[DagRun | None, bool]:
        paused = (await store.get_paused()).get(dag.dag_id, bool(dag.is_paused_upon_creation))
        return await store.latest_automated_run(dag.dag_id), paused

    nothing: tuple[DagRun | None, bool] = (None, bool(dag.is_paused_upon_creation))
    latest, paused = cli.read_store(read, nothing)
    last = None if latest is None else DataInterval(
        latest.data_interval_start, latest.data_interval_end
    )  # fmt: skip
    now = datetime.now(UTC)
    dates: list[datetime] = []
    timetable = dag.timetable
    while len(dates) < max(1, cli.args.num_executions) and timetable.can_be_scheduled:
        info = timetable.next_dagrun_info(
            last_automated_data_interval=last,
            restriction=TimeRestriction(dag.start_date, dag.end_date, dag.catchup, now),
        )
        if info is None:
            break
        dates.append(timetable.logical_date_of(info))
        last = info.data_interval
    if paused and not cli.out.json:
        cli.out.note(f"note: DAG {dag.dag_id} is paused: it creates no scheduled runs until "
                     "unpaused")  # fmt: skip
    if cli.out.json:
        cli.out.data([d.isoformat() for d in dates] or None)
    else:
        print("\n".join(d.isoformat() for d in dates) if dates else "None")
    return 0


# -- backfill -----------------------------------------------------------------------------------


def backfill(cli: Cli) -> int:
    """In-process, on the real database, with the daemon stopped (its lock is held meanwhile).

    The engine creates the runs (run_type `backfill`), runs them and logs each one as it
    finishes. A live daemon cannot take a backfill over (yet): its `max_active_runs` and
    reprocessing live in the engine, not in rows of the database."""
    import anyio

    from asyncflow.engine.engine import Engine
    from asyncflow.service.daemon import engine_options, own_database
    from asyncflow.states import DagRunState

    args = cli.args
    dag = cli.get_dag(args.dag_id)
    start, end = cli.parse_date(args.start_date), cli.parse_date(args.end_date)
    if end < start:
        raise CommandError(f"--end-date {args.end_date} is before --start-date", EX_USAGE)
    options = engine_options(cli.settings)
    del options["dags_folder"]
    options["pools"] = local_pools(cli)

    from asyncflow.cli.progress import EventCounts, Progress

    progress = Progress(0)
    follow = EventCounts(progress, f"backfill {dag.dag_id}", per_run=len(dag.task_dict))

    async def run() -> list[DagRun]:
        engine = Engine(dags=[dag], run_schedules=False, **options)
        async with engine, anyio.create_task_group() as tg:
            tg.start_soon(_forward, engine.subscribe(), follow)
            runs = await engine.backfill(
                dag.dag_id, start, end, reprocess=args.reprocess,
                max_active_runs=args.max_active_runs,
            )  # fmt: skip
            tg.cancel_scope.cancel()
        return runs

    with cli.exclusive(f"backfill of {dag.dag_id}"):
        own_database(cli.settings.database)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                runs = anyio.run(run, backend_options={"use_uvloop": True})
        finally:
            progress.close()
    runs.sort(key=lambda r: r.logical_date)
    cli.out.rows(
        [run_dict(r) for r in runs], RUN_COLUMNS, empty="no intervals to run in that range"
    )
    return 0 if all(r.state is DagRunState.SUCCESS for r in runs) else 1


async def _forward(subscription: Any, on_event: Callable[[object], None]) -> None:
    async for event in subscription:
        on_event(event)


# -- delete -------------------------------------------------------------------------------------


def delete(cli: Cli) -> int:
    """Airflow's `dags delete`: through the daemon's API when one serves the database (its
    engine schedules a DAG still in the folder afresh), else in the database with the daemon's
    lock held. Refused while a run is queued or running."""
    from asyncflow.cli.client import segment, through_daemon
    from asyncflow.cli.db import confirm
    from asyncflow.engine.commands import delete_dag
    from asyncflow.exceptions import DagHasActiveRuns, DagNotFound

    dag_id = cli.args.dag_id
    confirm(cli, f"This deletes every run, task instance and XCom of DAG {dag_id}.")
    path = f"/api/v2/dags/{segment(dag_id)}"
    answer = through_daemon(cli, lambda api: api.call("DELETE", path))
    if answer is not None:
        counts = answer["deleted"]
    else:
        try:
            with cli.exclusive(f"deleting DAG {dag_id} with the daemon's API off"):
                counts = cli.with_store(lambda store: delete_dag(store, dag_id))
        except DagNotFound:
            raise CommandError(f"DAG {dag_id!r} has no rows in {cli.settings.database}: "
                               "nothing to delete") from None  # fmt: skip
        except DagHasActiveRuns as exc:
            raise CommandError(str(exc)) from None
    total = sum(counts.values())
    cli.out.text(f"Removed {total} record(s) of DAG {dag_id} ("
                 + ", ".join(f"{n} {table}" for table, n in counts.items()) + ")",
                 {"dag_id": dag_id, "deleted": counts})  # fmt: skip
    return 0


# -- list-runs ----------------------------------------------------------------------------------


def list_runs(cli: Cli) -> int:
    from asyncflow.cli.runs import print_runs

    return print_runs(cli, cli.args.dag_id)
