"""A DAG folder written for Airflow loads unchanged: while the DAG loader imports a file, Airflow's
import paths give asyncflow's objects; names asyncflow lacks fail with what to use instead."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from asyncflow import DAG
from asyncflow.compat.airflow import activate
from asyncflow.exceptions import UnsupportedAttributeError, UnsupportedImportError
from asyncflow.loading.dagbag import DagBag
from tests.engine.support import run_dag

# Written for this test in the style of Airflow's tutorials (Airflow 2 and 3 import paths).
TUTORIAL = '''
import textwrap
from datetime import datetime, timedelta

from airflow.models.dag import DAG
from airflow.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    "orders_tutorial",
    default_args={
        "depends_on_past": False,
        "email": ["ops@example.com"],
        "email_on_failure": False,
        "email_on_retry": False,
        "retries": 1,
        "retry_delay": timedelta(minutes=5),
    },
    description="count the orders",
    schedule=timedelta(days=1),
    start_date=datetime(2021, 1, 1),
    catchup=False,
    tags=["example"],
) as dag:
    t1 = BashOperator(task_id="print_date", bash_command="date +%Y")
    t2 = BashOperator(task_id="sleep", depends_on_past=False, bash_command="sleep 0", retries=3)
    t1.doc_md = textwrap.dedent("""#### Task docs""")
    dag.doc_md = __doc__
    t3 = BashOperator(task_id="templated", bash_command="echo {{ ds }} {{ params.who }}",
                      params={"who": "me"})
    done = EmptyOperator(task_id="done", trigger_rule=TriggerRule.ALL_DONE)
    t1 >> [t2, t3] >> done
'''

TASKFLOW = '''
import pendulum
from airflow.sdk import dag, task, task_group, Label
from airflow.exceptions import AirflowSkipException
from airflow.utils import timezone
from airflow.utils.dates import days_ago


@dag(schedule=None, start_date=days_ago(2), catchup=False, tags=["etl"])
def orders_etl():
    @task()
    def extract():
        return {"1001": 301.27, "1002": 433.21, "1003": 502.22}

    @task_group
    def transform(order_data):
        @task(multiple_outputs=True)
        def total(order_data: dict):
            return {"total_order_value": sum(order_data.values())}
        return total(order_data)

    @task.skip_if(lambda context: True)
    @task
    def never():
        raise AirflowSkipException("unreachable")

    @task()
    def load(total_order_value: float):
        return f"{total_order_value:.2f} at {timezone.utcnow().year > 2000}"

    summary = transform(extract())
    summary >> Label("always") >> never()
    load(summary["total_order_value"])


orders_etl()
'''


def folder_with(tmp_path: Path, **files: str) -> Path:
    for name, text in files.items():
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(text), encoding="utf-8")
    return tmp_path


@pytest.mark.anyio
async def test_an_unmodified_airflow_tutorial_loads_and_runs(tmp_path: Path) -> None:
    bag = DagBag(folder_with(tmp_path, tutorial=TUTORIAL))
    bag.collect()
    assert bag.import_errors == {}
    dag = bag.get_dag("orders_tutorial")
    assert isinstance(dag, DAG)
    assert dag.get_task("sleep").retries == 3
    result = await run_dag(dag)
    assert set(result.states.values()) == {"success"}
    assert result.xcoms["templated"].endswith(" me")


@pytest.mark.anyio
async def test_a_taskflow_file_with_airflow_sdk_imports_runs(tmp_path: Path) -> None:
    bag = DagBag(folder_with(tmp_path, etl=TASKFLOW))
    bag.collect()
    assert bag.import_errors == {}
    dag = bag.get_dag("orders_etl")
    result = await run_dag(dag)
    assert result.states == {
        "extract": "success",
        "transform.total": "success",
        "never": "skipped",
        "load": "success",
    }
    assert result.xcoms["load"] == "1236.70 at True"


def test_the_hook_is_active_only_while_a_file_loads(tmp_path: Path) -> None:
    bag = DagBag(folder_with(tmp_path, tutorial=TUTORIAL))
    bag.collect()
    assert "orders_tutorial" in bag.dags
    assert not any(name == "airflow" or name.startswith("airflow.") for name in sys.modules)
    with pytest.raises(ModuleNotFoundError):
        import airflow  # noqa: F401


@pytest.mark.parametrize(
    ("source", "feature", "advice"),
    [
        (
            "from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator",
            "Kubernetes provider",
            "BashOperator",
        ),
        ("from airflow.hooks.http_hook import HttpHook", "Airflow hooks", "@task"),
        (
            "from airflow.providers.standard.operators.hitl import ApprovalOperator",
            "human-in-the-loop",
            "sensor",
        ),
        ("from airflow.operators.bash import BashOperatr", "BashOperatr", "has BashOperator"),
        ("import airflow.contrib.hooks", "airflow.contrib", "@task"),
    ],
)
def test_what_asyncflow_lacks_is_named_with_advice(source: str, feature: str, advice: str) -> None:
    with activate(), pytest.raises(UnsupportedImportError) as caught:
        exec(source, {})
    message = str(caught.value)
    assert feature in message and "not supported by asyncflow" in message and advice in message


def test_an_unknown_task_decorator_names_the_feature(tmp_path: Path) -> None:
    text = """
    from airflow.decorators import dag, task

    @dag(schedule=None)
    def k8s():
        @task.kubernetes(image="python:3.12")
        def hello():
            pass
        hello()

    k8s()
    """
    bag = DagBag(folder_with(tmp_path, k8s=text))
    bag.collect()
    (error,) = bag.import_errors.values()
    assert "@task.kubernetes" in str(error) and "not supported by asyncflow" in str(error)
    assert "_TaskNamespace" not in str(error)
    with pytest.raises(UnsupportedAttributeError):
        from asyncflow import task

        task.docker  # noqa: B018


def test_with_the_real_airflow_installed_the_hook_stays_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "airflow"
    package.mkdir()
    (package / "__init__.py").write_text("REAL = True\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with activate() as active:
            import airflow

            assert not active and airflow.REAL
    finally:  # not monkeypatch.delitem: its undo would put this fake airflow back
        sys.modules.pop("airflow", None)


# Written for this test in the style of Airflow's deferrable examples (its import paths).
DEFERRABLE = """
from datetime import datetime, timedelta

from airflow.sdk import DAG, BaseOperator
from airflow.exceptions import TaskDeferred
from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.providers.standard.sensors.time_delta import TimeDeltaSensorAsync
from airflow.sensors.date_time import DateTimeSensor


class WaitABit(BaseOperator):
    def execute(self, context):
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=0)), method_name="execute_complete")

    def execute_complete(self, context, event=None):
        return "resumed"


with DAG("deferrable_port", start_date=datetime(2024, 1, 1), schedule=None) as dag:
    WaitABit(task_id="wait") >> TimeDeltaSensorAsync(task_id="delta", delta=timedelta(0))
    DateTimeSensor(task_id="moment", target_time=datetime(2024, 1, 1), deferrable=True)
"""


@pytest.mark.anyio
async def test_an_airflow_deferrable_dag_runs_with_its_imports_unchanged(tmp_path: Path) -> None:
    (tmp_path / "deferrable.py").write_text(DEFERRABLE)
    bag = DagBag(tmp_path)
    bag.collect()
    assert bag.import_errors == {}
    done = await run_dag(bag.dags["deferrable_port"])
    assert done.states == {"wait": "success", "delta": "success", "moment": "success"}
    assert done.xcoms["wait"] == "resumed"
