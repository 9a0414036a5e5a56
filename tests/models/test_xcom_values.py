"""XCom values beyond JSON round-trip through a run (and the store) as Airflow's serializer
keeps them; a value with no encoding fails its task with a message naming the task and type."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

import pendulum
import pytest

from asyncflow import DAG, task
from asyncflow.models import xcom_codec
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


@dataclass
class Order:
    id: int
    placed: datetime
    tags: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Frozen:
    amount: Decimal


class Pair(NamedTuple):
    left: int
    right: str


VALUES: list[Any] = [
    datetime(2024, 3, 5, 6, 7, 8, 9, tzinfo=UTC),
    datetime(2024, 3, 5, 6, 7, 8),
    datetime(2024, 7, 1, 12, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2024, 7, 1, 12, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    date(2024, 2, 29),
    time(23, 59, 1, 5),
    timedelta(days=10**6, microseconds=1),
    {1, 2, 3},
    frozenset({"a"}),
    (1, "two", (3.0,)),
    Decimal("1236.70"),
    uuid.UUID("12345678-1234-5678-1234-567812345678"),
    Path("/tmp/x.csv"),
    PurePosixPath("a/b"),
    Order(7, datetime(2024, 1, 1, tzinfo=UTC), {"x"}),
    Frozen(Decimal("0.1")),
    {1: "int key", (2, 3): "tuple key"},
    {"__af__": "a dict that looks like a tag"},
    {"nested": [{"when": date(2024, 1, 1)}, {"ids": {uuid.UUID(int=1)}}]},
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_values_round_trip_through_the_codec(value: Any) -> None:
    back = xcom_codec.loads(xcom_codec.dumps(value))
    assert back == value
    assert type(back) is type(value)
    if isinstance(value, datetime):
        assert back.utcoffset() == value.utcoffset()
        assert str(back.tzinfo) == str(value.tzinfo)


def test_plain_json_rows_written_before_the_codec_read_back_unchanged() -> None:
    for text in ('{"a": [1, 2.5, null, true]}', '"x"', "3", '[{"k": {"v": []}}]'):
        import json

        assert xcom_codec.loads(text) == json.loads(text)
    # plain values are written as plain JSON, so older readers read them too
    assert xcom_codec.dumps({"a": [1, "b"]}) == '{"a":[1,"b"]}'


def test_pendulum_datetimes_come_back_as_pendulum_in_their_zone() -> None:
    moment = pendulum.datetime(2024, 3, 31, 1, 30, tz="Europe/Paris")
    back = xcom_codec.loads(xcom_codec.dumps(moment))
    assert isinstance(back, pendulum.DateTime)
    assert back == moment and back.timezone_name == "Europe/Paris"


def test_pydantic_models_round_trip() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Item(pydantic.BaseModel):  # type: ignore[misc, name-defined]
        name: str
        when: datetime

    globals()["Item"] = Item
    Item.__qualname__ = "Item"
    try:
        value = Item(name="x", when=datetime(2024, 1, 1, tzinfo=UTC))
        assert xcom_codec.loads(xcom_codec.dumps(value)) == value
    finally:
        del globals()["Item"]


def test_a_value_without_an_encoding_names_its_type() -> None:
    with pytest.raises(TypeError, match=r"threading\.Lock|_thread\.lock"):
        import threading

        xcom_codec.dumps({"ok": 1, "bad": threading.Lock()})


def test_a_class_that_cannot_be_found_is_a_clear_error() -> None:
    text = '{"__af__":["dataclass",["no_such_module_af:Thing",{}]]}'
    with pytest.raises(xcom_codec.XComDecodeError, match="no_such_module_af"):
        xcom_codec.loads(text)


async def test_rich_values_pass_between_tasks_and_come_back_from_the_engine() -> None:
    seen: dict[str, Any] = {}
    when = datetime(2024, 3, 5, tzinfo=UTC)

    with DAG("xcom_rich", schedule=None) as dag:

        @task
        def produce() -> dict[str, Any]:
            return {"order": Order(1, when, {"a"}), "total": Decimal("9.99"), "pair": (1, 2)}

        @task
        def consume(value: dict[str, Any]) -> set[int]:
            seen.update(value)
            return {1, 2}

        consume(produce())

    result = await run_dag(dag)
    assert result.states == {"produce": "success", "consume": "success"}
    assert seen == {"order": Order(1, when, {"a"}), "total": Decimal("9.99"), "pair": (1, 2)}
    assert result.xcoms["consume"] == {1, 2}
    assert result.xcoms["produce"]["order"].placed == when


async def test_a_value_with_no_encoding_fails_the_task_naming_task_and_type(
    tmp_path: Path,
) -> None:
    class Opaque:
        pass

    with DAG("xcom_bad", schedule=None) as dag:

        @task
        def produce() -> Opaque:
            return Opaque()

        produce()

    result = await run_dag(dag, logs_folder=tmp_path)
    assert result.states == {"produce": "failed"}
    logs = "\n".join(p.read_text() for p in tmp_path.rglob("*.log"))
    assert "'produce'" in logs and "Opaque" in logs, logs
