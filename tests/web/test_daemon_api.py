"""The API of a real `asyncflow serve`: the token file, every route's happy path and errors,
the event stream in order with resume, and a client that never reads being dropped."""

from __future__ import annotations

import json
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemon.helpers import restore_process_state, wait_for
from tests.web.helpers import Web, web_daemon

__all__ = ["restore_process_state"]

DAG = """
from datetime import datetime
from asyncflow import DAG, Param
from asyncflow.operators import BashOperator, EmptyOperator
with DAG("api", schedule=None, start_date=datetime(2024, 1, 1),
         params={"n": Param(1, type="integer")}):
    BashOperator(task_id="say", bash_command="echo line-one; echo line-two") >> EmptyOperator(
        task_id="done")
"""
WIDE = """
from asyncflow import DAG
from asyncflow.operators import EmptyOperator
with DAG("wide", schedule=None):
    for i in range(3000):
        EmptyOperator(task_id=f"t{i}")
"""
BROKEN = "from asyncflow import DAG\nraise RuntimeError('this file is broken on purpose')\n"


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    with web_daemon(tmp_path, {"api.py": DAG, "broken.py": BROKEN}) as w:
        yield w


def finished(client: httpx.Client, dag_id: str, run_id: str) -> dict[str, object]:
    def check() -> dict[str, object] | None:
        run = client.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    return wait_for(check, timeout=30, what=f"run {run_id} to finish")


def test_token_file_and_auth(web: Web) -> None:
    assert stat.S_IMODE(web.token_file.stat().st_mode) == 0o600
    assert len(web.token) >= 32
    for url in ("/api/v2/monitor/health", "/api/v2/version", "/metrics"):
        assert httpx.get(web.url + url).status_code == 200
    assert httpx.get(web.url + "/api/v2/dags").status_code == 401
    bad = {"Authorization": "Bearer nope"}
    assert httpx.get(web.url + "/api/v2/dags", headers=bad).status_code == 401
    with web.client() as client:
        assert client.get("/api/v2/dags").status_code == 200
        web.token_file.write_text("rotated-token-0123456789\n")  # rotation: no restart
        assert client.get("/api/v2/dags").status_code == 401
    with web.client() as client:
        assert client.get("/api/v2/dags").status_code == 200


def test_routes_happy_paths_and_errors(web: Web) -> None:
    with web.client() as c:
        dags = c.get("/api/v2/dags").json()
        assert dags["total_entries"] == 1 and dags["dags"][0]["dag_id"] == "api"
        assert c.get("/api/v2/dags?dag_id_pattern=zzz").json()["total_entries"] == 0
        assert c.get("/api/v2/dags?limit=0").status_code == 400
        assert c.get("/api/v2/dags/api").json()["params"]["n"] == {"type": "integer", "default": 1}
        assert c.get("/api/v2/dags/nope").status_code == 404
        errors = c.get("/api/v2/importErrors").json()
        assert errors["total_entries"] == 1
        assert errors["import_errors"][0]["filename"].endswith("broken.py")
        assert "broken on purpose" in errors["import_errors"][0]["message"]
        bad = c.post("/api/v2/dags/api/dagRuns", json={"conf": {"n": "x"}})
        assert bad.status_code == 400 and "param 'n'" in bad.json()["detail"]
        assert c.post("/api/v2/dags/api/dagRuns", content=b"{nope").status_code == 400
        assert c.post("/api/v2/dags/nope/dagRuns", json={}).status_code == 404
        run = c.post("/api/v2/dags/api/dagRuns", json={"dag_run_id": "one", "conf": {"n": 2}})
        assert run.status_code == 200 and run.json()["conf"] == {"n": 2}
        assert c.post("/api/v2/dags/api/dagRuns", json={"dag_run_id": "one"}).status_code == 409
        assert finished(c, "api", "one")["state"] == "success"
        assert c.get("/api/v2/dags/api/dagRuns").json()["total_entries"] == 1
        assert c.get("/api/v2/dags/api/dagRuns/nope").status_code == 404
        tis = c.get("/api/v2/dags/api/dagRuns/one/taskInstances").json()
        assert {t["task_id"]: t["state"] for t in tis["task_instances"]} == {
            "say": "success", "done": "success"}  # fmt: skip
        log = c.get("/api/v2/dags/api/dagRuns/one/taskInstances/say/logs/1").json()
        assert "] INFO output: line-one\n" in log["content"] and log["end_of_log"]
        assert log["content"].endswith("] INFO output: line-two\n")
        offset = len(log["content"].encode()) - len("line-two\n")
        tail = c.get(f"/api/v2/dags/api/dagRuns/one/taskInstances/say/logs/1?token={offset}")
        assert tail.json()["content"].startswith("line-two")
        assert c.get("/api/v2/dags/api/dagRuns/one/taskInstances/say/logs/5").status_code == 404
        marked = c.patch("/api/v2/dags/api/dagRuns/one/taskInstances/done",
                         json={"new_state": "failed"})  # fmt: skip
        assert marked.status_code == 200
        assert marked.json()["task_instances"][0]["state"] == "failed"
        assert c.patch("/api/v2/dags/api/dagRuns/one/taskInstances/done",
                       json={"new_state": "running"}).status_code == 400  # fmt: skip
        dry = c.post("/api/v2/dags/api/dagRuns/one/clear", json={"only_failed": True}).json()
        assert [t["task_id"] for t in dry["task_instances"]] == ["done"]
        cleared = c.post("/api/v2/dags/api/dagRuns/one/clear",
                         json={"dry_run": False, "only_failed": True})  # fmt: skip
        assert cleared.json()["cleared_task_ids"] == ["done"]
        assert finished(c, "api", "one")["state"] == "success"
        assert c.patch("/api/v2/dags/api", json={"is_paused": True}).json()["is_paused"]
        assert c.get("/api/v2/dags?paused=true").json()["total_entries"] == 1
        assert c.patch("/api/v2/dags/api", json={}).status_code == 400
        assert c.get("/api/v2/pools").status_code == 200
        metrics = c.get("/metrics").text
        assert 'asyncflow_task_transitions_total{state="success"}' in metrics
        assert "asyncflow_task_duration_seconds_count" in metrics


def read_events(response: httpx.Response, until: str) -> list[tuple[int, str, dict[str, object]]]:
    """(id, event, data) of each event until one whose data holds `until`."""
    events: list[tuple[int, str, dict[str, object]]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if "data" in fields:
                data = json.loads(fields["data"])
                events.append((int(fields.get("id", 0)), fields.get("event", ""), data))
                if until in fields["data"]:
                    return events
            fields = {}
        elif not line.startswith(":"):
            key, _, value = line.partition(": ")
            fields[key] = value
    raise AssertionError(f"the stream ended before {until!r}: {events}")


def test_events_arrive_in_order_and_resume_with_last_event_id(web: Web) -> None:
    with web.client() as c, c.stream("GET", "/api/v2/events?dag_id=api") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        c.post("/api/v2/dags/api/dagRuns", json={"dag_run_id": "sse"})
        events = read_events(stream, '"new_state":"success","timestamp"')
        ids = [e[0] for e in events]
        assert ids == sorted(ids) and len(set(ids)) == len(ids)
        say = [e[2]["new_state"] for e in events if e[2].get("task_id") == "say"]
        assert say == ["scheduled", "queued", "running", "success"]
    middle = ids[len(ids) // 2]
    headers = {"Last-Event-ID": str(middle)}
    with web.client() as c, c.stream("GET", "/api/v2/events?dag_id=api", headers=headers) as s:
        resumed = read_events(s, '"new_state":"success","timestamp"')
        assert [e[0] for e in resumed][: len(ids) - ids.index(middle) - 1] == ids[
            ids.index(middle) + 1 :]  # fmt: skip
    with web.client() as c, c.stream("GET", "/api/v2/events",
                                      headers={"Last-Event-ID": "1"}) as s:  # fmt: skip
        resync = read_events(s, "reason")
        assert resync[-1][1] == "resync"


def test_a_client_that_never_reads_is_dropped_and_the_run_is_not_slowed(tmp_path: Path) -> None:
    with web_daemon(tmp_path, {"wide.py": WIDE}) as web, web.client() as c:
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect(("127.0.0.1", int(web.url.rsplit(":", 1)[1])))
        stalled.sendall(f"GET /api/v2/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                        f"{web.token}\r\n\r\n".encode())  # fmt: skip
        wait_for(lambda: "asyncflow_sse_clients 1" in c.get("/metrics").text, what="client")
        started = time.monotonic()
        c.post("/api/v2/dags/wide/dagRuns", json={"dag_run_id": "w"})
        assert finished(c, "wide", "w")["state"] == "success"
        took = time.monotonic() - started
        wait_for(lambda: "asyncflow_sse_dropped_total 1" in c.get("/metrics").text,
                 what="the stalled client to be dropped")  # fmt: skip
        wait_for(lambda: "asyncflow_sse_clients 0" in c.get("/metrics").text, timeout=15,
                 what="its connection to be closed")  # fmt: skip
        stalled.close()
        started = time.monotonic()
        c.post("/api/v2/dags/wide/dagRuns", json={"dag_run_id": "w2"})
        finished(c, "wide", "w2")
        alone = time.monotonic() - started
        assert took < alone * 3 + 1, (took, alone)  # the stalled reader did not hold it back
