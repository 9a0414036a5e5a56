"""`asyncflow tasks ...`: list, test, clear, states-for-dag-run, logs."""

from __future__ import annotations

import copy
import re
import sys
from collections.abc import Awaitable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asyncflow.cli.context import Cli
from asyncflow.cli.localrun import run_in_memory
from asyncflow.cli.output import CommandError
from asyncflow.cli.render import in_order
from asyncflow.exitcodes import EX_UNAVAILABLE

if TYPE_CHECKING:
    from asyncflow.models.dag import DAG
    from asyncflow.records import DagRun
    from asyncflow.store.sqlite import SQLiteStore


def list_tasks(cli: Cli) -> int:
    """Task ids, one a line, upstream first (as Airflow's `tasks list`); `--details` for a
    table, `-o json` for every field."""
    dag = cli.get_dag(cli.args.dag_id)
    if not cli.out.json and not cli.args.details:
        cli.out.text("\n".join(in_order(dag)))
        return 0
    rows = [
        {
            "task_id": task.task_id,
            "operator": type(task).__name__,
            "upstream": sorted(task.upstream_task_ids),
            "retries": task.retries,
            "pool": task.pool,
            "trigger_rule": task.trigger_rule,
        }
        for task in map(dag.get_task, in_order(dag))
    ]
    cli.out.rows(rows, ("task_id", "operator", "upstream", "retries", "pool", "trigger_rule"))
    return 0


# -- test ---------------------------------------------------------------------------------------


def single_task_dag(dag: DAG, task_id: str) -> DAG:
    """A copy of `dag` holding only a copy of `task_id`, without its up- and downstream."""
    from asyncflow.models.dag import DAG

    task = dag.get_task(task_id)
    alone = DAG(
        dag.dag_id,
        schedule=dag.timetable,
        start_date=dag.start_date,
        end_date=dag.end_date,
        catchup=False,
        params=dag.params,
        timezone=dag.timezone,
        template_searchpath=dag.template_searchpath,
        user_defined_macros=dag.user_defined_macros,
        user_defined_filters=dag.user_defined_filters,
        fileloc=dag.fileloc,
    )
    clone = copy.copy(task)
    clone._dag = None
    clone.upstream_task_ids = set()
    clone.downstream_task_ids = set()
    clone.dag = alone
    alone.validate()
    return alone


def test_task(cli: Cli) -> int:
    """Airflow's `tasks test`, kept simple: the task runs alone (its upstream does not run, so
    XCom pulls and TaskFlow arguments from upstream tasks find nothing), in this process, on an
    in-memory database; nothing is stored and no dependency is checked."""
    args = cli.args
    full = cli.get_dag(args.dag_id)
    dag = single_task_dag(full, cli.get_task_id(full, args.task_id))
    date = args.logical_date or args.logical_date_flag
    logical = cli.parse_date(date) if date else None
    return run_in_memory(cli, dag, None, logical)


# -- clear ----------------------------------------------------------------------------------------


def _closure(dag: DAG, start: Iterable[str], *, downstream: bool) -> set[str]:
    seen: set[str] = set()
    todo = list(start)
    while todo:
        task = dag.get_task(todo.pop())
        for other in task.downstream_task_ids if downstream else task.upstream_task_ids:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return seen


def selected_tasks(dag: DAG, task_ids: str | None, *, downstream: bool, upstream: bool) -> set[str]:
    if task_ids:
        chosen = {t.strip() for t in task_ids.split(",") if t.strip()}
        for task_id in chosen:
            dag.get_task(task_id)  # TaskNotFound names the DAG and the task
    else:
        chosen = set(dag.task_dict)
    closure = set(chosen)
    if downstream:
        closure |= _closure(dag, chosen, downstream=True)
    if upstream:
        closure |= _closure(dag, chosen, downstream=False)
    return closure


def clear(cli: Cli) -> int:
    """Reset task instances to `none` so that the daemon runs them again: of one run
    (`--run-id`), or of every run whose logical date is in [-s, -e] (Airflow's form; asks for
    confirmation unless -y).

    A finished run is changed in the database directly and set back to `queued`: a running
    daemon adopts it within a second (as a triggered run), a stopped one at its next start.
    A queued or running run belongs to the daemon: the command queues a request that the
    daemon carries out within a second (Engine.clear_task_instances: a running attempt is
    stopped) and prints its answer. With no daemon running, the lock is taken and the rows are
    reset for the next start."""
    from asyncflow.cli.db import confirm

    args = cli.args
    dag = cli.get_dag(args.dag_id)
    wanted = _chosen(cli, dag)
    if args.run_id is not None:
        runs = [cli.find_run(dag.dag_id, args.run_id)]
    else:
        runs = _runs_in_range(cli, dag.dag_id)
        if not runs:
            cli.out.rows([], ("run_id", "task_id"), empty="no runs in that range: nothing to clear")
            return 0
        confirm(cli, f"Clear {len(wanted)} task(s) in {len(runs)} run(s) of {dag.dag_id}?")
    rows: list[dict[str, Any]] = []
    for run in runs:
        rows.extend({"run_id": run.run_id, **row} for row in _clear_run(cli, dag, run, wanted))
    # through the daemon's API the answer is the task ids; from the database, also what was
    columns: tuple[str, ...] = ("run_id", "task_id", "was", "try_number")
    if not any("was" in row for row in rows):
        columns = ("run_id", "task_id")
    cli.out.rows(rows, columns, empty="nothing to clear")
    return 0


def _chosen(cli: Cli, dag: DAG) -> set[str]:
    args = cli.args
    wanted = selected_tasks(dag, args.task_ids, downstream=False, upstream=False)
    if args.task_regex:
        try:
            pattern = re.compile(args.task_regex)
        except re.error as exc:
            raise CommandError(f"--task-regex {args.task_regex!r}: {exc}", 2) from None
        wanted = {t for t in wanted if pattern.search(t)}
        if not wanted:
            raise CommandError(f"no task of DAG {dag.dag_id!r} matches {args.task_regex!r}")
    closure = set(wanted)
    if args.downstream:
        closure |= _closure(dag, wanted, downstream=True)
    if args.upstream:
        closure |= _closure(dag, wanted, downstream=False)
    return closure


def _runs_in_range(cli: Cli, dag_id: str) -> list[DagRun]:
    args = cli.args
    start = cli.parse_date(args.start_date) if args.start_date else None
    end = cli.parse_date(args.end_date) if args.end_date else None
    none: list[DagRun] = []
    runs = cli.read_store(lambda store: store.get_dag_runs(dag_id), none)
    return sorted(
        (r for r in runs if (start is None or r.logical_date >= start)
         and (end is None or r.logical_date <= end)),
        key=lambda r: r.logical_date,
    )  # fmt: skip


def _clear_run(cli: Cli, dag: DAG, run: DagRun, wanted: set[str]) -> list[dict[str, Any]]:
    from asyncflow.engine.commands import Reset, reset_task_instances
    from asyncflow.states import RUN_FINISHED

    args = cli.args
    cleared = _clear_through_api(cli, dag, run.run_id, wanted, only_failed=args.only_failed)
    if cleared is not None:
        return cleared

    def reset(store: SQLiteStore) -> Awaitable[Reset]:
        return reset_task_instances(store, dag, run.run_id, wanted, only_failed=args.only_failed)

    if run.state in RUN_FINISHED:
        done = cli.with_store(reset)
    elif cli.daemon_pid() is not None:  # the daemon runs it: ask the daemon to clear it
        return _clear_through_daemon(cli, dag, run.run_id, wanted, args)
    else:
        what = f"clearing run {run.run_id} of {dag.dag_id} (it is {run.state.value})"
        with cli.exclusive(what):
            done = cli.with_store(reset)
    if done.requeued and not cli.out.json:
        cli.out.note(f"run {run.run_id} is queued again: a running daemon picks it up within a "
                     "second")  # fmt: skip
    return [{"task_id": ti.task_id, "was": ti.state, "try_number": ti.try_number}
            for ti in done.cleared]  # fmt: skip


def _clear_through_api(
    cli: Cli, dag: DAG, run_id: str, wanted: set[str], *, only_failed: bool
) -> list[dict[str, Any]] | None:
    """Cleared by the daemon's engine at once (a running attempt is stopped), when a daemon
    serves the database; None otherwise."""
    from asyncflow.cli.client import segment, through_daemon

    path = f"/api/v2/dags/{segment(dag.dag_id)}/dagRuns/{segment(run_id)}/clear"
    body = {"dry_run": False, "task_ids": sorted(wanted), "only_failed": bool(only_failed)}
    answer = through_daemon(cli, lambda api: api.call("POST", path, body))
    if answer is None:
        return None
    if answer.get("state") == "queued" and not cli.out.json:
        cli.out.note(f"run {run_id} is queued again")
    return [{"task_id": task_id} for task_id in in_order(dag)
            if task_id in set(answer.get("cleared_task_ids", []))]  # fmt: skip


def _clear_through_daemon(
    cli: Cli, dag: DAG, run_id: str, wanted: set[str], args: Any
) -> list[dict[str, Any]]:
    """Queue a clear request for the running daemon (it reads requests every second) and
    wait, up to --timeout seconds, for its answer."""
    from asyncflow.engine.commands import ask_engine, clear_request

    request = clear_request(dag.dag_id, run_id, wanted, only_failed=bool(args.only_failed))
    result = cli.with_store(lambda store: ask_engine(store, request, timeout=args.timeout))
    if result is None:
        raise CommandError(
            f"the daemon did not answer the clear request within {args.timeout:g} s; it stays "
            "queued and is carried out when the daemon reads it",
            EX_UNAVAILABLE,
        )
    if not result.get("ok"):
        raise CommandError(f"the daemon refused to clear: {result.get('error')}", 1)
    return [{"task_id": task_id} for task_id in result.get("task_ids", [])]


# -- states-for-dag-run, logs -------------------------------------------------------------------


def states_for_dag_run(cli: Cli) -> int:
    """Each task instance of a run (the latest by default), in the DAG's order."""
    from asyncflow.cli.render import ti_rows

    args = cli.args
    dag = cli.dagbag.dags.get(args.dag_id)  # the order, when the DAG is still in the folder
    if dag is None and args.run is None:
        dag = cli.get_dag(args.dag_id)
    run = cli.find_run(args.dag_id, args.run)
    tis = cli.with_store(lambda store: store.get_task_instances(args.dag_id, run.run_id))
    columns: tuple[str, ...] = (
        "task_id", "state", "try_number", "start_date", "end_date", "duration", "error",
    )  # fmt: skip
    if any(ti.map_index >= 0 for ti in tis):  # a mapped task: which instance each row is
        columns = ("task_id", "map_index", *columns[1:])
    cli.out.rows(ti_rows(dag, tis), columns,
                 empty="no task instances yet (the run was not started)")  # fmt: skip
    return 0


def log_path(
    logs_folder: Path, dag_id: str, run_id: str, task_id: str, try_number: int,
    map_index: int = -1,
) -> Path:  # fmt: skip
    """Where the engine writes an attempt's output."""
    from asyncflow.engine.tasklog import attempt_log_path

    return attempt_log_path(logs_folder, dag_id, run_id, task_id, try_number, map_index)


_ATTEMPT = re.compile(r"^attempt=(\d+)\.log$")


def logs(cli: Cli) -> int:
    """`tasks logs DAG TASK [RUN]` (the latest run by default); the older order
    `tasks logs DAG RUN_ID TASK` works too."""
    args = cli.args
    folder = cli.settings.logs_folder
    if args.task_id is None:
        raise CommandError("name the task: asyncflow tasks logs DAG TASK [RUN]", 2)
    task_id, wanted = args.task_id, args.run
    if wanted is not None and log_path(folder, args.dag_id, task_id, wanted, 1).parent.is_dir():
        task_id, wanted = wanted, task_id  # DAG RUN_ID TASK
    run = cli.find_run(args.dag_id, wanted)
    dag = cli.dagbag.dags.get(args.dag_id)
    if dag is not None:
        cli.get_task_id(dag, task_id)
    try_number = args.try_number
    index = args.map_index
    if try_number is None:
        task_dir = log_path(folder, args.dag_id, run.run_id, task_id, 1, index).parent
        tries = [int(m.group(1)) for p in (task_dir.iterdir() if task_dir.is_dir() else [])
                 if (m := _ATTEMPT.match(p.name))]  # fmt: skip
        try_number = max(tries, default=1)
    path = log_path(folder, args.dag_id, run.run_id, task_id, try_number, index)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        raise CommandError(
            f"no log for task {task_id!r} try {try_number} of run {run.run_id!r} of DAG "
            f"{args.dag_id!r} ({run.state.value}): {path} does not exist (the attempt printed "
            "nothing or has not run yet, or --logs-folder/$ASYNCFLOW_LOGS_FOLDER points "
            "elsewhere)"
        ) from None
    sys.stdout.write(text)
    return 0


# -- mark -----------------------------------------------------------------------------------------


def mark(cli: Cli) -> int:
    """`tasks mark DAG TASK [RUN] --state S` (the latest run by default). Through the daemon's
    API when one serves the database (its engine stops a running attempt and goes on at once);
    else in the database with the daemon's lock held (`engine.commands.mark_task_instances`),
    and a finished run is queued again for the next start to settle."""
    from asyncflow.cli.client import segment, through_daemon

    args = cli.args
    run = cli.find_run(args.dag_id, args.run)
    path = (f"/api/v2/dags/{segment(args.dag_id)}/dagRuns/{segment(run.run_id)}/taskInstances/"
            f"{segment(args.task_id)}")  # fmt: skip
    body = {"new_state": args.state, "include_downstream": bool(args.downstream),
            "include_upstream": bool(args.upstream)}  # fmt: skip
    answer = through_daemon(cli, lambda api: api.call("PATCH", path, body))
    if answer is not None:
        changed = [ti["task_id"] for ti in answer["task_instances"]]
    else:
        changed = _mark_in_database(cli, run)
    rows = [{"run_id": run.run_id, "task_id": task_id, "state": args.state} for task_id in changed]
    cli.out.rows(rows, ("run_id", "task_id", "state"),
                 empty=f"nothing changed: already {args.state}")  # fmt: skip
    return 0


def _mark_in_database(cli: Cli, run: DagRun) -> list[str]:
    from datetime import UTC, datetime

    from asyncflow.engine.commands import mark_task_instances
    from asyncflow.states import RUN_FINISHED, TaskState

    args = cli.args
    dag = cli.get_dag(args.dag_id)
    cli.get_task_id(dag, args.task_id)
    chosen = selected_tasks(dag, args.task_id, downstream=args.downstream, upstream=args.upstream)
    state = TaskState(args.state)

    def write(store: SQLiteStore) -> Awaitable[list[str]]:
        now = datetime.now(UTC)
        return mark_task_instances(store, dag, run.run_id, chosen, state, now=now)

    try:
        if run.state in RUN_FINISHED:
            return cli.with_store(write)
        if cli.daemon_pid() is not None:
            raise CommandError(
                f"run {run.run_id} of {dag.dag_id} is {run.state.value} and the daemon running "
                "it serves no API (web_listen = off): set web_listen and restart it, or stop it "
                "and mark again",
                EX_UNAVAILABLE,
            )
        with cli.exclusive(f"marking tasks of run {run.run_id} of {dag.dag_id}"):
            return cli.with_store(write)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
