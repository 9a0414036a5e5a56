"""The argument parsers of `asyncflow dags ...` and `asyncflow tasks ...`: Airflow 3's verbs,
positional forms and short flags where they do not clash with ours (argparse only)."""

from __future__ import annotations

import argparse
from typing import Any

RUN_HELP = "a run_id or a logical date (ISO); default the latest run"
DATE_HELP = "ISO date or date-time; default now"


def run_filters(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state", choices=("queued", "running", "success", "failed"), help="only runs in it"
    )
    p.add_argument("--limit", type=int, default=100, metavar="N", help="at most N (default 100)")


def _conf(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--conf", metavar="JSON", help="the run's configuration, a JSON object")


def dag_commands(b: Any, sub: Any) -> None:
    group = sub.add_parser("dags", help="DAGs: list, show, trigger, test, pause, backfill...")
    dags = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    m = "asyncflow.cli.dags"
    i = "asyncflow.cli.daginfo"
    b.leaf(dags, "list", f"{m}:list_dags", "list the DAGs of the DAG folder")
    b.leaf(
        dags, "list-import-errors", f"{m}:list_import_errors",
        "list the DAG files that failed to import (exit 1 when there are any)",
    )  # fmt: skip
    p = b.leaf(
        dags, "trigger", f"{m}:trigger",
        "create a manual run; a running daemon starts it within a second (a paused DAG's run "
        "waits until the DAG is unpaused)",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    _conf(p)
    p.add_argument("-r", "--run-id", metavar="ID", help="default manual__<logical date>")
    p.add_argument("-l", "--logical-date", metavar="DATE", help=DATE_HELP)
    p.add_argument(
        "--wait", action="store_true",
        help="follow the run until it finishes, with counts by state (exit 1 if it failed)",
    )  # fmt: skip
    p = b.leaf(
        dags, "test", f"{m}:test_dag",
        "run the DAG once in this process, on an in-memory database (nothing is stored); "
        "exit 0 when the run succeeded, 1 when it failed",
        task_logs=True,
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("logical_date", metavar="DATE", nargs="?", help=DATE_HELP)
    _conf(p)
    p.add_argument("--logical-date", dest="logical_date_flag", metavar="DATE",
                   help=argparse.SUPPRESS)  # fmt: skip
    for name, func, text in (
        ("pause", "pause", "stop creating scheduled runs (a running daemon obeys within a second)"),
        ("unpause", "unpause", "resume creating scheduled runs"),
    ):
        b.leaf(dags, name, f"{m}:{func}", text).add_argument("dag_id", metavar="DAG")
    p = b.leaf(
        dags, "next-execution", f"{m}:next_execution",
        "the logical date of the next scheduled run, or None",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("-n", "--num-executions", type=int, default=1, metavar="N")
    p = b.leaf(
        dags, "backfill", f"{m}:backfill",
        "run every interval between two dates, in this process, with the daemon stopped "
        "(exit 69 while a daemon holds the database); exit 0 when every run succeeded",
        task_logs=True,
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("-s", "--start-date", required=True, metavar="DATE")
    p.add_argument("-e", "--end-date", required=True, metavar="DATE")
    p.add_argument(
        "--reprocess",
        choices=("none", "failed", "completed"),
        default="none",
        help="which existing runs in the range to run again (default none)",
    )
    p.add_argument("--max-active-runs", type=int, metavar="N")
    p = b.leaf(dags, "list-runs", f"{m}:list_runs", "the DAG's runs, newest first")
    p.add_argument("dag_id", metavar="DAG")
    run_filters(p)
    p = b.leaf(
        dags, "show", f"{i}:show",
        "the DAG's graph: a text tree (default), Graphviz DOT (--dot), or a file (--save "
        "x.dot, or x.svg / x.png when Graphviz's `dot` is installed)",
        output=False,
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("--dot", action="store_true", help="print Graphviz DOT")
    p.add_argument("-s", "--save", metavar="FILE", help="write .dot, .svg or .png")
    p = b.leaf(dags, "state", f"{i}:state", "the state of a run")
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    p = b.leaf(dags, "details", f"{i}:details", "the DAG's settings, schedule and state")
    p.add_argument("dag_id", metavar="DAG")
    p = b.leaf(
        dags, "delete", f"{m}:delete",
        "delete the DAG's runs, task instances, XComs and paused flag (refused while a run is "
        "queued or running); a DAG still in the folder starts afresh",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")


def task_commands(b: Any, sub: Any) -> None:
    group = sub.add_parser("tasks", help="tasks: list, test, render, state, clear, mark, logs")
    tasks = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    m = "asyncflow.cli.tasks"
    i = "asyncflow.cli.taskinfo"
    p = b.leaf(tasks, "list", f"{m}:list_tasks", "the DAG's task ids, upstream first")
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument(
        "--details", action="store_true", help="a table: operator, upstream, retries, pool, rule"
    )
    p = b.leaf(
        tasks, "test", f"{m}:test_task",
        "run one task alone, in this process, on an in-memory database: no upstream runs, so "
        "its XCom pulls find nothing, and no state is kept; exit 0 when it succeeded",
        task_logs=True,
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("task_id", metavar="TASK")
    p.add_argument("logical_date", metavar="DATE", nargs="?", help=DATE_HELP)
    p.add_argument("--logical-date", dest="logical_date_flag", metavar="DATE",
                   help=argparse.SUPPRESS)  # fmt: skip
    p = b.leaf(
        tasks, "clear", f"{m}:clear",
        "run task instances again: they go back to 'none' and their XComs are deleted. With "
        "--run-id one run; else every run whose logical date is in [-s, -e] (all by default)",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("--run-id", metavar="ID", help="only this run")
    p.add_argument("-t", "--task-regex", metavar="REGEX", help="tasks whose id matches")
    p.add_argument("--task-ids", metavar="A,B", help="comma-separated; default every task")
    p.add_argument("-s", "--start-date", metavar="DATE", help="runs from this logical date")
    p.add_argument("-e", "--end-date", metavar="DATE", help="runs up to this logical date")
    p.add_argument("-d", "--downstream", action="store_true", help="also everything downstream")
    p.add_argument("-u", "--upstream", action="store_true", help="also everything upstream")
    p.add_argument(
        "-f", "--only-failed", action="store_true", help="only failed and upstream_failed ones"
    )
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS",
        help="how long to wait for a running daemon's answer (default 30)",
    )  # fmt: skip
    p = b.leaf(
        tasks, "mark", f"{m}:mark",
        "set a task instance's state by hand (success, failed, skipped): a running attempt is "
        "stopped; unless failed, what failed downstream runs again",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("task_id", metavar="TASK")
    p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    p.add_argument("--state", required=True, choices=("success", "failed", "skipped"))
    p.add_argument("-d", "--downstream", action="store_true", help="also everything downstream")
    p.add_argument("-u", "--upstream", action="store_true", help="also everything upstream")
    p = b.leaf(
        tasks, "states-for-dag-run", f"{m}:states_for_dag_run",
        "each task instance of a run, in the DAG's order",
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    for name, func, text in (
        ("state", "state", "the state of one task instance"),
        ("failed-deps", "failed_deps", "why a task instance does not run (or 'none')"),
        ("render", "render", "the task's templated fields, rendered for a run"),
    ):
        p = b.leaf(tasks, name, f"{i}:{func}", text)
        p.add_argument("dag_id", metavar="DAG")
        p.add_argument("task_id", metavar="TASK")
        p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    p = b.leaf(
        tasks, "logs", f"{m}:logs",
        "print a task attempt's log file (<logs_folder>/<dag>/<run>/<task>/attempt=<n>.log)",
        output=False,
    )  # fmt: skip
    p.add_argument("dag_id", metavar="DAG")
    p.add_argument("task_id", metavar="TASK", nargs="?")
    p.add_argument("run", metavar="RUN", nargs="?", help=RUN_HELP)
    p.add_argument("--try", dest="try_number", type=int, metavar="N", help="default the latest")
    p.add_argument(
        "--map-index", dest="map_index", type=int, default=-1, metavar="I",
        help="a mapped task's instance (its log is under map_index=<I>/)",
    )  # fmt: skip
    p.add_argument(
        "--logs-folder", metavar="PATH", help="default <home>/logs ($ASYNCFLOW_LOGS_FOLDER)"
    )
