"""`asyncflow assets list` / `assets events`: what an engine recorded, read by the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from asyncflow import Engine, FakeClock
from tests.assets.test_asset_scheduling import RAW, START, consumer, producer
from tests.daemon.helpers import cli
from tests.engine.support import finish


def test_assets_list_and_events(tmp_path: Path) -> None:
    db = tmp_path / "state.db"

    async def record() -> None:
        dags = [producer("p", RAW, {"rows": 3}), consumer("c", [RAW])]
        async with Engine(dags=dags, database=db, clock=FakeClock(START)) as engine:
            await finish(engine, "p")

    anyio.run(record)
    listed = cli("assets", "list", "--database", str(db), "--output", "json")
    assert listed.code == 0, listed.err
    assert [(a["name"], a["uri"]) for a in json.loads(listed.out)] == [(RAW.name, RAW.uri)]
    events = cli("assets", "events", "--asset", RAW.uri, "--database", str(db), "-o", "json")
    assert events.code == 0, events.err
    (event,) = json.loads(events.out)
    assert (event["source_dag_id"], event["source_task_id"], event["extra"]) == (
        "p", "make", {"rows": 3})  # fmt: skip
    other = cli("assets", "events", "--asset", "s3://nothing/here", "--database", str(db))
    assert other.code == 0 and "no asset events" in other.out + other.err


@pytest.mark.parametrize("verb", ["list", "events"])
def test_assets_without_a_database_is_empty(tmp_path: Path, verb: str) -> None:
    result = cli("assets", verb, "--database", str(tmp_path / "none.db"))
    assert result.code == 0
