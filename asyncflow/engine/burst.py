"""A burst: everything one scheduler step changed, written in one transaction.

Nothing in a burst is acted on before its commit returns: events are published, workers started
and callers answered only then. A burst whose commit failed is kept whole and retried; its rows
are full snapshots of the objects, so writing it again later is harmless.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

import anyio

from asyncflow.engine.events import Event
from asyncflow.engine.live import LiveRun, LiveTI
from asyncflow.store.base import (
    AssetWrites,
    DagRow,
    NewRun,
    TIKey,
    TIRow,
    WriteBatch,
    XComKey,
    XComRow,
)

if TYPE_CHECKING:
    from asyncflow.engine.context import RuntimeTaskInstance
    from asyncflow.engine.deferred import Deferral
    from asyncflow.models.baseoperator import Context


class Start(NamedTuple):
    """A task instance whose worker starts once the burst is committed."""

    ti: LiveTI
    context: Context
    rti: RuntimeTaskInstance
    #: (next_method, next_kwargs): the attempt resumes a deferred try instead of executing
    resume: tuple[str, dict[str, Any]] | None = None


#: callbacks to run after the commit: (callables, context, where — for the log)
CallbackJob = tuple[list[Any], "Context", str]


class Burst:
    __slots__ = (
        "after", "assets", "callbacks", "dag_rows", "deferrals", "events", "new_runs", "runs",
        "starts", "ti_deletes", "ti_inserts", "ti_rows", "tis", "xcom_clears", "xcoms",
    )  # fmt: skip

    def __init__(self) -> None:
        self.tis: list[LiveTI] = []  # changed task instances (of stored runs)
        self.runs: list[LiveRun] = []  # changed runs (already stored)
        self.new_runs: list[LiveRun] = []  # inserted with their task instances
        self.ti_inserts: list[TIRow] = []  # raw rows: tasks added to a stored run
        self.ti_rows: list[TIRow] = []  # raw rows: tasks removed from the DAG
        self.ti_deletes: list[TIKey] = []  # rows gone: a mapped task's -1 once expanded
        self.xcoms: list[XComRow] = []
        self.xcom_clears: list[XComKey] = []
        self.dag_rows: list[DagRow] = []
        #: deferrals changed: the latest of each task instance is written (None: deleted)
        self.deferrals: dict[LiveTI, Deferral | None] = {}
        self.assets = AssetWrites()  # asset rows, events, queues (engine/assets.py)
        # acted on after the commit
        self.events: list[Event] = []
        self.starts: list[Start] = []
        self.callbacks: list[CallbackJob] = []
        self.after: list[Callable[[], None]] = []

    def mark(self, ti: LiveTI) -> None:
        if not ti.dirty and not ti.run.is_new:
            ti.dirty = True
            self.tis.append(ti)

    def mark_run(self, run: LiveRun) -> None:
        if not run.dirty and not run.is_new:
            run.dirty = True
            self.runs.append(run)

    def add_run(self, run: LiveRun) -> None:
        run.is_new = True
        self.new_runs.append(run)

    @property
    def writes(self) -> bool:
        return bool(
            self.tis or self.runs or self.new_runs or self.ti_inserts or self.ti_rows
            or self.ti_deletes or self.xcoms or self.xcom_clears or self.dag_rows or self.deferrals
            or self.assets
        )  # fmt: skip

    def batch(self) -> WriteBatch:
        return WriteBatch(
            new_runs=[
                NewRun(r.insert_row(), [ti.row() for ti in r.instances()]) for r in self.new_runs
            ],
            run_updates=[r.update_row() for r in self.runs],
            ti_inserts=self.ti_inserts,
            ti_updates=[*self.ti_rows, *(ti.row() for ti in self.tis)],
            ti_deletes=self.ti_deletes,
            xcoms=self.xcoms,
            xcom_clears=self.xcom_clears,
            dags=self.dag_rows,
            deferrals=[d.row(ti) for ti, d in self.deferrals.items() if d is not None],
            deferral_clears=[
                TIKey(ti.run.dag_id, ti.run.run_id, ti.task_id, ti.map_index)
                for ti, d in self.deferrals.items()
                if d is None
            ],
            assets=self.assets,
        )

    def committed(self) -> None:
        """The batch is durable: its objects are clean again."""
        for ti in self.tis:
            ti.dirty = False
        for run in self.runs:
            run.dirty = False
        for run in self.new_runs:
            run.is_new = False


class Reply:
    """The answer to a command, delivered after the changes it made are committed."""

    __slots__ = ("done", "error", "value")

    def __init__(self) -> None:
        self.done = anyio.Event()
        self.value: Any = None
        self.error: BaseException | None = None

    async def get(self) -> Any:
        await self.done.wait()
        if self.error is not None:
            raise self.error
        return self.value
