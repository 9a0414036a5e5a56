"""`inlet_events`: the events of a task's inlets, read from the store, as Airflow's accessor
reads them: by the asset (name and URI), or by a URI or a name alone (any asset with it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from asyncflow import DAG, Asset, Engine, task
from asyncflow.operators import BashOperator
from tests.engine.support import finish

pytestmark = pytest.mark.anyio
START = datetime(2024, 1, 1, tzinfo=UTC)
NAMED = Asset(name="test-asset", uri="s3://output/1.txt")
BY_URI = Asset("s3://output/1.txt")  # the same URI, named by it


def dags() -> list[DAG]:
    with DAG("produce", schedule=None, start_date=START) as producer:

        @task(outlets=[NAMED])
        def make(*, outlet_events: Any = None) -> None:
            outlet_events[NAMED].extra = {"hi": "bye"}

        make()
    with DAG("read", schedule=None, start_date=START) as reader:

        @task(inlets=[BY_URI])
        def look(*, inlet_events: Any = None) -> dict[str, Any]:
            return {
                "by_uri": [e.extra for e in inlet_events.for_asset(uri="s3://output/1.txt")],
                "by_name": len(inlet_events.for_asset(name="test-asset")),
                "by_both": len(inlet_events.for_asset(name="test-asset", uri=NAMED.uri)),
                "exact": len(inlet_events[BY_URI]),  # name "s3://output/1.txt": none
            }

        look()
        BashOperator(
            task_id="classic",
            inlets=[BY_URI],
            bash_command="echo '{{ inlet_events.for_asset(uri=\"s3://output/1.txt\")[-1].extra"
            " | tojson }}'",
        )
    return [producer, reader]


async def test_a_uri_or_a_name_alone_reads_the_events_of_every_asset_with_it() -> None:
    async with Engine(dags=dags(), database=":memory:") as engine:
        await finish(engine, "produce")
        result = await finish(engine, "read")
    assert result.states == {"look": "success", "classic": "success"}
    assert result.xcoms["look"] == {
        "by_uri": [{"hi": "bye"}],
        "by_name": 1,
        "by_both": 1,
        "exact": 0,
    }
    assert result.xcoms["classic"] == '{"hi": "bye"}'


async def test_reading_the_last_event_when_there_is_none_fails_the_task() -> None:
    async with Engine(dags=dags(), database=":memory:") as engine:
        result = await finish(engine, "read")
    assert result.states == {"look": "success", "classic": "failed"}
    assert "no element -1" in (result.tis["classic"].error or "")
