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
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
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
    from asyncflow.records import DagRun
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
        loader_log = logging.getLogger("asyncflow.dagbag")
        level = loader_log.level
        loader_log.setLevel(logging.ERROR)  # each failure is summed up below, not logged
        try:
            bag.collect()
        finally:
            loader_log.setLevel(level)
        if bag.import_errors and self.args.func.rpartition(":")[2] != "list_import_errors":
            self.out.note(
                f"warning: {len(bag.import_errors)} DAG file(s) failed to import; see "
                "`asyncflow dags list-import-errors`"
            )
        return bag

    def get_dag(self, dag_id: str) -> DAG:
        """One DAG: imports only the files whose text names it (the whole folder when none
        of them defines it), so that a broken or slow file elsewhere does not hold it up."""
        bag = self.__dict__.get("dagbag")
        if bag is None:
            from asyncflow.loading.dagbag import DagBag
            from asyncflow.service.daemon import apply_dag_defaults

            settings = self.settings
            apply_dag_defaults(settings)
            bag = DagBag(settings.dags_folder, import_timeout=settings.dagbag_import_timeout)
            bag.collect_for(dag_id)
        dag = bag.dags.get(dag_id)
        if dag is not None:
            return dag
        hint = close_matches(dag_id, bag.dags)
        if bag.import_errors:
            hint += (
                f"; {len(bag.import_errors)} DAG files failed to import "
                "(asyncflow dags list-import-errors)"
            )
        raise CommandError(
            f"no such DAG {dag_id!r} in the DAG folder {self.settings.dags_folder}{hint}"
        )

    def is_paused(self, dag: DAG) -> bool:
        """The DAG's paused flag in the database, or its default before the daemon saw it."""
        none: dict[str, bool] = {}
        paused = self.read_store(lambda store: store.get_paused(), none)
        return paused.get(dag.dag_id, bool(dag.is_paused_upon_creation))

    def get_task_id(self, dag: DAG, task_id: str) -> str:
        if task_id in dag.task_dict:
            return task_id
        raise CommandError(
            f"no such task {task_id!r} in DAG {dag.dag_id!r}{close_matches(task_id, dag.task_dict)}"
        )

    def find_run(self, dag_id: str, wanted: str | None) -> DagRun:
        """A run of `dag_id` named by its run_id or its logical date; the latest run (by
        logical date) when `wanted` is None. "no such run" with the close run ids otherwise."""

        async def read(store: SQLiteStore) -> tuple[DagRun | None, list[str]]:
            if wanted is None:
                latest = await store.get_dag_runs(dag_id, limit=1)
                return (latest[0] if latest else None), []
            run = await store.get_dag_run(dag_id, wanted)
            if run is None and (date := _maybe_date(wanted, self.zone)) is not None:
                run = await store.find_dag_run(dag_id, date)
            recent = [] if run else [r.run_id for r in await store.get_dag_runs(dag_id, limit=500)]
            return run, recent

        nothing: tuple[DagRun | None, list[str]] = (None, [])
        run, recent = self.read_store(read, nothing)
        if run is not None:
            return run
        if wanted is None:
            raise CommandError(f"DAG {dag_id!r} has no runs yet (asyncflow dags trigger {dag_id})")
        raise CommandError(
            f"no such run {wanted!r} of DAG {dag_id!r} (a run_id or a logical date)"
            f"{close_matches(wanted, recent)}"
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


def close_matches(word: str, known: Iterable[str]) -> str:
    """ "; did you mean 'a' or 'b'?" with the names closest to `word`, or ""."""
    import difflib

    matches = difflib.get_close_matches(word, list(known), n=3, cutoff=0.6)
    if not matches:
        return ""
    return "; did you mean " + " or ".join(repr(m) for m in matches) + "?"


def _maybe_date(text: str, zone: tzinfo) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value.replace(tzinfo=zone) if value.tzinfo is None else value


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    import anyio

    async def main() -> T:
        return await fn()

    return anyio.run(main)
