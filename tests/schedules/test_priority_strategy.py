"""Custom priority weights (`weight_rule=` a PriorityWeightStrategy, or its class path): asked
per task instance each time it becomes ready; a failing strategy leaves the plain weight."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

import pytest

from asyncflow import DAG, DagDefinitionError, DagRunState, FakeClock, PriorityWeightStrategy

from .support import Probe, Tracker, make_engine, utc

pytestmark = pytest.mark.anyio
NOW = utc(2024, 1, 1)


class ByMapIndexAndTry(PriorityWeightStrategy):
    """Later tries first, then the weight its task_id names (`t<weight>`)."""

    seen: ClassVar[list[tuple[str, int, int]]] = []

    def get_weight(self, ti: Any) -> int:
        self.seen.append((ti.task_id, ti.try_number, ti.max_tries))
        return 100 * ti.try_number + int(ti.task_id.removeprefix("t"))


class Broken(PriorityWeightStrategy):
    def get_weight(self, ti: Any) -> int:
        raise RuntimeError("no weight today")


async def started(dag: DAG, tracker: Tracker) -> list[str]:
    async with make_engine([dag], FakeClock(NOW), parallelism=1) as engine:
        run = await engine.trigger_dag(dag.dag_id)
        finished = await engine.wait_for_run(dag.dag_id, run.run_id, timeout=5)
    assert finished.state is DagRunState.SUCCESS
    return [task_id for task_id, _ in tracker.started]


async def test_a_strategy_orders_the_ready_task_instances() -> None:
    ByMapIndexAndTry.seen = []
    tracker = Tracker()
    with DAG("custom", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        for weight in (2, 7, 5):  # priority_weight says the opposite: the strategy decides
            Probe(task_id=f"t{weight}", tracker=tracker, priority_weight=10 - weight,
                  weight_rule=ByMapIndexAndTry(), retries=2)  # fmt: skip
    assert await started(dag, tracker) == ["t7", "t5", "t2"]
    assert sorted(ByMapIndexAndTry.seen) == [("t2", 0, 2), ("t5", 0, 2), ("t7", 0, 2)]


async def test_the_strategy_is_asked_again_for_a_retry() -> None:
    ByMapIndexAndTry.seen = []
    tracker = Tracker()
    tracker.fail_tries = 1  # every task fails its first try
    with DAG("retrying", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="t1", tracker=tracker, weight_rule=ByMapIndexAndTry(), retries=1,
              retry_delay=0)  # fmt: skip
    await started(dag, tracker)
    assert ByMapIndexAndTry.seen == [("t1", 0, 1), ("t1", 1, 1)]


async def test_a_strategy_given_by_its_class_path_and_one_that_fails() -> None:
    tracker = Tracker()
    path = f"{__name__}.ByMapIndexAndTry"
    with DAG("by_path", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
        Probe(task_id="t1", tracker=tracker, weight_rule=path)
        Probe(task_id="broken", tracker=tracker, weight_rule=Broken(), priority_weight=50)
    assert isinstance(dag.task_dict["t1"].weight_rule, ByMapIndexAndTry)
    # the broken strategy is logged and its task keeps priority_weight=50 (above t1's 1)
    assert await started(dag, tracker) == ["broken", "t1"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("sideways", "is unknown: use one of"),
        ("no.such.module.Strategy", r"names no importable class \(ModuleNotFoundError"),
        ("datetime.datetime", "not a PriorityWeightStrategy subclass"),
    ],
)
def test_a_weight_rule_that_is_no_rule_nor_strategy_is_a_load_error(
    value: str, message: str
) -> None:
    with pytest.raises(DagDefinitionError, match=message) as caught, DAG("bad", schedule=None):
        Probe(task_id="t", tracker=Tracker(), weight_rule=value)
    assert caught.value.task_id == "t"
