"""The graph of a DAG laid out on the server, for an SVG: tasks in columns by depth (the
longest path from a root), each column ordered by the mean row of its upstream tasks (fewer
crossings than by name), edges as cubic curves from a task's right side to the next's left."""

from __future__ import annotations

from dataclasses import dataclass

from asyncflow.models.dag import DAG

__all__ = ["MAX_NODES", "Edge", "Layout", "Node", "layout"]

#: above this many tasks the page says to use `asyncflow dags show --dot` instead
MAX_NODES = 2_000
NODE_W, NODE_H = 160, 28
GAP_X, GAP_Y = 60, 12
MARGIN = 10


@dataclass(frozen=True, slots=True)
class Node:
    task_id: str
    x: int
    y: int
    label: str


@dataclass(frozen=True, slots=True)
class Edge:
    path: str  # an SVG path: M x1 y1 C ... x2 y2


@dataclass(frozen=True, slots=True)
class Layout:
    nodes: list[Node]
    edges: list[Edge]
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H


def _label(task_id: str, limit: int = 22) -> str:
    return task_id if len(task_id) <= limit else task_id[: limit - 1] + "…"


def layout(dag: DAG) -> Layout:
    depth: dict[str, int] = {}
    for task in dag.topological_sort():
        depth[task.task_id] = max((depth[u] + 1 for u in task.upstream_task_ids), default=0)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for task_id in sorted(depth):
        columns[depth[task_id]].append(task_id)
    row: dict[str, float] = {}
    for column in columns:

        def key(task_id: str) -> tuple[float, str]:
            ups = [row[u] for u in dag.task_dict[task_id].upstream_task_ids]
            return (sum(ups) / len(ups) if ups else 0.0, task_id)

        column.sort(key=key)
        for i, task_id in enumerate(column):
            row[task_id] = i
    place = {
        task_id: (MARGIN + c * (NODE_W + GAP_X), MARGIN + i * (NODE_H + GAP_Y))
        for c, column in enumerate(columns)
        for i, task_id in enumerate(column)
    }
    nodes = [Node(t, x, y, _label(t)) for t, (x, y) in place.items()]
    edges = []
    for task_id, (x, y) in place.items():
        for down in sorted(dag.task_dict[task_id].downstream_task_ids):
            x2, y2 = place[down]
            x1, y1, y2 = x + NODE_W, y + NODE_H // 2, y2 + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append(Edge(f"M{x1} {y1} C{mid} {y1} {mid} {y2} {x2} {y2}"))
    width = MARGIN * 2 + max(len(columns), 1) * (NODE_W + GAP_X) - GAP_X
    height = MARGIN * 2 + max((len(c) for c in columns), default=1) * (NODE_H + GAP_Y) - GAP_Y
    return Layout(nodes, edges, width, height)
