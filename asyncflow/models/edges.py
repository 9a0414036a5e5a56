"""`Label`: a name on an edge, as in Airflow: ``branch >> Label("too big") >> shrink``.

A label sits between its upstream and downstream nodes (tasks, XComArgs, task groups, lists of
them): each upstream is linked to each downstream exactly as ``>>`` would link them, in whichever
order the two sides are given, and the label text is kept for every task-to-task edge it names
(`edge_info(dag)`). It changes nothing about how the run executes.
"""

from __future__ import annotations

import weakref
from typing import Any

from asyncflow.models.dag import DAG
from asyncflow.models.dependency import Relatable

_EDGE_INFO: weakref.WeakKeyDictionary[DAG, dict[tuple[str, str], dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)


def edge_info(dag: DAG) -> dict[tuple[str, str], dict[str, str]]:
    """`(upstream_task_id, downstream_task_id) -> {"label": ...}` for the DAG's labelled edges."""
    return dict(_EDGE_INFO.get(dag, {}))


def _tasks(node: Any, *, upstream_side: bool) -> list[Any]:
    from asyncflow.models.taskgroup import TaskGroup

    if isinstance(node, list | tuple | set):
        return [t for item in node for t in _tasks(item, upstream_side=upstream_side)]
    if isinstance(node, TaskGroup):
        return node.leaves if upstream_side else node.roots
    return [getattr(node, "operator", node)]


class EdgeModifier(Relatable):
    """Sits on the edges between its upstream and downstream nodes."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[Any] = []
        self._downstream: list[Any] = []

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self.label!r}>"

    def _relate_task(self, node: Any, *, upstream: bool) -> None:
        """`node` goes before (upstream=True) or after this label; link it across."""
        if upstream:
            self._upstream.append(node)
            for down in self._downstream:
                self._link(node, down)
        else:
            self._downstream.append(node)
            for up in self._upstream:
                self._link(up, node)

    def _link(self, up: Any, down: Any) -> None:
        up.set_downstream(down)
        if self.label is None:
            return
        for before in _tasks(up, upstream_side=True):
            dag = before.dag
            if dag is None:
                continue
            edges = _EDGE_INFO.setdefault(dag, {})
            for after in _tasks(down, upstream_side=False):
                edges[(before.task_id, after.task_id)] = {"label": self.label}

    def _items(self, other: Any) -> list[Any]:
        return list(other) if isinstance(other, list | tuple | set) else [other]

    def set_upstream(self, other: Any) -> None:
        for item in self._items(other):
            self._relate_task(item, upstream=True)

    def set_downstream(self, other: Any) -> None:
        for item in self._items(other):
            self._relate_task(item, upstream=False)


def Label(label: str) -> EdgeModifier:
    """An `EdgeModifier` carrying `label`: ``a >> Label("yes") >> b``."""
    return EdgeModifier(label)
