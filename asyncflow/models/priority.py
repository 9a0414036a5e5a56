"""Custom priority weights (Airflow's `PriorityWeightStrategy`): `weight_rule=MyStrategy()`.

A strategy's `get_weight(ti)` gives a task instance's priority, in place of the built-in rules
(`downstream`, `upstream`, `absolute`). The engine asks it each time the task instance becomes
ready to run (its first try, each retry), with what the instance is at that moment: `dag_id`,
`run_id`, `task_id`, `map_index`, `try_number` (the tries made so far), `max_tries` and
`task`. It runs in the scheduler, so it should only compute; one that raises or returns a
non-integer is logged and the task's own `priority_weight` is used.

As in Airflow, `weight_rule=` also takes the strategy's class path as a string
(``"my_plugins.strategies.Decreasing"``): the class is imported and made with no arguments.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any

from asyncflow.models.trigger_rule import WeightRule


class PriorityWeightStrategy(ABC):
    """Subclass it and implement `get_weight(ti) -> int`. Strategies hold no state of their own:
    two instances of one class are equal, as in Airflow."""

    @abstractmethod
    def get_weight(self, ti: Any) -> int:
        """The priority of task instance `ti` (higher runs first)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, type(self))

    def __hash__(self) -> int:
        return hash(type(self))


def load_weight_rule(value: object) -> WeightRule | PriorityWeightStrategy:
    """`weight_rule=`'s value as a built-in rule or a strategy object; ValueError says why not."""
    if isinstance(value, PriorityWeightStrategy):
        return value
    if isinstance(value, type) and issubclass(value, PriorityWeightStrategy):
        return value()
    try:
        return WeightRule(value)  # type: ignore[arg-type]
    except Exception:  # ValueError, or whatever hashing a strange object raises
        pass
    rules = [r.value for r in WeightRule]
    if not isinstance(value, str) or "." not in value:
        raise ValueError(f"is unknown: use one of {rules} or a PriorityWeightStrategy")
    module_name, _, name = value.rpartition(".")
    try:
        found = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError) as exc:
        raise ValueError(
            f"names no importable class ({type(exc).__name__}: {exc}): use one of {rules}, a "
            "PriorityWeightStrategy object, or the dotted path of its class"
        ) from None
    if not (isinstance(found, type) and issubclass(found, PriorityWeightStrategy)):
        raise ValueError(f"names {found!r}, which is not a PriorityWeightStrategy subclass")
    return found()
