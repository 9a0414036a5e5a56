"""The REST API, with Airflow REST API v2 resource names, over the Engine's public methods.

Each operation is one `Operation` in `OPERATIONS`: the routes and `/openapi.json` are both
built from that table, so the document cannot name a route that is not there, or miss one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from asyncflow import __version__
from asyncflow.engine.engine import Engine
from asyncflow.engine.tasklog import attempt_log_path
from asyncflow.exceptions import TaskNotFound
from asyncflow.records import ImportErrorRecord
from asyncflow.states import ACTIVE, FINISHED, TaskState
from asyncflow.web.serialize import dag_json, import_error_json, run_json, ti_json

Handler = Callable[[Request], Awaitable[Response]]

MAX_LIMIT = 1000
LOG_CHUNK = 1 << 20
#: the states a task instance may be marked with by hand
MARKABLE = ("success", "failed", "skipped")


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    handler: Handler
    summary: str
    auth: bool = True
    query: tuple[tuple[str, str, str], ...] = ()  # (name, JSON type, description)
    body: dict[str, Any] | None = None  # JSON schema of the request body
    responses: tuple[int, ...] = (200,)
    content_type: str = "application/json"
    tags: tuple[str, ...] = field(default=())


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def page(request: Request, default: int = 100) -> tuple[int, int]:
    return (
        _int_arg(request, "limit", default, 1, MAX_LIMIT),
        _int_arg(request, "offset", 0, 0, 10**9),
    )


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"query parameter {name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ApiError(400, f"query parameter {name}={value} must be between {low} and {high}")
    return value


def _bool_arg(request: Request, name: str) -> bool | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no"):
        return False
    raise ApiError(400, f"query parameter {name}={raw!r} must be true or false")


async def body_of(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def _field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], what: str) -> Any:
    value = body.get(name)
    if value is not None and (
        not isinstance(value, kind) or isinstance(value, bool) != (kind is bool)
    ):
        raise ApiError(400, f"{name} must be {what}, got {value!r}")
    return value


def listing(key: str, items: list[dict[str, Any]], total: int) -> JSONResponse:
    return JSONResponse({key: items, "total_entries": total})


# -- monitor ----------------------------------------------------------------------------------


async def health(request: Request) -> Response:
    engine = engine_of(request)
    try:
        with anyio.fail_after(5):
            await engine.ping()
    except Exception as exc:  # the answer is the report: unhealthy, and why
        return JSONResponse(
            {"scheduler": {"status": "unhealthy", "error": f"{type(exc).__name__}: {exc}"}},
            status_code=503,
        )
    stats = engine.statistics()
    scheduler = {"status": "healthy", "active_runs": stats["active_runs"],
                 "running": stats["running"]}  # fmt: skip
    return JSONResponse({"scheduler": scheduler, "metadatabase": {"status": "healthy"}})


async def version(request: Request) -> Response:
    return JSONResponse({"version": __version__, "git_version": None})


# -- DAGs -------------------------------------------------------------------------------------


async def list_dags(request: Request) -> Response:
    engine = engine_of(request)
    limit, offset = page(request)
    pattern = request.query_params.get("dag_id_pattern", "").lower()
    paused = _bool_arg(request, "paused")
    tags = set(request.query_params.getlist("tags"))
    found = []
    for dag_id, dag in sorted(engine.dags.items()):
        is_paused = engine.is_paused(dag_id)
        if pattern and pattern not in dag_id.lower():
            continue
        if paused is not None and is_paused != paused:
            continue
        if tags and not tags & set(dag.tags):
            continue
        found.append(dag_json(dag, is_paused=is_paused))
    return listing("dags", found[offset : offset + limit], len(found))


async def get_dag(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    dag = engine.get_dag(dag_id)
    return JSONResponse(dag_json(dag, is_paused=engine.is_paused(dag_id), detail=True))


async def patch_dag(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    engine.get_dag(dag_id)
    body = await body_of(request)
    is_paused = _field(body, "is_paused", bool, "true or false")
    if is_paused is None:
        raise ApiError(400, "the body must set is_paused (true or false)")
    if is_paused:
        await engine.pause_dag(dag_id)
    else:
        await engine.unpause_dag(dag_id)
    return JSONResponse(dag_json(engine.get_dag(dag_id), is_paused=engine.is_paused(dag_id)))


async def delete_dag(request: Request) -> Response:
    """Airflow's DELETE: the DAG's runs, task instances, XComs and paused flag; a DAG still in
    the folder is scheduled afresh. 409 while a run is queued or running."""
    from asyncflow.engine.commands import delete_dag_live

    dag_id = request.path_params["dag_id"]
    counts = await delete_dag_live(engine_of(request), dag_id)
    return JSONResponse({"dag_id": dag_id, "deleted": counts})


# -- DAG runs ---------------------------------------------------------------------------------


async def list_runs(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    limit, offset = page(request)
    state = request.query_params.getlist("state")
    runs = await engine.get_dag_runs(dag_id)
    if state:
        runs = [r for r in runs if r.state.value in state]
    return listing("dag_runs", [run_json(r) for r in runs[offset : offset + limit]], len(runs))


def _date(body: dict[str, Any], name: str) -> datetime | None:
    raw = _field(body, name, str, "an ISO 8601 date-time")
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise ApiError(400, f"{name} must be an ISO 8601 date-time, got {raw!r}") from None
    if value.tzinfo is None:
        raise ApiError(400, f"{name} {raw!r} has no time zone: add one, e.g. +00:00 or Z")
    return value


async def trigger_run(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    engine.get_dag(dag_id)
    body = await body_of(request)
    conf = _field(body, "conf", dict, "a JSON object")
    run_id = _field(body, "dag_run_id", str, "a string")
    run = await engine.trigger_dag(
        dag_id, conf=conf, logical_date=_date(body, "logical_date"), run_id=run_id or None
    )
    return JSONResponse(run_json(run), status_code=200)


async def get_run(request: Request) -> Response:
    engine = engine_of(request)
    p = request.path_params
    engine.get_dag(p["dag_id"])
    return JSONResponse(run_json(await engine.get_dag_run(p["dag_id"], p["dag_run_id"])))


async def clear_run(request: Request) -> Response:
    engine = engine_of(request)
    p = request.path_params
    dag = engine.get_dag(p["dag_id"])
    body = await body_of(request)
    dry_run = _field(body, "dry_run", bool, "true or false")
    only_failed = bool(_field(body, "only_failed", bool, "true or false"))
    task_ids = _field(body, "task_ids", list, "a list of task ids") or dag.task_ids
    for task_id in task_ids:
        if not isinstance(task_id, str) or not dag.has_task(task_id):
            raise ApiError(400, f"DAG {dag.dag_id!r} has no task {task_id!r}")
    tis = await engine.get_task_instances(p["dag_id"], p["dag_run_id"])
    if dry_run is None or dry_run:  # Airflow's default: show what would be cleared
        chosen = set(task_ids)
        would = [
            ti_json(ti) for ti in tis
            if ti.task_id in chosen and ti.state is not TaskState.NONE
            and (not only_failed or ti.state in (TaskState.FAILED, TaskState.UPSTREAM_FAILED))
        ]  # fmt: skip
        return listing("task_instances", would, len(would))
    cleared = await engine.clear_task_instances(
        p["dag_id"], p["dag_run_id"], task_ids, only_failed=only_failed
    )
    return JSONResponse(
        run_json(await engine.get_dag_run(p["dag_id"], p["dag_run_id"]))
        | {"cleared_task_ids": cleared}
    )


# -- task instances ---------------------------------------------------------------------------


async def list_tis(request: Request) -> Response:
    engine = engine_of(request)
    p = request.path_params
    engine.get_dag(p["dag_id"])
    limit, offset = page(request, default=MAX_LIMIT)
    tis = await engine.get_task_instances(p["dag_id"], p["dag_run_id"])
    state = request.query_params.getlist("state")
    if state:
        tis = [ti for ti in tis if ti.state.value in state]
    return listing("task_instances", [ti_json(t) for t in tis[offset : offset + limit]], len(tis))


async def _ti(request: Request) -> Any:
    engine = engine_of(request)
    p = request.path_params
    dag = engine.get_dag(p["dag_id"])
    if not dag.has_task(p["task_id"]):
        raise TaskNotFound(p["dag_id"], p["task_id"])
    for ti in await engine.get_task_instances(p["dag_id"], p["dag_run_id"]):
        if ti.task_id == p["task_id"] and ti.map_index == -1:
            return ti
    raise TaskNotFound(p["dag_id"], p["task_id"])


async def get_ti(request: Request) -> Response:
    return JSONResponse(ti_json(await _ti(request)))


async def patch_ti(request: Request) -> Response:
    engine = engine_of(request)
    p = request.path_params
    await _ti(request)
    body = await body_of(request)
    new_state = _field(body, "new_state", str, f"one of {', '.join(MARKABLE)}")
    if new_state not in MARKABLE:
        raise ApiError(400, f"new_state must be one of {', '.join(MARKABLE)}, got {new_state!r}")
    changed = await engine.set_task_instance_state(
        p["dag_id"], p["dag_run_id"], p["task_id"], new_state,
        downstream=bool(_field(body, "include_downstream", bool, "true or false")),
        upstream=bool(_field(body, "include_upstream", bool, "true or false")),
    )  # fmt: skip
    tis = await engine.get_task_instances(p["dag_id"], p["dag_run_id"])
    found = [ti_json(ti) for ti in tis if ti.task_id in changed]
    return listing("task_instances", found, len(found))


async def get_log(request: Request) -> Response:
    """A byte range of one attempt's log: from `token` (a byte offset; 0 when absent) to the
    last complete line. With `follow`, waits up to `wait` seconds for more while it runs."""
    engine = engine_of(request)
    p = request.path_params
    ti = await _ti(request)
    n = _int_arg(request, "try_number", int(p["try_number"]), 1, 10**6)
    if n > ti.try_number + 1:
        raise ApiError(404, f"task {ti.task_id!r} of run {ti.run_id!r} has no try {n} yet")
    if engine.logs_folder is None:
        raise ApiError(404, "this engine keeps no task logs (it has no logs_folder)")
    path = attempt_log_path(engine.logs_folder, ti.dag_id, ti.run_id, ti.task_id, n, ti.map_index)
    offset = _int_arg(request, "token", 0, 0, 10**15)
    follow = bool(_bool_arg(request, "follow"))
    wait = _int_arg(request, "wait", 10, 0, 60)
    deadline = anyio.current_time() + wait
    while True:
        live = (ti.try_number == n and ti.state in ACTIVE) or (
            ti.try_number == n - 1 and ti.state not in FINISHED
        )
        content, end = _read_log(path, offset, complete=not live)
        if content or not live or not follow or anyio.current_time() >= deadline:
            break
        await anyio.sleep(0.2)
        ti = await _ti(request)
    return JSONResponse({
        "content": content.decode("utf-8", errors="replace"),
        "continuation_token": str(end),
        "end_of_log": not live and end >= _size(path),
    })  # fmt: skip


def _size(path: Any) -> int:
    try:
        return int(path.stat().st_size)
    except FileNotFoundError:
        return 0


def _read_log(path: Any, offset: int, *, complete: bool) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as file:
            file.seek(offset)
            data = file.read(LOG_CHUNK)
    except FileNotFoundError:
        return b"", offset
    if not complete and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]  # only whole lines while the task still writes
    return data, offset + len(data)


# -- the rest -----------------------------------------------------------------------------------


async def import_errors(request: Request) -> Response:
    engine = engine_of(request)
    limit, offset = page(request)
    items = [import_error_json(i, r) for i, r in enumerate(await current_import_errors(engine), 1)]
    return listing("import_errors", items[offset : offset + limit], len(items))


async def current_import_errors(engine: Engine) -> list[ImportErrorRecord]:
    """The engine's import errors now, with the stored stack trace and time where known."""
    stored = {r.fileloc: r for r in await engine.store.get_import_errors()}
    now = engine.clock.now()
    return [
        ImportErrorRecord(f, message, stored[f].stacktrace if f in stored else "",
                          stored[f].timestamp if f in stored else now)
        for f, message in sorted(engine.import_errors.items())
    ]  # fmt: skip


async def pools(request: Request) -> Response:
    engine = engine_of(request)
    found = sorted((await engine.store.get_pools()).items())
    items = [{"name": name, "slots": slots} for name, slots in found]
    return listing("pools", items, len(items))
