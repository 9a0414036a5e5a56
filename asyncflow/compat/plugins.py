"""Airflow's `AirflowPlugin`, for plugin modules that DAG files import.

Airflow needs a plugin to register a custom timetable or priority weight strategy before a DAG
may name it. asyncflow has no plugin manager and needs none: a DAG uses such a class by
importing it (`schedule=MyTimetable()`, `weight_rule=MyStrategy()` or its dotted path). So a
plugin module imports unchanged and its classes work; what a subclass lists here (`timetables`,
`priority_weight_strategies`, ...) is kept as written and read by nothing: UI parts (views,
menu links, blueprints), listeners and macros registered through a plugin do not take effect.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AirflowPlugin:
    """The base of an Airflow plugin: a name and lists of what it brings."""

    name: ClassVar[str] = ""
    timetables: ClassVar[list[Any]] = []
    priority_weight_strategies: ClassVar[list[Any]] = []
    macros: ClassVar[list[Any]] = []
    listeners: ClassVar[list[Any]] = []
