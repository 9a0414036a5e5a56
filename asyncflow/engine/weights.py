"""A task's custom priority (`weight_rule=` a `PriorityWeightStrategy`), asked per task
instance each time it becomes ready: what the strategy sees, and containment of its errors."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from asyncflow.logs import get_logger
from asyncflow.models.checks import MAX_COUNT

if TYPE_CHECKING:
    from asyncflow.engine.live import LiveTI
    from asyncflow.models.baseoperator import BaseOperator

log = get_logger("asyncflow.scheduler")


class WeighedInstance(NamedTuple):
    """The task instance a strategy's `get_weight(ti)` is given (Airflow's names)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    try_number: int
    max_tries: int
    task: BaseOperator

    @property
    def priority_weight(self) -> int:
        return self.task.priority_weight


def strategy_weight(ti: LiveTI) -> int:
    """`ti`'s priority from its task's strategy; the task's `priority_weight` when the
    strategy raises or gives no whole number (logged: the scheduler goes on)."""
    task = ti.task
    strategy: Any = task.weight_rule
    view = WeighedInstance(ti.run.dag_id, ti.run.run_id, ti.task_id, ti.map_index,
                           ti.try_number, ti.max_tries, task)  # fmt: skip
    try:
        weight = strategy.get_weight(view)
        if isinstance(weight, bool) or not isinstance(weight, int):
            raise TypeError(f"get_weight returned {weight!r:.80}, not an int")
    except Exception as exc:  # the DAG's own code: its task keeps its plain weight
        log.error("priority weight strategy failed; using the task's priority_weight",
                  ti=ti.key, strategy=type(strategy).__qualname__,
                  error=f"{type(exc).__name__}: {exc}")  # fmt: skip
        return task.priority_weight
    return max(-MAX_COUNT - 1, min(MAX_COUNT, weight))
