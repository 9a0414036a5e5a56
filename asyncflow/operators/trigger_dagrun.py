"""`TriggerDagRunOperator`: start a run of another DAG of the same engine, and optionally wait
for it to finish.

As Airflow: the new run is a manual run with `conf` (templated), at `logical_date` (templated; a
datetime or an ISO string; now when left out) and named `trigger_run_id` (templated; generated
when left out). Its run_id is pushed as the XCom ``trigger_run_id``. When a run with that run_id
or logical date exists, `reset_dag_run=True` clears it so that it runs again,
`skip_when_already_exists=True` skips this task, and otherwise the task fails.

With `wait_for_completion=True` the task waits for the run to finish (woken by the run's end,
not by polling: `poke_interval` is accepted for Airflow's signature) and fails when it ends in
one of `failed_states`. Where Airflow would poll forever for a run that finished in neither
`allowed_states` nor `failed_states`, this task fails and says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from asyncflow.exceptions import AsyncflowError, AsyncflowSkipException, DagRunAlreadyExists
from asyncflow.models.baseoperator import BaseOperator, Context
from asyncflow.models.engine_access import task_engine
from asyncflow.records import DagRun
from asyncflow.states import DagRunState

__all__ = ["TriggerDagRunOperator"]

#: the XCom key the triggered run's run_id is pushed under (Airflow's XCOM_RUN_ID)
XCOM_RUN_ID = "trigger_run_id"


def _run_states(where: Any, name: str, values: Iterable[Any] | None) -> list[DagRunState] | None:
    if values is None:
        return None
    try:
        return [DagRunState(v) for v in values]
    except ValueError:
        raise where.error(
            f"{name}={list(values)!r} holds a value that is not a DAG run state: use "
            f"{[s.value for s in DagRunState]}"
        ) from None


def _moment(value: Any, task: BaseOperator) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            pass
    raise AsyncflowError(
        f"DAG {task.dag_id!r}, task {task.task_id!r}: logical_date={value!r} is not a datetime "
        "or an ISO 8601 string"
    )


class TriggerDagRunOperator(BaseOperator):
    template_fields = ("trigger_dag_id", "trigger_run_id", "logical_date", "conf")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        trigger_dag_id: str,
        trigger_run_id: str | None = None,
        conf: dict[str, Any] | str | None = None,
        logical_date: datetime | str | None = None,
        reset_dag_run: bool = False,
        wait_for_completion: bool = False,
        poke_interval: float = 60,
        allowed_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        skip_when_already_exists: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = self.where()
        if not isinstance(trigger_dag_id, str) or not trigger_dag_id:
            raise where.error(f"trigger_dag_id={trigger_dag_id!r} is not a dag_id")
        self.trigger_dag_id = trigger_dag_id
        self.trigger_run_id = trigger_run_id
        self.conf = conf
        self.logical_date = logical_date
        self.reset_dag_run = bool(reset_dag_run)
        self.wait_for_completion = bool(wait_for_completion)
        self.poke_interval = poke_interval
        self.allowed_states = _run_states(where, "allowed_states", allowed_states) or [
            DagRunState.SUCCESS
        ]
        failed = _run_states(where, "failed_states", failed_states)
        self.failed_states = failed if failed is not None else [DagRunState.FAILED]
        self.skip_when_already_exists = bool(skip_when_already_exists)
        #: waiting costs no thread here (it is a coroutine), so deferring changes nothing
        self.deferrable = bool(deferrable)

    def _conf(self) -> dict[str, Any]:
        conf = self.conf
        if isinstance(conf, str):
            try:
                conf = json.loads(conf)
            except ValueError as exc:
                raise AsyncflowError(
                    f"DAG {self.dag_id!r}, task {self.task_id!r}: conf is not JSON: {exc}"
                ) from None
        if conf is None:
            return {}
        if not isinstance(conf, dict):
            raise AsyncflowError(
                f"DAG {self.dag_id!r}, task {self.task_id!r}: conf must be a dict, got "
                f"{type(conf).__name__}"
            )
        return conf

    async def _existing(self, logical_date: datetime | None) -> DagRun | None:
        engine = task_engine("TriggerDagRunOperator")
        if self.trigger_run_id:
            found = await engine.get_run(self.trigger_dag_id, str(self.trigger_run_id))
            if found is not None:
                return found
        if logical_date is not None:
            return await engine.find_run(self.trigger_dag_id, logical_date)
        return None

    async def execute(self, context: Context) -> None:
        engine = task_engine("TriggerDagRunOperator")
        logical_date = _moment(self.logical_date, self)
        run_id = str(self.trigger_run_id) if self.trigger_run_id else None
        try:
            run = await engine.trigger_dag(
                self.trigger_dag_id, conf=self._conf(), logical_date=logical_date, run_id=run_id
            )
        except DagRunAlreadyExists:
            existing = await self._existing(logical_date)
            if existing is None:
                raise
            if self.reset_dag_run:
                run = await engine.reset_run(existing.dag_id, existing.run_id)
                self.log.info("cleared the existing run %s of %s", run.run_id, run.dag_id)
            elif self.skip_when_already_exists:
                raise AsyncflowSkipException(
                    f"DAG {self.trigger_dag_id!r} already has run {existing.run_id!r}"
                ) from None
            else:
                raise
        else:
            self.log.info("triggered run %s of DAG %s", run.run_id, run.dag_id)
        context["ti"].xcom_push(XCOM_RUN_ID, run.run_id)
        if not self.wait_for_completion:
            return
        finished = await engine.wait_for_run(run.dag_id, run.run_id)
        state = finished.state
        if state in self.failed_states:
            raise AsyncflowError(
                f"run {run.run_id!r} of DAG {run.dag_id!r} ended {state.value}, one of "
                f"failed_states {[s.value for s in self.failed_states]}"
            )
        if state not in self.allowed_states:
            raise AsyncflowError(
                f"run {run.run_id!r} of DAG {run.dag_id!r} ended {state.value}, which is in "
                f"neither allowed_states {[s.value for s in self.allowed_states]} nor "
                f"failed_states {[s.value for s in self.failed_states]}"
            )
        self.log.info("run %s of DAG %s ended %s", run.run_id, run.dag_id, state.value)
