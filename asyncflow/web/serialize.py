"""Records as the API's JSON, in Airflow REST API v2 field names."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncflow.models.dag import DAG
from asyncflow.models.param import NOTSET, Param
from asyncflow.records import DagRun, ImportErrorRecord, TaskInstance


def when(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def param_schema(param: Param) -> dict[str, Any]:
    """One param as the JSON schema Airflow's trigger form is built from."""
    schema: dict[str, Any] = {}
    if param.type:
        schema["type"] = param.type[0] if len(param.type) == 1 else list(param.type)
    if param.default is not NOTSET:
        schema["default"] = param.default
    for name in ("description", "enum", "minimum", "maximum"):
        value = getattr(param, name)
        if value is not None:
            schema[name] = value
    return schema


def dag_json(dag: DAG, *, is_paused: bool, detail: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dag_id": dag.dag_id,
        "description": dag.description,
        "fileloc": dag.fileloc,
        "is_paused": is_paused,
        "tags": [{"name": tag} for tag in dag.tags],
        "timetable_summary": dag.timetable.summary,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
    }
    if detail:
        data["params"] = {name: param_schema(p) for name, p in dag.params.items()}
        data["task_ids"] = [t.task_id for t in dag.topological_sort()]
        data["start_date"] = when(dag.start_date)
        data["catchup"] = dag.catchup
        data["doc_md"] = dag.doc_md
    return data


def run_json(run: DagRun) -> dict[str, Any]:
    return {
        "dag_run_id": run.run_id,
        "dag_id": run.dag_id,
        "logical_date": when(run.logical_date),
        "queued_at": when(run.queued_at),
        "start_date": when(run.start_date),
        "end_date": when(run.end_date),
        "duration": run.duration,
        "data_interval_start": when(run.data_interval_start),
        "data_interval_end": when(run.data_interval_end),
        "run_type": run.run_type.value,
        "state": run.state.value,
        "conf": run.conf,
    }


def ti_json(ti: TaskInstance) -> dict[str, Any]:
    return {
        "task_id": ti.task_id,
        "dag_id": ti.dag_id,
        "dag_run_id": ti.run_id,
        "map_index": ti.map_index,
        "state": ti.state.value,
        "try_number": ti.try_number,
        "max_tries": ti.max_tries,
        "start_date": when(ti.start_date),
        "end_date": when(ti.end_date),
        "duration": ti.duration,
        "error": ti.error,
        "next_try_at": when(ti.next_try_at),
    }


def import_error_json(index: int, record: ImportErrorRecord) -> dict[str, Any]:
    return {
        "import_error_id": index,
        "filename": record.fileloc,
        "message": record.message,
        "stack_trace": record.stacktrace,
        "timestamp": when(record.timestamp),
    }
