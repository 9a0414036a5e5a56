"""The dashboard: server-rendered pages (jinja2, autoescaped) over the same Engine calls as
the API; `static/app.js` keeps them live with the event stream."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from asyncflow.engine.engine import Engine
from asyncflow.exceptions import AsyncflowError, NotFoundError
from asyncflow.models.dag import DAG
from asyncflow.models.param import NOTSET, Param
from asyncflow.records import DagRun
from asyncflow.states import FINISHED, TaskState
from asyncflow.web.api import MARKABLE, current_import_errors
from asyncflow.web.auth import COOKIE, SAFE_METHODS, same_origin, session_value
from asyncflow.web.serialize import param_schema

Page = Callable[[Request], Awaitable[Response]]
RUNS_PER_PAGE = 25
TASKS_PER_PAGE = 200
DAGS_PER_PAGE = 50


def templates() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
        autoescape=True,  # a DAG id, a conf value or a log line is text, never markup
        undefined=jinja2.StrictUndefined,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["tojson_text"] = lambda value: json.dumps(value, indent=2, default=str)
    return env


def base_of(request: Request) -> str:
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    env: jinja2.Environment = request.app.state.templates
    html = env.get_template(name).render(
        base=base_of(request), request=request, signed_in=request.app.state.auth.enabled,
        **context,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def page(handler: Page) -> Page:
    """Signed-in browsers only; a state change only from this origin; errors as a page."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        if request.app.state.auth.identify(request) is None:
            target = quote(request.url.path, safe="/")
            return RedirectResponse(f"{base_of(request)}/login?next={target}", status_code=303)
        if request.method not in SAFE_METHODS and not same_origin(request):
            return render(request, "error.html", 403, message="A state change from another "
                          "origin was refused.")  # fmt: skip
        try:
            return await handler(request)
        except NotFoundError as exc:
            return render(request, "error.html", 404, message=str(exc))
        except AsyncflowError as exc:
            return render(request, "error.html", 400, message=str(exc))

    return endpoint


async def form_of(request: Request) -> dict[str, str]:
    """A url-encoded form (all our forms are; no multipart parser needed)."""
    body = (await request.body()).decode("utf-8", errors="replace")
    return {k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()}


def engine_of(request: Request) -> Engine:
    engine: Engine = request.app.state.engine
    return engine


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name, "")
    return max(0, int(raw)) if raw.isdigit() else default


# -- sign-in ------------------------------------------------------------------------------------


async def login(request: Request) -> Response:
    auth = request.app.state.auth
    target = request.query_params.get("next", "/")
    if not target.startswith("/") or target.startswith("//"):
        target = "/"
    if not auth.enabled:
        return RedirectResponse(base_of(request) + target, status_code=303)
    if request.method == "GET":
        return render(request, "login.html", error=None, next=target)
    if not same_origin(request):
        return render(request, "login.html", 403, error="Sign-in from another origin refused.",
                      next=target)  # fmt: skip
    form = await form_of(request)
    presented = str(form.get("token", "")).strip()
    if not presented or not auth.check_token(presented):
        return render(request, "login.html", 401, error="That is not the API token (see "
                      "<home>/api-token on the daemon's host).", next=target)  # fmt: skip
    response = RedirectResponse(base_of(request) + target, status_code=303)
    response.set_cookie(
        COOKIE, session_value(auth.token()), httponly=True, samesite="strict",
        secure=request.url.scheme == "https", path=base_of(request) or "/",
    )  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse(base_of(request) + "/login", status_code=303)
    response.delete_cookie(COOKIE, path=base_of(request) or "/")
    return response


# -- DAGs ---------------------------------------------------------------------------------------


async def dag_list(request: Request) -> Response:
    engine = engine_of(request)
    offset = _int(request, "offset", 0)
    dags = sorted(engine.dags.values(), key=lambda d: d.dag_id)
    shown = dags[offset : offset + DAGS_PER_PAGE]
    rows = []
    for dag in shown:
        runs = await engine.store.get_dag_runs(dag.dag_id, limit=10)
        rows.append({"dag": dag, "paused": engine.is_paused(dag.dag_id),
                     "runs": list(reversed(runs))})  # fmt: skip
    errors = await current_import_errors(engine)
    return render(request, "dags.html", rows=rows, errors=errors, offset=offset,
                  total=len(dags), per_page=DAGS_PER_PAGE,
                  last_event_id=request.app.state.hub.last_id)  # fmt: skip


async def toggle_pause(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    form = await form_of(request)
    if form.get("is_paused") == "true":
        await engine.pause_dag(dag_id)
    else:
        await engine.unpause_dag(dag_id)
    back = str(form.get("back", "")) or "/"
    return RedirectResponse(base_of(request) + (back if back.startswith("/") else "/"), 303)


async def grid(request: Request) -> Response:
    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    last_event_id = request.app.state.hub.last_id  # before reading: nothing falls between
    dag = engine.get_dag(dag_id)
    run_offset, task_offset = _int(request, "offset", 0), _int(request, "task_offset", 0)
    store = engine.store
    page_runs = await store.get_dag_runs(dag_id, limit=RUNS_PER_PAGE, offset=run_offset)
    runs = list(reversed(page_runs))  # oldest on the left, as Airflow draws it
    tasks = dag.topological_sort()
    shown = tasks[task_offset : task_offset + TASKS_PER_PAGE]
    found = await store.get_ti_states(dag_id, [r.run_id for r in runs], [t.task_id for t in shown])
    states = {(ti.run_id, ti.task_id): ti.state.value for ti in found if ti.map_index == -1}
    more_runs = await store.count_dag_runs(dag_id) > run_offset + RUNS_PER_PAGE
    return render(
        request, "grid.html", dag=dag, paused=engine.is_paused(dag_id), runs=runs, tasks=shown,
        states=states, run_offset=run_offset, task_offset=task_offset,
        more_runs=more_runs, total_tasks=len(tasks),
        runs_per_page=RUNS_PER_PAGE, tasks_per_page=TASKS_PER_PAGE, last_event_id=last_event_id,
    )  # fmt: skip


async def graph(request: Request) -> Response:
    """The DAG's tasks and dependencies as SVG, coloured by the states of one run (`?run=`,
    the latest by default) and kept live by the event stream."""
    from asyncflow.web.graph import MAX_NODES, layout

    engine = engine_of(request)
    dag_id = request.path_params["dag_id"]
    last_event_id = request.app.state.hub.last_id
    dag = engine.get_dag(dag_id)
    wanted = request.query_params.get("run")
    run: DagRun | None
    if wanted:
        run = await engine.get_dag_run(dag_id, wanted)
    else:
        latest = await engine.store.get_dag_runs(dag_id, limit=1)
        run = latest[0] if latest else None
    states: dict[str, str] = {}
    if run is not None:
        found = await engine.store.get_ti_states(dag_id, [run.run_id])
        states = {ti.task_id: ti.state.value for ti in found if ti.map_index == -1}
    total = len(dag.task_dict)
    drawn = layout(dag) if total <= MAX_NODES else None
    return render(request, "graph.html", dag=dag, run=run, states=states, layout=drawn,
                  total=total, last_event_id=last_event_id)  # fmt: skip


# -- trigger ------------------------------------------------------------------------------------


def form_fields(dag: DAG) -> list[dict[str, Any]]:
    """One input per param, chosen from its JSON schema."""
    fields = []
    for name, param in dag.params.items():
        schema = param_schema(param)
        kind = param.type[0] if len(param.type) == 1 else "json"
        widget = "select" if param.enum else {
            "string": "text", "integer": "number", "number": "number", "boolean": "checkbox",
        }.get(kind, "json")  # fmt: skip
        default = None if param.default is NOTSET else param.default
        value = json.dumps(default) if widget in ("json", "select") else default
        fields.append({"name": name, "widget": widget, "schema": schema, "value": value,
                       "required": param.default is NOTSET, "param": param,
                       "options": [json.dumps(v) for v in param.enum or []]})  # fmt: skip
    return fields


def conf_from_form(form: Any, params: dict[str, Param]) -> dict[str, Any]:
    raw = str(form.get("conf", "")).strip()
    try:
        conf = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"the raw conf is not valid JSON: {exc}") from None
    if not isinstance(conf, dict):
        raise ValueError("the raw conf must be a JSON object")
    for name, param in params.items():
        kind = param.type[0] if len(param.type) == 1 else "json"
        if param.enum or kind not in ("string", "integer", "number", "boolean"):
            text = str(form.get(f"param.{name}", "")).strip()
            if text:
                try:
                    conf[name] = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"param {name!r}: not valid JSON: {exc}") from None
        elif kind == "boolean":
            conf[name] = form.get(f"param.{name}") == "on"
        else:
            text = str(form.get(f"param.{name}", "")).strip()
            if text:
                try:
                    conf[name] = {"string": str, "integer": int, "number": float}[kind](text)
                except ValueError:
                    raise ValueError(f"param {name!r}: {text!r} is not a {kind}") from None
    return conf


async def trigger(request: Request) -> Response:
    engine = engine_of(request)
    dag = engine.get_dag(request.path_params["dag_id"])
    error, conf_text = None, ""
    if request.method == "POST":
        form = await form_of(request)
        conf_text = str(form.get("conf", ""))
        try:
            conf = conf_from_form(form, dag.params)
            run = await engine.trigger_dag(
                dag.dag_id, conf=conf, run_id=str(form.get("run_id", "")).strip() or None
            )
        except (AsyncflowError, ValueError) as exc:
            error = str(exc)
        else:
            return RedirectResponse(
                f"{base_of(request)}/dags/{quote(dag.dag_id, safe='')}?run={quote(run.run_id)}",
                303,
            )
    return render(request, "trigger.html", 400 if error else 200, dag=dag,
                  fields=form_fields(dag), error=error, conf_text=conf_text)  # fmt: skip


# -- a run, a task try --------------------------------------------------------------------------


async def run_page(request: Request) -> Response:
    engine = engine_of(request)
    dag_id, run_id = request.path_params["dag_id"], request.path_params["run_id"]
    last_event_id = request.app.state.hub.last_id
    dag = engine.get_dag(dag_id)
    run = await engine.get_dag_run(dag_id, run_id)
    tis = await engine.get_task_instances(dag_id, run_id)
    order = {t.task_id: i for i, t in enumerate(dag.topological_sort())}
    tis.sort(key=lambda ti: (order.get(ti.task_id, len(order)), ti.map_index))
    counts = Counter(ti.state.value for ti in tis)
    started = [ti for ti in tis if ti.start_date is not None]
    bars = []
    if started:
        first = min(ti.start_date for ti in started if ti.start_date is not None)
        last = max((ti.end_date or run.end_date or ti.start_date) for ti in started
                   if ti.start_date is not None)  # fmt: skip
        span = max((last - first).total_seconds(), 1e-3)
        for ti in started:
            assert ti.start_date is not None
            end = ti.end_date or last
            bars.append(
                {
                    "ti": ti,
                    "left": (ti.start_date - first).total_seconds() / span * 100,
                    "width": max((end - ti.start_date).total_seconds() / span * 100, 0.5),
                }
            )
    done = sum(1 for ti in tis if ti.state in FINISHED)
    return render(request, "run.html", dag=dag, run=run, tis=tis, counts=sorted(counts.items()),
                  bars=bars, done=done, markable=MARKABLE, last_event_id=last_event_id)  # fmt: skip


async def run_action(request: Request) -> Response:
    """Clear or mark from the run page (the same Engine commands the API uses)."""
    engine = engine_of(request)
    dag_id, run_id = request.path_params["dag_id"], request.path_params["run_id"]
    form = await form_of(request)
    task_id = str(form.get("task_id", ""))
    action = str(form.get("action", ""))
    dag = engine.get_dag(dag_id)
    if action == "clear":
        task_ids = [task_id] if task_id else dag.task_ids
        await engine.clear_task_instances(
            dag_id, run_id, task_ids, downstream=form.get("downstream") == "on",
            only_failed=form.get("only_failed") == "on",
        )  # fmt: skip
    elif action in MARKABLE and task_id:
        await engine.set_task_instance_state(dag_id, run_id, task_id, TaskState(action))
    else:
        return render(request, "error.html", 400, message=f"unknown action {action!r}")
    url = f"{base_of(request)}/dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"
    return RedirectResponse(url, 303)


async def task_page(request: Request) -> Response:
    engine = engine_of(request)
    p = request.path_params
    dag = engine.get_dag(p["dag_id"])
    task = dag.get_task(p["task_id"])
    run = await engine.get_dag_run(p["dag_id"], p["run_id"])
    tis = [ti for ti in await engine.get_task_instances(p["dag_id"], p["run_id"])
           if ti.task_id == task.task_id]  # fmt: skip
    ti = tis[0] if tis else None
    latest = max(ti.try_number, 1) if ti is not None else 1
    try_number = min(max(_int(request, "try", latest), 1), latest)
    xcom = await engine.get_xcom(p["dag_id"], p["run_id"], task.task_id)
    return render(request, "task.html", dag=dag, run=run, task=task, ti=ti, xcom=xcom,
                  try_number=try_number, tries=range(1, latest + 1))  # fmt: skip


def routes() -> list[Route]:
    dag = "/dags/{dag_id}"
    run = dag + "/runs/{run_id:path}"  # a run_id may hold '/': the longer routes come first
    return [
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/", page(dag_list)),
        Route(dag, page(grid)),
        Route(dag + "/graph", page(graph)),
        Route(dag + "/pause", page(toggle_pause), methods=["POST"]),
        Route(dag + "/trigger", page(trigger), methods=["GET", "POST"]),
        Route(run + "/action", page(run_action), methods=["POST"]),
        Route(run + "/tasks/{task_id}", page(task_page)),
        Route(run, page(run_page)),
    ]
