"""Airflow plugin modules (a custom Timetable, a PriorityWeightStrategy, an AirflowPlugin) import
unchanged and their classes work; an `airflow.*` package another import hook serves is left to
it."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
import textwrap
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType

import pytest

from asyncflow.compat.airflow import activate
from asyncflow.exceptions import UnsupportedImportError
from asyncflow.loading.dagbag import DagBag
from tests.engine.support import run_dag

# written for this test in the style of an Airflow plugin module (kept beside the DAG file)
PLUGIN = """
from datetime import timedelta

from airflow.plugins_manager import AirflowPlugin
from airflow.task.priority_strategy import PriorityWeightStrategy
from airflow.timetables.base import DagRunInfo, DataInterval, Timetable, TimeRestriction


class EveryOtherDay(Timetable):
    def infer_manual_data_interval(self, *, run_after):
        return DataInterval(start=run_after - timedelta(days=2), end=run_after)

    def next_dagrun_info(self, *, last_automated_data_interval, restriction: TimeRestriction):
        if last_automated_data_interval is None:
            start = restriction.earliest
        else:
            start = last_automated_data_interval.end
        return DagRunInfo.interval(start=start, end=start + timedelta(days=2))


class Fixed(PriorityWeightStrategy):
    def get_weight(self, ti):
        return 42


class MyPlugin(AirflowPlugin):
    name = "my_plugin"
    timetables = [EveryOtherDay]
    priority_weight_strategies = [Fixed]
"""

DAG_FILE = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from my_plugin import EveryOtherDay, Fixed

with DAG("planned", start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
         schedule=EveryOtherDay(), catchup=False):
    PythonOperator(task_id="interval", weight_rule=Fixed(),
                   python_callable=lambda data_interval_start, data_interval_end:
                       (data_interval_end - data_interval_start).days)
    EmptyOperator(task_id="by_path", weight_rule="my_plugin.Fixed")
"""


@pytest.mark.anyio
async def test_a_plugin_modules_timetable_and_strategy_work(tmp_path: Path) -> None:
    (tmp_path / "my_plugin.py").write_text(textwrap.dedent(PLUGIN), encoding="utf-8")
    (tmp_path / "planned.py").write_text(textwrap.dedent(DAG_FILE), encoding="utf-8")
    bag = DagBag(tmp_path)
    bag.collect()
    assert bag.import_errors == {}
    dag = bag.get_dag("planned")
    assert type(dag.timetable).__name__ == "EveryOtherDay"
    assert type(dag.task_dict["by_path"].weight_rule).__name__ == "Fixed"
    result = await run_dag(dag)
    assert result.states == {"interval": "success", "by_path": "success"}
    assert result.xcoms["interval"] == 2  # the plugin timetable's manual data interval


class OwnPackage(importlib.abc.MetaPathFinder):
    """Serves `airflow.own` as an empty package: a hook of one's own under airflow.*."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "airflow.own":
            return None
        return importlib.machinery.ModuleSpec(fullname, _EmptyLoader(), is_package=True)


class _EmptyLoader(importlib.abc.Loader):
    def exec_module(self, module: ModuleType) -> None:
        module.served = True  # type: ignore[attr-defined]


@pytest.fixture
def own_hook() -> Iterator[None]:
    finder = OwnPackage()
    sys.meta_path.append(finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)
        sys.modules.pop("airflow.own", None)


def test_another_hook_may_serve_an_airflow_module_asyncflow_lacks(own_hook: None) -> None:
    with activate():
        module = importlib.import_module("airflow.own")
        assert module.served is True
        with pytest.raises(UnsupportedImportError, match=r"airflow\.other"):
            importlib.import_module("airflow.other")
