"""The records of a deferral: what a task asked for when it deferred (`DeferRequest`, built by
the worker, so that a trigger that cannot be stored fails that attempt like any error), and what
the mirror keeps while the task waits (`Deferral`, stored as a `DeferralRow`)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

from asyncflow.exceptions import TaskDeferred
from asyncflow.store.base import DeferralRow, iso, parse
from asyncflow.triggers import serde
from asyncflow.triggers.base import BaseTrigger, StartTriggerArgs

if TYPE_CHECKING:
    from asyncflow.engine.live import LiveTI

#: next_method of a deferral that failed (its trigger raised) or timed out
FAIL = "__fail__"


class DeferRequest(NamedTuple):
    classpath: str
    kwargs: str  # JSON text
    next_method: str
    next_kwargs: dict[str, Any]
    timeout: timedelta | None


def request_of(deferred: TaskDeferred, task_id: str) -> DeferRequest:
    """Check and encode what `self.defer()` asked for; errors name the task and the value."""
    trigger = deferred.trigger
    if not isinstance(trigger, BaseTrigger):
        raise TypeError(f"task {task_id!r} deferred on {trigger!r}, which is not a BaseTrigger")
    classpath, kwargs = trigger.serialize()
    where = f"task {task_id!r}: {classpath}.serialize()"
    text = serde.dumps(kwargs, where)
    serde.dumps(deferred.kwargs, f"task {task_id!r}: the kwargs of self.defer()")
    timeout = deferred.timeout
    if timeout is not None and not isinstance(timeout, timedelta):
        raise TypeError(f"task {task_id!r}: defer(timeout={timeout!r}) is not a timedelta")
    return DeferRequest(classpath, text, deferred.method_name, deferred.kwargs, timeout)


def request_from_start(args: StartTriggerArgs, task_id: str) -> DeferRequest:
    """An operator that begins deferred (`start_from_trigger`)."""
    where = f"task {task_id!r}: start_trigger_args"
    return DeferRequest(
        args.trigger_cls, serde.dumps(args.trigger_kwargs or {}, where), args.next_method,
        dict(args.next_kwargs or {}), args.timeout,
    )  # fmt: skip


class Deferral:
    """A deferred try: the trigger (class path + JSON kwargs), how the task resumes, and
    whether the trigger has fired (then the next attempt resumes instead of executing)."""

    __slots__ = ("classpath", "fired", "kwargs", "next_kwargs", "next_method", "timeout_at")

    def __init__(self, classpath: str, kwargs: str, next_method: str,
                 next_kwargs: dict[str, Any], timeout_at: datetime | None,
                 fired: bool = False) -> None:  # fmt: skip
        self.classpath = classpath
        self.kwargs = kwargs
        self.next_method = next_method
        self.next_kwargs = next_kwargs
        self.timeout_at = timeout_at
        self.fired = fired

    def __repr__(self) -> str:
        return f"<Deferral {self.classpath} -> {self.next_method} fired={self.fired}>"

    def fire(self, method: str, kwargs: dict[str, Any]) -> None:
        self.next_method, self.fired = method, True
        self.next_kwargs = kwargs

    def row(self, ti: LiveTI) -> DeferralRow:
        run = ti.run
        return DeferralRow(
            run.dag_id, run.run_id, ti.task_id, ti.map_index, self.classpath, self.kwargs,
            self.next_method, serde.dumps(self.next_kwargs, "next_kwargs"),
            iso(self.timeout_at), self.fired,
        )  # fmt: skip

    @classmethod
    def from_row(cls, row: DeferralRow) -> Deferral:
        return cls(row.classpath, row.kwargs, row.next_method, serde.loads(row.next_kwargs),
                   parse(row.timeout_at), row.fired)  # fmt: skip
