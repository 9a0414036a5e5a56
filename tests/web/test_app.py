"""The ASGI app in-process (httpx's ASGI transport): sign-in and cookies, the same-origin
check, escaping, the trigger form, `/openapi.json` against the routes, mounting under a prefix."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from asyncflow import DAG, Engine, Param
from asyncflow.operators import EmptyOperator, PythonOperator
from asyncflow.web import create_app
from asyncflow.web.auth import COOKIE

pytestmark = pytest.mark.anyio
TOKEN = "s3cret-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
XSS = "<script>alert('x')</script>"
XSS_ID = '"><img src=x onerror=alert(1)>'  # a run_id cannot hold '/', so no </script>


def demo_dag() -> DAG:
    params = {
        "count": Param(3, type="integer", minimum=1),
        "who": Param("world", type="string", description="whom to greet"),
        "loud": Param(False, type="boolean"),
        "color": Param("red", enum=["red", "green"]),
    }
    with DAG("demo", schedule=None, params=params, tags=["web"]) as dag:
        PythonOperator(task_id="hello", python_callable=lambda: print("hi") or 7) >> EmptyOperator(
            task_id="end"
        )
    return dag


@pytest.fixture
async def web(tmp_path: Path) -> AsyncIterator[tuple[Engine, httpx.AsyncClient]]:
    async with Engine(dags=[demo_dag()], database=tmp_path / "db", logs_folder=tmp_path) as eng:
        app = create_app(eng, token=TOKEN)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://web") as client:
                yield eng, client


async def sign_in(client: httpx.AsyncClient) -> None:
    r = await client.post("/login", data={"token": TOKEN}, headers={"Origin": "http://web"})
    assert r.status_code == 303, r.text


async def test_every_route_but_health_version_metrics_and_openapi_needs_the_token(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    _, client = web
    for url in ("/api/v2/monitor/health", "/api/v2/version", "/metrics", "/openapi.json"):
        assert (await client.get(url)).status_code == 200, url
    doc = (await client.get("/openapi.json")).json()
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "security" not in op:
                continue
            url = re.sub(r"{\w+}", "1", path)
            for headers in ({}, {"Authorization": "Bearer wrong"}):
                r = await client.request(method, url, headers=headers)
                assert r.status_code == 401, (method, url, r.status_code)
                assert "Bearer" in r.json()["detail"]
    assert (await client.get("/", follow_redirects=False)).headers["location"] == "/login?next=/"


async def test_sign_in_sets_an_httponly_strict_cookie_that_works_same_origin_only(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    bad = await client.post("/login", data={"token": "nope"}, headers={"Origin": "http://web"})
    assert bad.status_code == 401 and COOKIE not in bad.cookies
    r = await client.post("/login", data={"token": TOKEN}, headers={"Origin": "http://web"})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert (await client.get("/api/v2/dags")).status_code == 200  # the cookie alone reads
    patch = {"is_paused": True}
    foreign = await client.patch("/api/v2/dags/demo", json=patch,
                                 headers={"Origin": "http://evil.example"})  # fmt: skip
    assert foreign.status_code == 403 and not engine.is_paused("demo")
    no_origin = await client.patch("/api/v2/dags/demo", json=patch)
    assert no_origin.status_code == 403 and not engine.is_paused("demo")
    form = await client.post("/dags/demo/pause", data={"is_paused": "true"},
                             headers={"Origin": "http://evil.example"})  # fmt: skip
    assert form.status_code == 403 and not engine.is_paused("demo")
    ok = await client.patch("/api/v2/dags/demo", json=patch, headers={"Origin": "http://web"})
    assert ok.status_code == 200 and engine.is_paused("demo")


async def test_a_script_in_a_conf_value_renders_as_text_on_every_page(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    await sign_in(client)
    # a run_id cannot carry markup (refused at trigger time, as Airflow does) ...
    r = await client.post("/api/v2/dags/demo/dagRuns", headers=BEARER,
                          json={"conf": {"who": XSS}, "dag_run_id": XSS_ID})  # fmt: skip
    assert r.status_code == 400 and "run_id" in r.text
    # ... and conf values, which can, render as text
    conf = {"who": XSS, "img": XSS_ID}
    r = await client.post("/api/v2/dags/demo/dagRuns", headers=BEARER,
                          json={"conf": conf, "dag_run_id": "xss"})  # fmt: skip
    assert r.status_code == 200, r.text
    await engine.wait_for_run("demo", "xss", timeout=10)
    for url in ("/", "/dags/demo", "/dags/demo/runs/xss", "/dags/demo/runs/xss/tasks/hello"):
        r = await client.get(url)
        assert r.status_code == 200, url
        assert "<script>alert" not in r.text and "<img src=x" not in r.text, url
    run_page = (await client.get("/dags/demo/runs/xss")).text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in run_page
    assert "&lt;img src=x onerror=alert(1)&gt;" in run_page


async def test_the_trigger_form_is_built_from_params_and_checks_them(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    await sign_in(client)
    html = (await client.get("/dags/demo/trigger")).text
    assert 'type="number" id="param-count" name="param.count" value="3"' in html
    assert 'type="checkbox" id="param-loud"' in html
    assert '<select id="param-color"' in html and "whom to greet" in html
    origin = {"Origin": "http://web"}
    bad = await client.post("/dags/demo/trigger", headers=origin,
                            data={"param.count": "0", "param.who": "x"})  # fmt: skip
    assert bad.status_code == 400 and "less than the minimum of 1" in bad.text
    good = await client.post("/dags/demo/trigger", headers=origin, data={
        "param.count": "5", "param.who": "ann", "param.loud": "on", "param.color": '"green"',
        "conf": '{"extra": 1}', "run_id": "from_form"})  # fmt: skip
    assert good.status_code == 303
    run = await engine.get_dag_run("demo", "from_form")
    assert run.conf == {"extra": 1, "count": 5, "who": "ann", "loud": True, "color": "green"}


async def test_openapi_names_every_route_and_each_answer_is_documented(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    app = client._transport.app  # type: ignore[attr-defined]
    routes = {
        (re.sub(r"{(\w+):\w+}", r"{\1}", r.path), m.lower())
        for r in app.routes if isinstance(r, Route) and r.path.startswith(("/api", "/metrics",
                                                                           "/openapi"))
        for m in r.methods or () if m != "HEAD"
    }  # fmt: skip
    doc = (await client.get("/openapi.json")).json()
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert routes == documented
    await client.post("/api/v2/dags/demo/dagRuns", headers=BEARER, json={"dag_run_id": "r"})
    await engine.wait_for_run("demo", "r", timeout=10)
    values = {"dag_id": "demo", "dag_run_id": "r", "task_id": "hello", "try_number": "1"}
    bodies = {"patch": {"new_state": "success"}, "post": {}}
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if path == "/api/v2/events":
                continue  # a stream that never ends: tested against the daemon
            for vals in (values, {**values, "dag_id": "missing"}):
                url = re.sub(r"{(\w+)}", lambda m, v=vals: v[m.group(1)], path)  # type: ignore[misc]
                if method == "patch" and path.endswith("{dag_id}"):
                    body: dict[str, object] = {"is_paused": False}
                else:
                    body = bodies.get(method, {})
                kwargs = {"json": body} if method != "get" else {}
                r = await client.request(method, url, headers=BEARER, **kwargs)  # type: ignore[arg-type]
                assert str(r.status_code) in op["responses"], (method, url, r.status_code, r.text)


async def test_mounted_under_a_prefix_in_a_host_app(tmp_path: Path) -> None:
    async with Engine(dags=[demo_dag()], database=tmp_path / "db") as engine:
        web = create_app(engine, token=None)  # the host app authenticates
        host = Starlette(routes=[Mount("/flow", app=web)])
        async with web.router.lifespan_context(web):
            transport = httpx.ASGITransport(app=host)
            async with httpx.AsyncClient(transport=transport, base_url="http://host") as client:
                r = await client.get("/flow/api/v2/dags")
                assert r.status_code == 200 and r.json()["total_entries"] == 1
                html = (await client.get("/flow/")).text
                assert 'href="/flow/dags/demo"' in html
                assert 'src="/flow/static/app.js"' in html
                assert (await client.get("/flow/static/app.js")).status_code == 200
                with anyio.fail_after(5):
                    assert (await client.get("/flow/api/v2/monitor/health")).status_code == 200


async def test_a_run_id_holding_a_slash_routes_on_the_api_and_the_pages(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    """asyncflow makes no such run_id, but a database may hold one (written by an older
    version or by hand): its pages and API routes must still be reachable."""
    from datetime import UTC, datetime

    from asyncflow.records import DagRun, DagRunType
    from asyncflow.states import DagRunState
    from asyncflow.store.base import NewRun, TIRow, WriteBatch, run_row

    engine, client = web
    when = datetime(2024, 1, 1, tzinfo=UTC)
    run = DagRun("demo", "odd/run", when, when, when, DagRunType.MANUAL, DagRunState.SUCCESS)
    tis = [TIRow("success", 1, 1, None, None, None, None, None, 0, "demo", "odd/run", t, -1)
           for t in ("hello", "end")]  # fmt: skip
    await engine.store.write(WriteBatch(new_runs=[NewRun(run_row(run), tis)]))
    base = "/api/v2/dags/demo/dagRuns/odd%2Frun"
    got = await client.get(base, headers=BEARER)
    assert got.status_code == 200 and got.json()["dag_run_id"] == "odd/run"
    listed = await client.get(base + "/taskInstances", headers=BEARER)
    assert listed.status_code == 200 and listed.json()["total_entries"] == 2
    one = await client.get(base + "/taskInstances/end", headers=BEARER)
    assert one.status_code == 200 and one.json()["task_id"] == "end"
    await sign_in(client)
    page = await client.get("/dags/demo/runs/odd%2Frun")
    assert page.status_code == 200 and "odd/run" in page.text
    task = await client.get("/dags/demo/runs/odd%2Frun/tasks/end")
    assert task.status_code == 200


async def test_the_graph_page_draws_every_task_coloured_by_the_run(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    await sign_in(client)
    empty = await client.get("/dags/demo/graph")
    assert empty.status_code == 200 and "no runs yet" in empty.text
    run = await engine.trigger_dag("demo", run_id="drawn")
    with anyio.fail_after(10):
        await engine.wait_for_run("demo", run.run_id)
    page = await client.get("/dags/demo/graph?run=drawn")
    assert page.status_code == 200
    states = re.findall(r'class="gnode s-(\w+)" data-task="(\w+)"', page.text)
    assert sorted(states) == [("success", "end"), ("success", "hello")]
    assert page.text.count("<path d=") == 1  # hello -> end
    hello_x = int(re.search(r'data-task="hello".*?<rect x="(\d+)"', page.text, re.S)[1])  # type: ignore[index]
    end_x = int(re.search(r'data-task="end".*?<rect x="(\d+)"', page.text, re.S)[1])  # type: ignore[index]
    assert hello_x < end_x  # upstream to the left
    assert (await client.get("/dags/demo/graph?run=nope")).status_code == 404


async def test_metrics_give_the_scheduler_step_and_commit_latency(
    web: tuple[Engine, httpx.AsyncClient],
) -> None:
    engine, client = web
    run = await engine.trigger_dag("demo", run_id="measured")
    with anyio.fail_after(10):
        await engine.wait_for_run("demo", run.run_id)
    text = (await client.get("/metrics")).text
    assert "# TYPE asyncflow_scheduler_step_seconds summary" in text
    for key in ("step", "commit"):
        total = float(re.search(rf"asyncflow_scheduler_{key}_seconds_sum (\S+)", text)[1])  # type: ignore[index]
        count = int(re.search(rf"asyncflow_scheduler_{key}_seconds_count (\d+)", text)[1])  # type: ignore[index]
        assert count >= 3 and 0 < total < count  # a few commits, each well under a second
