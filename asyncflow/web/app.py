"""`create_app(engine, token=...)`: the API and the dashboard as one ASGI app.

The daemon serves it (`asyncflow.web.server`); an application that embeds the engine mounts
it under a prefix and runs its lifespan (which feeds the event stream):

    web = create_app(engine, token=None)   # None: the host application authenticates
    app.mount("/flow", web)
    async with web.router.lifespan_context(web): ...
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from functools import wraps
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from asyncflow.engine.engine import Engine
from asyncflow.exceptions import (
    AsyncflowError,
    DagHasActiveRuns,
    DagRunAlreadyExists,
    InvalidStateTransition,
    NotFoundError,
)
from asyncflow.web import api
from asyncflow.web.api import ApiError, Handler, Operation
from asyncflow.web.auth import SAFE_METHODS, Auth, TokenSource, same_origin
from asyncflow.web.metrics import Metrics
from asyncflow.web.openapi import document
from asyncflow.web.stream import EventHub, client_stream

STATIC = __file__.rsplit("/", 1)[0] + "/static"
_PAGED = (("limit", "integer", "at most this many (default 100)"),
          ("offset", "integer", "skip this many"))  # fmt: skip
_BOOL = {"type": "boolean"}


async def events(request: Request) -> Response:
    """Server-Sent Events of every state change, numbered; `Last-Event-ID` resumes."""
    hub: EventHub = request.app.state.hub
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    after = None
    if raw:
        try:
            after = int(raw)
        except ValueError:
            raise ApiError(400, f"Last-Event-ID {raw!r} is not an event id (an integer)") from None
    client = hub.connect(
        dag_id=request.query_params.get("dag_id") or None,
        run_id=request.query_params.get("dag_run_id") or None,
        after=after,
    )
    return EventStream(client, request.app.state.heartbeat)


class EventStream(Response):
    """Streams one SSE client. A client dropped for falling behind gets `grace` seconds to
    take its `resync` message; then the connection is closed whether it read it or not."""

    media_type = "text/event-stream"

    def __init__(self, client: Any, heartbeat: float, grace: float = 5.0) -> None:
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-store"),
            (b"x-accel-buffering", b"no"),
        ]  # no content-length: the body streams until the client or the server ends it
        self.client, self.heartbeat, self.grace = client, heartbeat, grace

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = self.client
        try:
            await send({"type": "http.response.start", "status": 200,
                        "headers": self.raw_headers})  # fmt: skip
            async with anyio.create_task_group() as tg:

                async def pump() -> None:
                    async for chunk in client_stream(client, self.heartbeat):
                        await send({"type": "http.response.body", "body": chunk,
                                    "more_body": True})  # fmt: skip
                    await send({"type": "http.response.body", "body": b""})
                    tg.cancel_scope.cancel()

                async def until_disconnect() -> None:
                    while (await receive())["type"] != "http.disconnect":
                        pass
                    tg.cancel_scope.cancel()

                async def until_dropped() -> None:
                    await client.dropped.wait()
                    await anyio.sleep(self.grace)
                    tg.cancel_scope.cancel()

                tg.start_soon(pump)
                tg.start_soon(until_disconnect)
                tg.start_soon(until_dropped)
        finally:
            client.hub.disconnect(client)


async def metrics(request: Request) -> Response:
    state = request.app.state
    text = await state.metrics.render(state.engine, state.hub.statistics())
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


async def openapi(request: Request) -> Response:
    return JSONResponse(document(request.app.state.operations))


def operations() -> list[Operation]:
    dag, run = "/api/v2/dags/{dag_id}", "/api/v2/dags/{dag_id}/dagRuns/{dag_run_id:path}"
    ti = run + "/taskInstances/{task_id}"
    op = Operation
    return [
        op("GET", "/api/v2/monitor/health", api.health, "scheduler health", auth=False,
          responses=(200, 503)),
        op("GET", "/api/v2/version", api.version, "the asyncflow version", auth=False),
        op("GET", "/api/v2/dags", api.list_dags, "list DAGs", responses=(200, 400), query=(
            *_PAGED, ("dag_id_pattern", "string", "substring of the dag_id"),
            ("paused", "boolean", "only paused / unpaused"), ("tags", "string", "any of"))),
        op("GET", dag, api.get_dag, "one DAG with its params and tasks", responses=(200, 404)),
        op("PATCH", dag, api.patch_dag, "pause or unpause a DAG", responses=(200, 400, 404),
          body={"type": "object", "properties": {"is_paused": _BOOL}, "required": ["is_paused"]}),
        op("DELETE", dag, api.delete_dag, "delete the DAG's runs, task instances, XComs and "
          "paused flag", responses=(200, 404, 409)),
        op("GET", dag + "/dagRuns", api.list_runs, "the DAG's runs, newest first",
          responses=(200, 400, 404), query=(*_PAGED, ("state", "string", "only these states"))),
        op("POST", dag + "/dagRuns", api.trigger_run, "trigger a run",
          responses=(200, 400, 404, 409), body={"type": "object", "properties": {
              "conf": {"type": "object"}, "logical_date": {"type": "string"},
              "dag_run_id": {"type": "string"}}}),
        op("GET", run, api.get_run, "one DAG run", responses=(200, 404)),
        op("POST", run + "/clear", api.clear_run, "clear the run's task instances (re-run)",
          responses=(200, 400, 404, 409), body={"type": "object", "properties": {
              "dry_run": _BOOL, "only_failed": _BOOL,
              "task_ids": {"type": "array", "items": {"type": "string"}}}}),
        op("GET", run + "/taskInstances", api.list_tis, "the run's task instances",
          responses=(200, 400, 404), query=(*_PAGED, ("state", "string", "only these states"))),
        op("GET", ti, api.get_ti, "one task instance", responses=(200, 404)),
        op("PATCH", ti, api.patch_ti, "mark a task instance success, failed or skipped",
          responses=(200, 400, 404, 409), body={"type": "object", "properties": {
              "new_state": {"enum": list(api.MARKABLE)}, "include_upstream": _BOOL,
              "include_downstream": _BOOL}, "required": ["new_state"]}),
        op("GET", ti + "/logs/{try_number:int}", api.get_log, "one attempt's log from a byte "
          "offset", responses=(200, 400, 404), query=(
              ("token", "string", "continuation token: the byte offset to read from"),
              ("follow", "boolean", "wait for more while the attempt runs"),
              ("wait", "integer", "with follow: seconds to wait at most (default 10)"))),
        op("GET", "/api/v2/importErrors", api.import_errors, "DAG files that failed to load",
          responses=(200, 400), query=_PAGED),
        op("GET", "/api/v2/pools", api.pools, "pools and their slots"),
        op("GET", "/api/v2/events", events, "Server-Sent Events of every state change",
          content_type="text/event-stream", responses=(200, 400), query=(
              ("dag_id", "string", "only this DAG"), ("dag_run_id", "string", "only this run"),
              ("last_event_id", "integer", "resume after this id (or the Last-Event-ID header)"))),
        op("GET", "/openapi.json", openapi, "this document", auth=False),
        op("GET", "/metrics", metrics, "Prometheus metrics", auth=False,
          content_type="text/plain"),
    ]  # fmt: skip


def by_specificity(ops: list[Operation]) -> list[Operation]:
    """Longer paths first: a run_id may hold '/' (`{dag_run_id:path}`), so `.../dagRuns/{id}`
    must be tried after `.../dagRuns/{id}/taskInstances` and the like."""
    return sorted(ops, key=lambda op: -op.path.count("/"))


def error_response(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


def guard(handler: Handler, *, auth: bool) -> Handler:
    """Authentication, the same-origin check, and errors as `{"detail": ...}`."""

    @wraps(handler)
    async def endpoint(request: Request) -> Response:
        if auth:
            who = request.app.state.auth.identify(request)
            if who is None:
                return error_response(401, "sign in: send 'Authorization: Bearer <token>' "
                                      "(the token is in <home>/api-token)")  # fmt: skip
            if who == "cookie" and request.method not in SAFE_METHODS and not same_origin(request):
                return error_response(403, "a state change from another origin was refused")
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.detail)
        except NotFoundError as exc:
            return error_response(404, str(exc))
        except (DagRunAlreadyExists, DagHasActiveRuns, InvalidStateTransition) as exc:
            return error_response(409, str(exc))
        except (AsyncflowError, ValueError, TypeError) as exc:
            return error_response(400, str(exc))

    return endpoint


def create_app(
    engine: Engine,
    *,
    token: str | TokenSource | None,
    heartbeat: float = 15.0,
    client_buffer: int = 1_000,
    ring: int = 10_000,
) -> Starlette:
    """The HTTP API, `/openapi.json`, `/metrics` and the dashboard for a running `engine`.

    `token`: the bearer token every route but health, version, metrics and the sign-in page
    requires (a string, or a callable returning the current one); None leaves authentication
    to the application that mounts this one. `heartbeat`: seconds between SSE keep-alives.
    `client_buffer`: events an SSE client may fall behind before it is dropped; `ring`: events
    kept for clients resuming with `Last-Event-ID`.
    """
    from asyncflow.web import pages  # the dashboard needs jinja2; the API does not

    ops = operations()
    hub = EventHub(ring=ring, client_buffer=client_buffer)
    meter = Metrics()
    hub.observers.append(meter.observe)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        subscription = engine.subscribe(buffer=max(10_000, client_buffer))
        async with anyio.create_task_group() as tg:
            tg.start_soon(hub.run, subscription)
            tg.start_soon(meter.watch_loop)
            try:
                yield
            finally:
                hub.close()
                subscription.close()
                tg.cancel_scope.cancel()

    routes: list[Any] = [
        Route(op.path, guard(op.handler, auth=op.auth), methods=[op.method])
        for op in by_specificity(ops)
    ]
    routes += pages.routes()
    routes.append(Mount("/static", StaticFiles(directory=STATIC), name="static"))
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.engine = engine
    app.state.auth = Auth(token)
    app.state.hub = hub
    app.state.metrics = meter
    app.state.operations = ops
    app.state.heartbeat = heartbeat
    app.state.templates = pages.templates()

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(404, f"no route {request.method} {request.url.path}")

    app.add_exception_handler(404, not_found)
    return app
