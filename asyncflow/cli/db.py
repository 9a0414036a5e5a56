"""`asyncflow db migrate | check` and `asyncflow pools list | set | delete`."""

from __future__ import annotations

from asyncflow.cli.context import Cli
from asyncflow.cli.output import CommandError
from asyncflow.exitcodes import EX_USAGE


def migrate(cli: Cli) -> int:
    from asyncflow.store import migrations

    # Opening the store applies the missing migration steps, each in its own transaction.
    version = cli.with_store(lambda store: store.schema_version())
    cli.out.text(
        f"database {cli.settings.database} is at schema version {version}",
        {"database": cli.settings.database, "schema_version": version,
         "latest": migrations.LATEST},
    )  # fmt: skip
    return 0


def check(cli: Cli) -> int:
    """Integrity and schema version; `corrupt` (exit 1) when SQLite cannot read the file."""
    import sqlite3

    from asyncflow.exceptions import StoreError
    from asyncflow.store import migrations
    from asyncflow.store.sqlite import SQLiteStore

    async def inspect(store: SQLiteStore) -> tuple[str, int]:
        return await store.integrity_check(), await store.schema_version()

    if not cli.database_exists():
        raise CommandError(
            f"no database at {cli.settings.database}: start `asyncflow serve` or run "
            "`asyncflow db migrate` to create it"
        )
    try:
        integrity, version = cli.with_store(inspect)
    except (StoreError, sqlite3.DatabaseError) as exc:
        cause = exc.__cause__ if isinstance(exc, StoreError) else exc
        corrupt = isinstance(cause, sqlite3.DatabaseError) and not isinstance(
            cause, sqlite3.OperationalError
        )
        if not corrupt:
            raise
        raise CommandError(
            f"corrupt: database {cli.settings.database}: {cause}; restore it from a backup "
            "(or move it aside to start afresh)"
        ) from None
    ok = integrity == "ok" and version == migrations.LATEST
    row = {
        "database": cli.settings.database,
        "integrity": integrity,
        "schema_version": version,
        "latest": migrations.LATEST,
        "daemon_pid": cli.daemon_pid(),
        "ok": ok,
    }
    cli.out.record(row, list(row))
    return 0 if ok else 1


def list_pools(cli: Cli) -> int:
    none: dict[str, int] = {}
    pools = cli.read_store(lambda store: store.get_pools(), none)
    rows = [{"pool": name, "slots": slots} for name, slots in sorted(pools.items())]
    cli.out.rows(rows, ("pool", "slots"), empty="no pools")
    return 0


def set_pool(cli: Cli) -> int:
    from asyncflow.models.pool import Pool

    name, slots = cli.args.name, cli.args.slots
    try:
        Pool(name, slots)
    except ValueError as exc:
        raise CommandError(str(exc), EX_USAGE) from None
    cli.with_store(lambda store: store.set_pool(name, slots))
    if cli.daemon_pid() is not None and not cli.out.json:
        cli.out.note("note: a running daemon uses the new size from its next start")
    cli.out.text(f"pool {name}: {slots} slots", {"pool": name, "slots": slots})
    return 0


def delete_pool(cli: Cli) -> int:
    from asyncflow.exceptions import PoolNotFound

    name = cli.args.name

    async def delete(store: object) -> None:
        from asyncflow.store.sqlite import SQLiteStore

        assert isinstance(store, SQLiteStore)
        if name not in await store.get_pools():
            raise PoolNotFound(name)
        await store.set_pool(name, None)

    cli.with_store(delete)
    cli.out.text(f"pool {name} deleted", {"pool": name, "deleted": True})
    return 0


def confirm(cli: Cli, question: str) -> None:
    """Ask on a terminal; without one, `-y` is required (nothing is done otherwise)."""
    import sys

    if getattr(cli.args, "yes", False):
        return
    if not sys.stdin.isatty():
        raise CommandError(f"{question} Pass -y/--yes to confirm (no terminal to ask on).",
                           EX_USAGE)  # fmt: skip
    answer = input(f"{question} [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise CommandError("cancelled; nothing was changed")


def reset(cli: Cli) -> int:
    """Delete the database file (and its WAL) with the daemon stopped, then create it empty."""
    import contextlib
    import os

    database = cli.settings.database
    if database == ":memory:":
        raise CommandError("the database is :memory:; there is nothing to reset", EX_USAGE)
    confirm(cli, f"This deletes every run, task instance, XCom, pool and pause flag in "
                 f"{database}.")  # fmt: skip
    with cli.exclusive(f"resetting {database}"):
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(database + suffix)
        version = cli.with_store(lambda store: store.schema_version())
    cli.out.text(f"database {database} reset (schema version {version})",
                 {"database": database, "schema_version": version, "reset": True})  # fmt: skip
    return 0


def clean(cli: Cli) -> int:
    """Airflow's `db clean`: history older than --clean-before-timestamp (see `Store.purge`).
    Finished runs only, so it runs beside a daemon too (its active runs are never touched)."""
    from asyncflow.engine.commands import clean_history
    from asyncflow.store.base import PURGEABLE

    args = cli.args
    before = cli.parse_date(args.clean_before_timestamp)
    tables = PURGEABLE
    if args.tables:
        tables = tuple(t.strip() for t in args.tables.split(",") if t.strip())
        unknown = sorted(set(tables) - set(PURGEABLE))
        if unknown:
            raise CommandError(f"--tables: no table {', '.join(unknown)} to clean; choose among "
                               f"{', '.join(PURGEABLE)}", EX_USAGE)  # fmt: skip
    if not cli.database_exists():
        raise CommandError(f"no database at {cli.settings.database}: nothing to clean")
    if not args.dry_run:
        confirm(cli, f"This deletes {', '.join(tables)} rows older than {before.isoformat()} "
                     f"from {cli.settings.database}.")  # fmt: skip
    counts = cli.with_store(
        lambda store: clean_history(store, before, tables, dry_run=args.dry_run)
    )
    column = "would_delete" if args.dry_run else "deleted"
    rows = [{"table": table, column: n} for table, n in counts.items()]
    cli.out.rows(rows, ("table", column))
    return 0
