"""What every command shares: its settings, the DAG folder, the database, the output format.

The CLI talks to the database directly, also while a daemon runs on it: SQLite in WAL mode lets
it read beside the daemon, and its few writes (a triggered run, a pause flag, a cleared run) are
rows the daemon adopts within a second (`Engine.sync_external`). A command that must own the
database (a backfill, clearing a run the daemon may be running) takes the daemon's lock and
exits 69 when a daemon holds it.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, tzinfo
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar
from zoneinfo import ZoneInfo

from asyncflow.cli.output import CommandError, Output
from asyncflow.exitcodes import EX_UNAVAILABLE
from asyncflow.service.config import Settings, load_settings

if TYPE_CHECKING:
    from asyncflow.loading.dagbag import DagBag
    from asyncflow.models.dag import DAG
    from asyncflow.store.sqlite import SQLiteStore

T = TypeVar("T")

#: settings every command accepts as flags (the rest come from the file and the environment)
COMMON_FLAGS = ("dags_folder", "database", "home", "logs_folder")


class Cli:
    def __init__(self, args: argparse.Namespace, flags: dict[str, object] | None = None) -> None:
        self.args = args
        self.out = Output(getattr(args, "output", "table"))
        self._flags = {name: getattr(args, name, None) for name in COMMON_FLAGS}
        self._flags.update(flags or {})

    @cached_property
    def settings(self) -> Settings:
        """Raises `ConfigError` (exit 78) on a bad setting."""
        return load_settings(config_file=getattr(self.args, "config", None), flags=self._flags)

    @property
    def zone(self) -> tzinfo:
        return ZoneInfo(self.settings.default_timezone)

    def parse_date(self, text: str) -> datetime:
        """An ISO date or date-time; without an offset it is in the default time zone."""
        try:
            value = datetime.fromisoformat(text)
        except ValueError:
            raise CommandError(
                f"{text!r} is not an ISO date or date-time (e.g. 2024-01-31 or "
                "2024-01-31T06:00:00+00:00)",
                code=2,
            ) from None
        return value.replace(tzinfo=self.zone) if value.tzinfo is None else value

    # -- the DAG folder ----------------------------------------------------------------------
    @cached_property
    def dagbag(self) -> DagBag:
        """The DAG folder, loaded as the daemon loads it (same DAG defaults)."""
        from asyncflow.loading.dagbag import DagBag
        from asyncflow.service.daemon import apply_dag_defaults

        settings = self.settings
        apply_dag_defaults(settings)
        bag = DagBag(settings.dags_folder, import_timeout=settings.dagbag_import_timeout)
        bag.collect()
        return bag

    def get_dag(self, dag_id: str) -> DAG:
        bag = self.dagbag
        dag = bag.dags.get(dag_id)
        if dag is not None:
            return dag
        hint = ""
        if bag.import_errors:
            hint = (
                f"; {len(bag.import_errors)} DAG files failed to import "
                "(asyncflow dags list-import-errors)"
            )
        raise CommandError(
            f"DAG {dag_id!r} is not in the DAG folder {self.settings.dags_folder}{hint}"
        )

    # -- the database ------------------------------------------------------------------------
    @asynccontextmanager
    async def store(self) -> AsyncIterator[SQLiteStore]:
        from asyncflow.store.sqlite import SQLiteStore

        settings = self.settings
        store = SQLiteStore(settings.database, durability=settings.durability)
        await store.open()
        try:
            yield store
        finally:
            await store.close()

    def with_store(self, fn: Callable[[SQLiteStore], Awaitable[T]]) -> T:
        """Open the store, run `fn(store)` on an event loop, close it."""

        async def run() -> T:
            async with self.store() as store:
                return await fn(store)

        return run_async(run)

    def read_store(self, fn: Callable[[SQLiteStore], Awaitable[T]], default: T) -> T:
        """Like `with_store`, for reads: `default` when there is no database yet (a read
        creates none)."""
        return self.with_store(fn) if self.database_exists() else default

    def database_exists(self) -> bool:
        database = self.settings.database
        return database != ":memory:" and os.path.exists(database)

    @contextmanager
    def exclusive(self, what: str) -> Iterator[None]:
        """Hold the daemon's lock on the database while the block runs, or exit 69."""
        from asyncflow.exceptions import EngineLockedError
        from asyncflow.service.lock import DatabaseLock

        lock = DatabaseLock(self.settings.database)
        try:
            lock.acquire()
        except EngineLockedError as exc:
            raise CommandError(f"{what} needs the daemon stopped: {exc}", EX_UNAVAILABLE) from None
        try:
            yield
        finally:
            lock.release()

    def daemon_pid(self) -> int | None:
        """The PID of the daemon that holds the database, if one seems to (read-only check:
        the lock file names its holder, and that process exists)."""
        from asyncflow.service.lock import lock_path

        path = lock_path(self.settings.database)
        if path is None:
            return None
        try:
            pid = int(json.loads(path.read_text())["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:  # alive, another user's
            pass
        return pid


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    import anyio

    async def main() -> T:
        return await fn()

    return anyio.run(main)
