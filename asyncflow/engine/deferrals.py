"""`Deferrals`: the transitions of deferred task instances, part of the mirror (engine/mirror.py
is `Mirror(Deferrals)`, and `Deferrals` extends `Dispatch`).

A task that defers gives its slot back and waits in `deferred` while its trigger runs as a
coroutine under the triggerer (engine/triggerer.py). The trigger's event (or its failure, or the
deferral's timeout) makes the task `scheduled` again with `next_method` to call: that attempt is
the rest of the same try (try_number is not incremented, as in Airflow). Leaving `deferred` any
other way (cleared, marked, its run stopped) cancels the trigger. Every deferral is stored
(`DeferralRow`) in the burst that changes it, so a restart resumes each deferred task from its
trigger without running `execute` again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from asyncflow.engine.deferred import FAIL, Deferral, DeferRequest, request_from_start
from asyncflow.engine.dispatch import SCHEDULED, Dispatch, later
from asyncflow.engine.live import LiveTI
from asyncflow.logs import get_logger
from asyncflow.states import TaskState
from asyncflow.store.base import DeferralRow, XComRow
from asyncflow.triggers.base import BaseTaskEndEvent, TriggerEvent

log = get_logger("asyncflow.scheduler")

DEFERRED = TaskState.DEFERRED
#: states in which a task instance keeps its deferral: waiting, or about to resume
_KEEPS = frozenset({TaskState.SCHEDULED, TaskState.QUEUED, TaskState.RUNNING, DEFERRED})
_ENDS = {"success": TaskState.SUCCESS, "failed": TaskState.FAILED, "skipped": TaskState.SKIPPED}


class TriggerRunner(Protocol):
    """What the mirror asks of the triggerer; both calls act after the burst commits."""

    def start(self, ti: LiveTI, deferral: Deferral) -> None: ...

    def cancel(self, deferral: Deferral) -> None: ...


class Deferrals(Dispatch):
    triggers: TriggerRunner | None = None

    # -- entering `deferred` --------------------------------------------------------------
    def _defer(self, ti: LiveTI, request: DeferRequest, now: datetime) -> None:
        """A running attempt deferred: no slot is held from here (finish_attempt freed it)."""
        timeout_at = later(now, request.timeout) if request.timeout is not None else None
        limit = ti.task.execution_timeout
        if limit is not None and ti.start_date is not None:  # Airflow: the try's own bound
            cap = later(ti.start_date, limit)
            timeout_at = cap if timeout_at is None else min(timeout_at, cap)
        deferral = Deferral(request.classpath, request.kwargs, request.next_method,
                            dict(request.next_kwargs), timeout_at)  # fmt: skip
        self._keep_deferral(ti, deferral)
        self._set(ti, DEFERRED, now)
        self._arm(ti, deferral)

    def _defer_at_start(self, ti: LiveTI, now: datetime) -> None:
        """`start_from_trigger`: the try begins deferred, without running execute."""
        args = ti.task.start_trigger_args
        if args is None:
            ti.error, ti.end_date = "start_from_trigger is set but start_trigger_args is not", now
            self.settle(ti, TaskState.FAILED, now)
            return
        try:
            request = request_from_start(args, ti.task_id)
        except Exception as exc:  # the task's own values
            ti.error, ti.end_date = f"the task cannot begin deferred: {exc}", now
            self.settle(ti, TaskState.FAILED, now)
            return
        ti.try_number += 1
        ti.start_date, ti.end_date, ti.duration, ti.error = now, None, None, None
        self._defer(ti, request, now)

    def _arm(self, ti: LiveTI, deferral: Deferral) -> None:
        """Start the trigger (after the commit) and the deferral's timeout timer."""
        if self.triggers is not None:
            self.burst.after.append(partial(self.triggers.start, ti, deferral))
        if deferral.timeout_at is not None:
            self.at(deferral.timeout_at, partial(self.deferral_timed_out, ti, deferral))

    def _keep_deferral(self, ti: LiveTI, deferral: Deferral | None) -> None:
        ti.deferral = deferral
        self.burst.deferrals[ti] = deferral

    # -- leaving it ------------------------------------------------------------------------
    def _deferral_moved(self, ti: LiveTI, old: TaskState, new: TaskState) -> None:
        """Called by `_set` for a task instance with a deferral: leaving `deferred` stops the
        trigger; a state that does not resume drops the deferral."""
        deferral = ti.deferral
        if old is DEFERRED and new is not DEFERRED and self.triggers is not None and deferral:
            self.triggers.cancel(deferral)
        if new not in _KEEPS:
            self._keep_deferral(ti, None)

    def _waiting(self, ti: LiveTI, deferral: Deferral) -> bool:
        return ti.deferral is deferral and ti.state is DEFERRED

    def trigger_fired(self, ti: LiveTI, deferral: Deferral, event: TriggerEvent,
                      now: datetime) -> None:  # fmt: skip
        """The trigger yielded its event: resume in next_method, or end the task there."""
        if not self._waiting(ti, deferral):
            return  # cleared, marked or timed out meanwhile
        if isinstance(event, BaseTaskEndEvent):
            self._end_from_trigger(ti, event, now)
            return
        deferral.fire(deferral.next_method, {**deferral.next_kwargs, "event": event.payload})
        self._resume(ti, deferral, now)

    def trigger_failed(self, ti: LiveTI, deferral: Deferral, error: str, traceback: str,
                       now: datetime) -> None:  # fmt: skip
        """The trigger raised: the task resumes only to fail (retries apply, as Airflow)."""
        if not self._waiting(ti, deferral):
            return
        deferral.fire(FAIL, {"error": error, "traceback": traceback})
        self._resume(ti, deferral, now)

    def deferral_timed_out(self, ti: LiveTI, deferral: Deferral, now: datetime) -> None:
        if not self._waiting(ti, deferral):
            return
        deferral.fire(FAIL, {"error": "timeout"})
        self._resume(ti, deferral, now)

    def _resume(self, ti: LiveTI, deferral: Deferral, now: datetime) -> None:
        self._keep_deferral(ti, deferral)
        self._set(ti, SCHEDULED, now)  # stops the trigger, keeps the deferral
        self._push_ready(ti)

    def _end_from_trigger(self, ti: LiveTI, event: BaseTaskEndEvent, now: datetime) -> None:
        run = ti.run
        for key, value in event.xcoms.items():
            text = json.dumps(value)
            index = ti.map_index
            self.burst.xcoms.append(XComRow(run.dag_id, run.run_id, ti.task_id, index, key, text))
            run.xcoms[(ti.task_id, index, key)] = text
        ti.end_date = now
        ti.duration = (now - ti.start_date).total_seconds() if ti.start_date else None
        state = _ENDS.get(event.state, TaskState.FAILED)
        if state is TaskState.FAILED:
            ti.error = f"the trigger ended the task as {event.state}"
        elif state is TaskState.SUCCESS and ti.task.outlets and self.assets is not None:
            self.assets.task_succeeded(ti, None, now)
        self.settle(ti, state, now)
        callbacks: Any = {
            TaskState.SUCCESS: ti.task.on_success_callback,
            TaskState.FAILED: ti.task.on_failure_callback,
        }.get(state)
        if callbacks:
            try:
                context, _ = self._attempt_context(ti, now)
            except Exception as exc:  # the task's own values: its callbacks cannot run
                log.error("callbacks skipped: the task's context failed", ti=ti.key,
                          error=repr(exc))  # fmt: skip
                return
            self.burst.callbacks.append((callbacks, context, ti.key))

    # -- recovery ----------------------------------------------------------------------------
    def load_deferrals(self, tis: Iterable[LiveTI], rows: list[DeferralRow],
                       now: datetime) -> None:  # fmt: skip
        """A restored run's deferrals, before `resume_run`: a deferred task waits on its
        trigger again; one about to resume keeps how. A row no state needs is dropped."""
        tis = list(tis)
        by_task = {(row.task_id, row.map_index): row for row in rows}
        for ti in tis:
            row = by_task.pop((ti.task_id, ti.map_index), None)
            if row is None:
                continue
            if ti.state in _KEEPS:
                ti.deferral = Deferral.from_row(row)
            else:
                self.burst.deferrals[ti] = None
        for ti in tis:
            if ti.state is DEFERRED and ti.deferral is None:
                ti.error = "deferred, but its trigger is not in the store: it runs again"
                ti.try_number = max(0, ti.try_number - 1)
                self._set(ti, SCHEDULED, now)

    def rearm(self, ti: LiveTI, now: datetime) -> None:
        """A restored deferred task: its trigger runs again; its timeout counts on."""
        deferral = ti.deferral
        if deferral is None:
            return
        if deferral.timeout_at is not None and deferral.timeout_at <= now:
            self.deferral_timed_out(ti, deferral, now)
            return
        self._arm(ti, deferral)
