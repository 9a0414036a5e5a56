"""`asyncflow`: the daemon (`serve`) and Airflow's verbs for DAGs, tasks, runs, pools and the
database. Run `asyncflow COMMAND --help` for each.

Exit status: 0 done; 1 failed (a `dags test` run that failed, an unknown DAG, an import error
listed); 2 usage; 69 the database is held by a running daemon and the command needs it to
itself; 78 a bad setting (file, environment or flag: the message names it). `serve` also: 70 its
scheduler failed (a bug: restart it); 74 stopped without committing its last changes (a full
disk: the next start recovers them). One list: asyncflow/exitcodes.py.

This module imports only `argparse` (and the exit codes): each command imports what it needs
when it runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib import import_module
from typing import Any

from asyncflow.exitcodes import EX_CONFIG, EX_FAILED, EX_INTERRUPTED, EX_USAGE

#: settings every command takes as flags (see _settings_parent)
COMMON_SETTINGS = ("dags_folder", "database", "home")
#: the other settings, which `serve` also takes as flags (asyncflow.service.config.Settings)
SERVE_SETTINGS = {
    "logs_folder": "task attempt logs; default <home>/logs",
    "parallelism": "task instances running at once in the daemon; default 10000",
    "thread_slots": "sync tasks (worker threads) at once; default 0 = min(32, CPUs + 4)",
    "process_slots": "subprocess (Bash) tasks at once; default 0 = 2 per CPU, at least 4",
    "durability": "normal (survives a crash) or full (survives power loss); default normal",
    "default_timezone": "time zone of DAGs that name none; default UTC",
    "catchup_by_default": "catchup of DAGs that do not set it; default true",
    "default_schedule_seconds": "schedule of DAGs that name none; default 86400",
    "drain_timeout": "seconds running tasks get to finish after SIGTERM; default 60",
    "dagbag_import_timeout": "seconds a DAG file may take to import; default 30",
    "dag_dir_list_interval": "seconds between rescans of the DAG folder; default 5",
    "log_format": "auto (JSON unless on a terminal), json or console; default auto",
    "log_level": "debug, info, warning or error; default info",
    "pools": "pools as name=slots pairs, e.g. api=3,db=2; default none",
    "allow_seconds_in_cron": "accept six/seven-field cron strings; default false",
    "web_listen": "HTTP API and dashboard: host:port, unix:PATH or off; default 127.0.0.1:8793",
    "max_xcom_bytes": "largest XCom (return value, bash last line) in bytes; default 1048576",
    "loop_stall_threshold": "seconds the event loop may be held before a warning; default 0.5",
}

_SETTINGS_HELP = (
    "settings: defaults < --config file (or $ASYNCFLOW_CONFIG) < ASYNCFLOW_* environment "
    "variables < flags"
)


def _settings_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("settings", _SETTINGS_HELP)
    group.add_argument("--config", metavar="FILE", help="TOML settings file ($ASYNCFLOW_CONFIG)")
    group.add_argument(
        "--dags-folder", metavar="PATH", help="folder of DAG files ($ASYNCFLOW_DAGS_FOLDER)"
    )
    group.add_argument(
        "--database",
        metavar="PATH",
        help="SQLite database file, default <home>/asyncflow.db ($ASYNCFLOW_DATABASE)",
    )
    group.add_argument(
        "--home",
        metavar="PATH",
        help="state folder, default $STATE_DIRECTORY or ./.asyncflow ($ASYNCFLOW_HOME)",
    )
    return parent


def _output_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument(
        "-o",
        "--output",
        choices=("table", "plain", "json", "yaml"),
        default="table",
        help="table for people (default), plain (tab-separated) for pipelines, json or yaml "
        "for programs",
    )
    return parent


class _Builder:
    def __init__(self) -> None:
        self.settings = _settings_parent()
        self.output = _output_parent()

    def leaf(
        self,
        sub: Any,
        name: str,
        func: str,
        help: str,
        *,
        output: bool = True,
        task_logs: bool = False,
        description: str | None = None,
    ) -> argparse.ArgumentParser:
        parents = [self.settings, self.output] if output else [self.settings]
        parser: argparse.ArgumentParser = sub.add_parser(
            name, parents=parents, help=help, description=description or help
        )
        parser.set_defaults(func=func, task_logs=task_logs)
        return parser


def _other_commands(b: _Builder, sub: Any) -> None:
    group = sub.add_parser("runs", help="DAG runs across DAGs")
    runs = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    p = b.leaf(runs, "list", "asyncflow.cli.runs:list_runs", "runs, newest first")
    p.add_argument("--dag-id", metavar="DAG")
    from asyncflow.cli.parsers import run_filters

    run_filters(p)

    group = sub.add_parser("assets", help="assets (data-aware scheduling) and their events")
    assets = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    b.leaf(assets, "list", "asyncflow.cli.assets:list_assets", "the assets the DAGs name")
    p = b.leaf(assets, "events", "asyncflow.cli.assets:list_events", "asset events, newest first")
    p.add_argument("--asset", metavar="URI", help="only the events of the asset with this URI")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")

    group = sub.add_parser("db", help="the database: migrate, check, clean, reset")
    db = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    b.leaf(db, "migrate", "asyncflow.cli.db:migrate", "create or upgrade the schema")
    b.leaf(
        db, "check", "asyncflow.cli.db:check",
        "open the database, check its integrity and schema (exit 1 when not ok)",
    )  # fmt: skip
    p = b.leaf(
        db, "reset", "asyncflow.cli.db:reset",
        "delete the database (every run, task instance, XCom, pool and pause flag) and create "
        "it empty; needs the daemon stopped",
    )  # fmt: skip
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")
    p = b.leaf(
        db, "clean", "asyncflow.cli.db:clean",
        "delete history older than a time: finished runs with their task instances and XComs "
        "(the latest scheduled run of each DAG stays), import errors, answered requests",
    )  # fmt: skip
    p.add_argument(
        "--clean-before-timestamp",
        required=True,
        metavar="TIME",
        help="an ISO date or date-time (default time zone when it has none)",
    )
    p.add_argument("--tables", metavar="A,B",
                   help="comma-separated among dag_run, task_instance, xcom, import_error, "
                   "request (default all)")  # fmt: skip
    p.add_argument("--dry-run", action="store_true", help="count, delete nothing")
    p.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    group = sub.add_parser("config", help="the settings in effect: list, get-value")
    config = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    b.leaf(config, "list", "asyncflow.cli.config:list_settings",
           "every setting, its value and where it came from")  # fmt: skip
    p = b.leaf(config, "get-value", "asyncflow.cli.config:get_value",
               "one setting's value (Airflow's SECTION KEY, or KEY alone)")  # fmt: skip
    p.add_argument(
        "section",
        metavar="SECTION",
        help="ignored but for its name: asyncflow "
        "settings have no sections; `core dags_folder` and `dags_folder` are one",
    )
    p.add_argument("key", metavar="KEY", nargs="?")
    b.leaf(sub, "info", "asyncflow.cli.config:info",
           "versions, paths, settings and the daemon's state, for a bug report")  # fmt: skip

    group = sub.add_parser("pools", help="pools: list, set, delete")
    pools = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    m = "asyncflow.cli.db"
    b.leaf(pools, "list", f"{m}:list_pools", "pools and their slots")
    p = b.leaf(
        pools, "set", f"{m}:set_pool",
        "create or resize a pool (a running daemon uses it from its next start)",
    )  # fmt: skip
    p.add_argument("name", metavar="NAME")
    p.add_argument("slots", type=int, metavar="SLOTS")
    p = b.leaf(pools, "delete", f"{m}:delete_pool", "delete a pool")
    p.add_argument("name", metavar="NAME")

    p = sub.add_parser("version", parents=[b.output], help="print the version")
    p.set_defaults(func="asyncflow.cli.main:version", task_logs=False, settings=False)


def _secret_commands(b: _Builder, sub: Any) -> None:
    m = "asyncflow.cli.secrets"
    group = sub.add_parser("variables", help="Variables: list, get, set, delete, import, export")
    var = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    b.leaf(var, "list", f"{m}:list_variables", "variables (secret-looking values as ***)")
    p = b.leaf(var, "get", f"{m}:get_variable", "print a variable (the environment first)")
    p.add_argument("key", metavar="KEY")
    p.add_argument("--json", action="store_true", help="parse the value as JSON")
    p.add_argument("--default", metavar="VALUE", help="printed when the variable is not set")
    p = b.leaf(var, "set", f"{m}:set_variable", "create or replace a variable")
    p.add_argument("key", metavar="KEY")
    p.add_argument("value", metavar="VALUE")
    p.add_argument("--json", action="store_true", help="check VALUE is JSON and store it so")
    p.add_argument("--description", metavar="TEXT")
    p = b.leaf(var, "delete", f"{m}:delete_variable", "delete a variable")
    p.add_argument("key", metavar="KEY")
    p = b.leaf(var, "import", f"{m}:import_variables", "set variables from a JSON object file")
    p.add_argument("file", metavar="FILE")
    p = b.leaf(var, "export", f"{m}:export_variables", "write the variables as a JSON object")
    p.add_argument("file", metavar="FILE", help="- for standard output")

    group = sub.add_parser("connections", help="Connections: list, get, add, delete")
    conn = group.add_subparsers(dest="command", metavar="COMMAND", required=True)
    b.leaf(conn, "list", f"{m}:list_connections", "connections (without passwords)")
    p = b.leaf(conn, "get", f"{m}:get_connection", "show a connection and its URI")
    p.add_argument("conn_id", metavar="CONN_ID")
    p = b.leaf(conn, "add", f"{m}:add_connection", "create or replace a connection")
    p.add_argument("conn_id", metavar="CONN_ID")
    p.add_argument("--conn-uri", metavar="URI", help="type://login:password@host:port/schema")
    p.add_argument("--conn-json", metavar="JSON", help="the fields as a JSON object")
    for field in ("type", "host", "login", "password", "schema", "extra", "description"):
        p.add_argument(f"--conn-{field}", metavar="TEXT" if field != "extra" else "JSON")
    p.add_argument("--conn-port", type=int, metavar="PORT")
    p = b.leaf(conn, "delete", f"{m}:delete_connection", "delete a connection")
    p.add_argument("conn_id", metavar="CONN_ID")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="asyncflow",
        description="Airflow's concepts as one asyncio daemon with one SQLite file.",
        epilog="Exit status: 0 ok, 1 failed, 2 usage, 69 database held by a running daemon, "
        "70 the daemon's scheduler failed, 74 the daemon stopped without committing its last "
        "changes, 78 bad setting.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="group", metavar="COMMAND")
    b = _Builder()
    serve = sub.add_parser(
        "serve",
        parents=[b.settings],
        help="run the daemon: schedule and run the DAG folder until SIGTERM",
        description="Run the daemon until SIGTERM/SIGINT (then drain and exit 0).",
    )
    flags = serve.add_argument_group("daemon settings (also in the --config file)")
    for name, help_text in SERVE_SETTINGS.items():
        flag = "--" + name.replace("_", "-")
        flags.add_argument(flag, metavar="VALUE", help=f"{help_text} ($ASYNCFLOW_{name.upper()})")
    serve.set_defaults(func="asyncflow.cli.main:serve", settings=False)
    from asyncflow.cli.parsers import dag_commands, task_commands

    dag_commands(b, sub)
    task_commands(b, sub)
    _other_commands(b, sub)
    _secret_commands(b, sub)
    return parser


# -- commands that live here ----------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    from asyncflow.service.daemon import serve as run_daemon

    names = [*COMMON_SETTINGS, *SERVE_SETTINGS]
    return run_daemon(config_file=args.config, flags={name: getattr(args, name) for name in names})


def version(args: argparse.Namespace) -> int:
    import platform
    import sqlite3

    from asyncflow import __version__
    from asyncflow.cli.output import Output

    data = {
        "version": __version__,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }
    Output(args.output).text(f"asyncflow {__version__}", data)
    return 0


# -- the entry point ------------------------------------------------------------------------------


def _configure_logging(cli: Any, task_logs: bool) -> None:
    """Logs go to stderr; a command that does not run tasks shows warnings and worse only."""
    from asyncflow.service.logging import LEVELS, configure_logging

    settings = cli.settings
    level = settings.log_level
    if not task_logs and LEVELS[level] < LEVELS["warning"]:
        level = "warning"
    configure_logging(fmt=settings.log_format, level=level)


def _run(args: argparse.Namespace) -> int:
    module, _, name = args.func.partition(":")
    func = getattr(import_module(module), name)
    if not getattr(args, "settings", True):
        return int(func(args) or 0)
    from asyncflow.cli.context import Cli

    cli = Cli(args)
    _configure_logging(cli, args.task_logs)
    return int(func(cli) or 0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2)
        return exc.code if isinstance(exc.code, int) else EX_USAGE
    if args.version:
        from asyncflow import __version__

        print(f"asyncflow {__version__}")
        return 0
    if args.group is None:
        parser.print_usage(sys.stderr)
        print("asyncflow: error: a COMMAND is required (asyncflow --help)", file=sys.stderr)
        return EX_USAGE
    from asyncflow.cli.output import CommandError
    from asyncflow.exceptions import AsyncflowError, ConfigError

    try:
        return _run(args)
    except CommandError as exc:
        print(f"asyncflow: {exc}", file=sys.stderr)
        return exc.code
    except ConfigError as exc:
        print(f"asyncflow: {exc}", file=sys.stderr)
        return EX_CONFIG
    except AsyncflowError as exc:
        print(f"asyncflow: {exc}", file=sys.stderr)
        return EX_FAILED
    except KeyboardInterrupt:
        return EX_INTERRUPTED
    except BrokenPipeError:  # `asyncflow ... | head`: stop quietly, as the Python docs advise
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EX_FAILED


if __name__ == "__main__":
    sys.exit(main())
