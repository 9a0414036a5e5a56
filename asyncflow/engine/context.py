"""The template context a task sees, and the `ti` object inside it (XCom push/pull, skips)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from asyncflow.engine.tasklog import current_log
from asyncflow.exceptions import XComTooLarge
from asyncflow.logs import get_logger
from asyncflow.models import xcom_codec
from asyncflow.models.connection import ConnectionAccessor
from asyncflow.models.mapped import DEFAULT_MAX_MAP_LENGTH
from asyncflow.models.param import resolve_params
from asyncflow.models.secrets import redact
from asyncflow.models.statestore import AssetStateStores, TaskScope, TaskStateStore
from asyncflow.models.variable import VariableAccessor
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.records import DagRun

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine
    from asyncflow.models.baseoperator import BaseOperator, Context
    from asyncflow.models.dag import DAG

_task_log = get_logger("asyncflow.task")

#: the largest XCom (its JSON text, in bytes) a task may push unless the engine or DAG says
DEFAULT_MAX_XCOM_BYTES = 1 << 20

#: (task_id, map_index, key) -> the XCom's JSON text
XComCache = dict[tuple[str, int, str], str]


def ds_add(ds: str, days: int) -> str:
    """`{{ macros.ds_add(ds, 7) }}`: a YYYY-MM-DD date moved by `days`."""
    return (datetime.strptime(ds, "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    return datetime.strptime(ds, input_format).strftime(output_format)


class _Macros:
    datetime = datetime
    timedelta = timedelta
    json = json
    ds_add = staticmethod(ds_add)
    ds_format = staticmethod(ds_format)


macros = _Macros()
_VARIABLES = VariableAccessor()
_CONNECTIONS = ConnectionAccessor()


def run_context(dag: DAG, run: DagRun, prev_success: DagRun | None = None) -> dict[str, Any]:
    """What every task of one run shares; built once per run. `prev_success`: the DAG's latest
    successful run before this one (Airflow's prev_*_success keys; None when there is none)."""
    logical = run.logical_date
    ds = logical.strftime("%Y-%m-%d")
    ts = logical.isoformat()
    context: dict[str, Any] = {
        "dag": dag,
        "dag_run": run,
        "run_id": run.run_id,
        "logical_date": logical,
        "execution_date": logical,
        "ds": ds,
        "ds_nodash": ds.replace("-", ""),
        "ts": ts,
        "ts_nodash": logical.strftime("%Y%m%dT%H%M%S"),
        "ts_nodash_with_tz": ts.replace("-", "").replace(":", ""),
        "data_interval_start": run.data_interval_start,
        "data_interval_end": run.data_interval_end,
        "params": resolve_params(dag.params, run.conf, dag_id=dag.dag_id),
        "macros": macros,
        "conf": run.conf,
        "var": _VARIABLES,
        "conn": _CONNECTIONS,
        "prev_data_interval_start_success": prev_success and prev_success.data_interval_start,
        "prev_data_interval_end_success": prev_success and prev_success.data_interval_end,
        "prev_start_date_success": prev_success and prev_success.start_date,
        "prev_end_date_success": prev_success and prev_success.end_date,
    }
    context.update(dag.user_defined_macros)
    return context


class RuntimeTaskInstance:
    """`context["ti"]`: the running attempt of one task instance."""

    __slots__ = (
        "_xcoms", "dag_id", "engine_max_map_length", "engine_max_xcom_bytes", "first_poke",
        "map_index", "max_tries",
        "pokes", "pushed", "run_id", "skipped", "start_date",
        "task", "task_id", "try_number",
    )  # fmt: skip

    def __init__(
        self,
        task: BaseOperator,
        run: DagRun,
        try_number: int,
        max_tries: int,
        xcoms: XComCache,
        start_date: datetime | None = None,
        map_index: int = -1,
    ) -> None:
        self.task = task
        self.dag_id = run.dag_id
        self.run_id = run.run_id
        self.task_id = task.task_id
        self.map_index = map_index
        self.try_number = try_number
        self.max_tries = max_tries
        self.start_date = start_date
        self._xcoms = xcoms
        #: XComs pushed during this attempt: key -> JSON text (committed with the outcome)
        self.pushed: dict[str, str] = {}
        #: task_ids this attempt asked to skip (branching, short-circuit)
        self.skipped: set[str] = set()
        #: reschedule-mode sensors: when this try first poked, and how many pokes so far
        self.first_poke: datetime | None = None
        self.pokes = 1
        #: the engine's limit on one XCom's JSON size (Engine(max_xcom_bytes=...))
        self.engine_max_xcom_bytes = DEFAULT_MAX_XCOM_BYTES
        #: the most items a value that a mapped task maps over may have (max_map_length)
        self.engine_max_map_length = DEFAULT_MAX_MAP_LENGTH

    def __repr__(self) -> str:
        index = f" map_index {self.map_index}" if self.map_index >= 0 else ""
        return (
            f"<TaskInstance: {self.dag_id}.{self.task_id} {self.run_id}{index} "
            f"try {self.try_number}>"
        )

    @property
    def max_xcom_bytes(self) -> int:
        """The largest XCom this attempt may push: its DAG's `max_xcom_bytes`, else the
        engine's."""
        dag = self.task.dag
        own = dag.max_xcom_bytes if dag is not None else None
        return own if own is not None else self.engine_max_xcom_bytes

    def xcom_push(self, key: str, value: Any) -> None:
        """Store `value` (JSON, or a type `xcom_codec` tags) under `key`; visible to others
        once committed."""
        try:
            text = xcom_codec.dumps(value)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"DAG {self.dag_id!r}, task {self.task_id!r}: XCom {key!r} cannot be stored: "
                f"{exc}; return or push one of those, or convert the value first"
            ) from None
        size = len(text.encode())
        if size > self.max_xcom_bytes:
            raise XComTooLarge(self.task_id, key, size, self.max_xcom_bytes)
        self.pushed[key] = text

    def xcom_pull(
        self,
        task_ids: str | Iterable[str] | None = None,
        key: str = RETURN_KEY,
        map_indexes: int | None = None,
        default: Any = None,
        dag_id: str | None = None,
    ) -> Any:
        """The XCom of `task_ids` (one id: its value; a list: a list) in this run.
        `task_ids=None` pulls from this task itself. `dag_id` may name this run's DAG only."""
        if dag_id is not None and dag_id != self.dag_id:
            raise ValueError(
                f"task {self.task_id!r} pulls an XCom of DAG {dag_id!r}: only XComs of this "
                f"run (DAG {self.dag_id!r}) can be pulled"
            )
        index = -1 if map_indexes is None else map_indexes
        if task_ids is None:
            task_ids = self.task_id
        if isinstance(task_ids, str):
            return self._pull_one(task_ids, key, index, default)
        return [self._pull_one(t, key, index, default) for t in task_ids]

    def _pull_one(self, task_id: str, key: str, map_index: int, default: Any) -> Any:
        if task_id == self.task_id and key in self.pushed:
            return xcom_codec.loads(self.pushed[key])
        if map_index < 0 and self._is_mapped(task_id):
            return self._pull_mapped(task_id, key)
        raw = self._xcoms.get((task_id, map_index, key))
        return default if raw is None else xcom_codec.loads(raw)

    def _is_mapped(self, task_id: str) -> bool:
        dag = self.task.dag
        task = dag.task_dict.get(task_id) if dag is not None else None
        return task is not None and task.is_mapped

    def _pull_mapped(self, task_id: str, key: str) -> list[Any]:
        """A mapped task's XComs, all its instances', in map_index order (Airflow's lazy
        sequence, read at once: the values are already in memory)."""
        found = sorted(
            (index, raw)
            for (tid, index, k), raw in self._xcoms.items()
            if tid == task_id and k == key and index >= 0
        )
        return [xcom_codec.loads(raw) for _, raw in found]

    def log_line(self, line: str) -> None:
        """One line of task output (a subprocess's stdout) into this attempt's log."""
        log = current_log.get()
        if log is not None:
            log.line(line, source="output")
        else:
            _task_log.info(
                redact(line), dag_id=self.dag_id, task_id=self.task_id, run_id=self.run_id
            )

    def skip(self, task_ids: Iterable[str]) -> None:
        """Mark these (downstream) tasks to be skipped when this attempt succeeds."""
        self.skipped.update(task_ids)


def task_context(base: Mapping[str, Any], task: BaseOperator, ti: RuntimeTaskInstance) -> Context:
    context = dict(base)
    context["task"] = task
    context["ti"] = context["task_instance"] = ti
    context["try_number"] = ti.try_number
    context["task_instance_key_str"] = f"{ti.dag_id}__{task.task_id}__{base['ds_nodash']}"
    context["inlets"] = list(getattr(task, "inlets", None) or ())  # no assets yet: empty
    context["outlets"] = list(getattr(task, "outlets", None) or ())
    context["task_state_store"] = TaskStateStore(
        TaskScope(ti.dag_id, ti.run_id, ti.task_id, ti.map_index)
    )
    assets = AssetStateStores(task.task_id, [*context["inlets"], *context["outlets"]])
    if len(assets):  # as Airflow: only for a task with an asset among its inlets or outlets
        context["asset_state_store"] = assets
    if task.params:
        merged = dict(base["params"])
        for name, param in task.params.items():
            if name not in base["dag_run"].conf:
                merged[name] = param.resolve(name)
        context["params"] = merged
    return context


class EngineForTasks:
    """The narrow view of an Engine its tasks get (`models.engine_access.TaskEngine`): the
    same commands and reads the embedding API offers, nothing that bypasses the scheduler."""

    __slots__ = ("_engine",)

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def home(self) -> Path | None:
        database = getattr(self._engine.store, "database", ":memory:")
        if not database or database == ":memory:" or str(database).startswith("file:"):
            return None
        return Path(database).resolve().parent

    def now(self) -> datetime:
        return self._engine.clock.now()

    async def sleep_until(self, when: datetime) -> None:
        clock = self._engine.clock
        while clock.now() < when:
            await clock.wait(anyio.Event(), when)

    def task_ids(self, dag_id: str) -> list[str] | None:
        dag = self._engine.dags.get(dag_id)
        return None if dag is None else list(dag.task_dict)

    async def trigger_dag(
        self,
        dag_id: str,
        *,
        conf: Mapping[str, Any] | None,
        logical_date: datetime | None,
        run_id: str | None,
    ) -> DagRun:
        return await self._engine.trigger_dag(
            dag_id, conf=conf, logical_date=logical_date, run_id=run_id
        )

    async def reset_run(self, dag_id: str, run_id: str) -> DagRun:
        engine = self._engine
        await engine.clear_task_instances(dag_id, run_id, list(engine.get_dag(dag_id).task_dict))
        return await engine.get_dag_run(dag_id, run_id)

    async def get_run(self, dag_id: str, run_id: str) -> DagRun | None:
        return await self._engine.store.get_dag_run(dag_id, run_id)

    async def find_run(self, dag_id: str, logical_date: datetime) -> DagRun | None:
        return await self._engine.store.find_dag_run(dag_id, logical_date)

    async def wait_for_run(self, dag_id: str, run_id: str) -> DagRun:
        return await self._engine.wait_for_run(dag_id, run_id)

    async def task_states(self, dag_id: str, run_id: str) -> dict[str, list[str]]:
        states: dict[str, list[str]] = {}
        for ti in await self._engine.store.get_task_instances(dag_id, run_id):
            states.setdefault(ti.task_id, []).append(ti.state.value)
        return states
