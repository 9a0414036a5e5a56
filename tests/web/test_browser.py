"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright's
client; no browser is ever downloaded). Screenshots of each page go to docs/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.helpers import restore_process_state
from tests.web.helpers import Web, web_daemon

__all__ = ["restore_process_state"]

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
#: where screenshots go: docs/screenshots/ when ASYNCFLOW_SCREENSHOTS=1 (to refresh the README's
#: pictures), else a temporary folder, so that `make test` leaves the checkout untouched
SHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("ASYNCFLOW_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "asyncflow-screenshots"
)
XSS = "<img src=x onerror=\"document.title='pwned'\">"

playwright_api = pytest.importorskip("playwright.sync_api")
if shutil.which(CHROMIUM) is None:
    pytest.skip("Debian's chromium is not installed (make installs it as root)",
                allow_module_level=True)  # fmt: skip

DAGS = {
    "hello.py": """
from datetime import datetime
from asyncflow import DAG, Param
from asyncflow.operators import BashOperator, EmptyOperator
with DAG("hello", schedule="@daily", start_date=datetime(2024, 1, 1), catchup=False,
         description="says hello, slowly", tags=["demo"],
         params={"greeting": Param("hi", type="string", description="what to say"),
                 "times": Param(3, type="integer", minimum=1)}):
    start = EmptyOperator(task_id="start")
    say = BashOperator(task_id="say", bash_command=(
        "for i in $(seq 1 {{ params.times }}); do echo '{{ params.greeting }}' $i; "
        "sleep 0.3; done"))
    start >> say >> EmptyOperator(task_id="end")
""",
    "other.py": """
from asyncflow import DAG
from asyncflow.operators import EmptyOperator
with DAG("other", schedule=None):
    EmptyOperator(task_id="only")
""",
    "broken.py": "from asyncflow import DAG\nraise ValueError('broken.py fails on purpose')\n",
}


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with web_daemon(tmp_path, DAGS) as w:
        yield w


@pytest.fixture
def page(web: Web) -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        context.set_default_timeout(20_000)
        yield context.new_page()
        browser.close()


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def test_the_dashboard_end_to_end(web: Web, page: object) -> None:
    p = page
    expect = playwright_api.expect
    p.goto(web.url + "/")  # type: ignore[attr-defined]
    expect(p.get_by_role("heading", name="Sign in")).to_be_visible()  # type: ignore[attr-defined]
    p.fill("#token", "wrong")  # type: ignore[attr-defined]
    p.click("text=Sign in >> nth=-1")  # type: ignore[attr-defined]
    expect(p.locator(".error")).to_contain_text("not the API token")  # type: ignore[attr-defined]
    shot(p, "sign-in")
    p.fill("#token", web.token)  # type: ignore[attr-defined]
    p.click("button[type=submit]")  # type: ignore[attr-defined]

    # the DAG list, with the import error banner
    expect(p.get_by_role("heading", name="DAGs")).to_be_visible()  # type: ignore[attr-defined]
    expect(p.locator("#import-errors")).to_contain_text("broken.py fails on purpose")  # type: ignore[attr-defined]
    expect(p.locator("tr[data-dag=hello]")).to_contain_text("says hello, slowly")  # type: ignore[attr-defined]

    # pause a DAG
    p.click("[data-testid=pause-other]")  # type: ignore[attr-defined]
    expect(p.locator("[data-testid=pause-other]")).to_have_text("paused")  # type: ignore[attr-defined]
    with web.client() as c:
        assert c.get("/api/v2/dags/other").json()["is_paused"] is True

    # trigger from the form, with a script in a conf value
    p.click("tr[data-dag=hello] >> text=Trigger")  # type: ignore[attr-defined]
    expect(p.locator("#param-greeting")).to_have_value("hi")  # type: ignore[attr-defined]
    expect(p.locator("#param-times")).to_have_attribute("min", "1")  # type: ignore[attr-defined]
    p.fill("#param-times", "4")  # type: ignore[attr-defined]
    p.fill("#param-greeting", "hello")  # type: ignore[attr-defined]
    p.fill("#conf", json.dumps({"note": XSS}))  # type: ignore[attr-defined]
    p.fill("#run_id", "from_browser")  # type: ignore[attr-defined]
    shot(p, "trigger")
    p.click("button[type=submit]")  # type: ignore[attr-defined]

    # the grid: the cells turn green without a reload
    p.wait_for_selector("body[data-sse=open]")  # type: ignore[attr-defined]
    p.evaluate("window.__same_page = true")  # type: ignore[attr-defined]
    cell = p.locator('.cell[data-run="from_browser"][data-task="end"]')  # type: ignore[attr-defined]
    assert cell.get_attribute("data-state") != "success"  # the say task takes 1.2 s
    expect(cell).to_have_attribute("data-state", "success", timeout=30_000)
    assert p.evaluate("window.__same_page") is True  # type: ignore[attr-defined]
    shot(p, "grid")

    # the run page: the conf is text, not markup
    p.click('.mark[data-run="from_browser"]')  # type: ignore[attr-defined]
    expect(p.locator("#conf")).to_contain_text("<img src=x")  # type: ignore[attr-defined]
    assert p.title() != "pwned"  # type: ignore[attr-defined]
    assert p.locator("#conf img").count() == 0  # type: ignore[attr-defined]
    expect(p.locator("#progress-text")).to_have_text("3 / 3 finished")  # type: ignore[attr-defined]
    shot(p, "run")

    # a log that follows while the task runs
    with web.client() as c:
        c.post("/api/v2/dags/hello/dagRuns", json={"dag_run_id": "follow",
                                                   "conf": {"times": 12}})  # fmt: skip
    p.goto(web.url + "/dags/hello/runs/follow/tasks/say")  # type: ignore[attr-defined]
    expect(p.locator("#log")).to_contain_text("hi 2", timeout=30_000)  # type: ignore[attr-defined]
    assert "hi 12" not in p.locator("#log").text_content()  # type: ignore[attr-defined]
    expect(p.locator("#log")).to_contain_text("hi 12", timeout=30_000)  # type: ignore[attr-defined]
    expect(p.locator("#log-status")).to_have_text("end of log")  # type: ignore[attr-defined]
    shot(p, "task-log")
    p.goto(web.url + "/")  # type: ignore[attr-defined]
    shot(p, "dags")
