"""Asset, AssetAlias and conditions as Airflow 3 defines them (no engine)."""

from __future__ import annotations

import pytest

from asyncflow import DAG, Asset, AssetAlias, AssetAll, AssetAny, DagDefinitionError, Dataset
from asyncflow.operators import EmptyOperator
from asyncflow.timetables.assets import AssetTriggeredTimetable


def test_an_asset_is_named_by_its_uri_unless_named() -> None:
    a = Asset("s3://bucket/key")
    assert (a.name, a.uri, a.group) == ("s3://bucket/key", "s3://bucket/key", "asset")
    b = Asset(name="orders", uri="file:///srv/orders.csv", extra={"k": 1})
    assert (b.name, b.uri, b.extra) == ("orders", "file:///srv/orders.csv", {"k": 1})
    assert Asset(uri="x").name == "x"
    assert Dataset("s3://b/k").uri == "s3://b/k"


def test_uris_are_normalized_as_airflow_does() -> None:
    assert Asset("S3://bucket/dir/?b=2&a=1#frag").uri == "s3://bucket/dir?a=1&b=2"
    assert Asset("postgres://db.host/d/s/t").uri == "postgres://db.host:5432/d/s/t"
    assert Asset("not a uri").uri == "not a uri"
    with pytest.warns(UserWarning, match="password"):
        assert Asset("s3://user:secret@bucket/k").uri == "s3://bucket/k"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"uri": "airflow://x"}, "reserved"),
        ({"uri": "s3:///key"}, "bucket"),
        ({"uri": "postgres://host/only"}, "database/schema/table"),
        ({"name": "self"}, "reserved"),
        ({"name": "   "}, "whitespace"),
        ({"name": ""}, "empty"),
    ],
)
def test_bad_assets_are_refused_with_the_reason(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Asset(**kwargs)


def test_and_or_build_conditions_that_evaluate_over_updated_assets() -> None:
    a, b, c = Asset("a"), Asset("b"), Asset("c")
    cond = a | (b & c)
    assert cond == AssetAny(a, AssetAll(b, c))
    assert (a & b & c) == AssetAll(a, b, c)
    assert cond.evaluate(lambda x: x == a)
    assert not cond.evaluate(lambda x: x == b)
    assert cond.evaluate(lambda x: x in (b, c))
    assert [x.name for x in cond.iter_assets()] == ["a", "b", "c"]
    assert list((a | AssetAlias("al")).iter_aliases()) == [AssetAlias("al")]


def test_schedule_on_assets_gives_an_asset_timetable() -> None:
    a, b = Asset("a"), Asset("b")
    for schedule, expected in (([a, b], AssetAll(a, b)), (a | b, AssetAny(a, b)), (a, a)):
        dag = DAG("d", schedule=schedule)
        assert isinstance(dag.timetable, AssetTriggeredTimetable)
        assert dag.timetable.asset_condition == expected


def test_outlets_and_inlets_take_assets_only() -> None:
    with DAG("d", schedule=None):
        task = EmptyOperator(task_id="t", outlets=[Asset("a")], inlets=Asset("b"))
        assert task.outlets == [Asset("a")] and task.inlets == [Asset("b")]
        with pytest.raises(DagDefinitionError, match="not an Asset"):
            EmptyOperator(task_id="u", outlets=["s3://b/k"])


def test_airflow_import_paths_serve_assets() -> None:
    from asyncflow.compat.airflow import activate

    with activate() as active:
        if not active:
            pytest.skip("the real Airflow is installed")
        from airflow.datasets import Dataset as AirflowDataset  # type: ignore[import-not-found]
        from airflow.sdk import (  # type: ignore[import-not-found]
            Asset as AirflowAsset,
        )
        from airflow.sdk import AssetAlias as AirflowAlias
        from airflow.sdk import AssetWatcher as AirflowWatcher
        from airflow.sdk import asset as airflow_asset

    from asyncflow import AssetWatcher, asset

    assert (AirflowAsset, AirflowAlias, AirflowDataset) == (Asset, AssetAlias, Dataset)
    assert (AirflowWatcher, airflow_asset) == (AssetWatcher, asset)
