"""`chain(a, [b, c], d)` and `cross_downstream(...)`: dependencies between many tasks at once."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

from asyncflow.exceptions import DagDefinitionError


def chain(*tasks: Any) -> None:
    """`chain(a, [b, c], d)`: a >> [b, c] >> d; two lists side by side pair up element-wise."""
    for up, down in itertools.pairwise(tasks):
        up_list = isinstance(up, list | tuple)
        down_list = isinstance(down, list | tuple)
        if up_list and down_list:
            if len(up) != len(down):
                raise DagDefinitionError(
                    f"chain() cannot pair lists of {len(up)} and {len(down)} tasks: "
                    "give them the same length"
                )
            for a, b in zip(up, down, strict=True):
                a >> b
        elif up_list:
            for a in up:
                a >> down
        else:
            up >> down


def cross_downstream(from_tasks: Sequence[Any], to_tasks: Sequence[Any]) -> None:
    """Every task of `from_tasks` upstream of every task of `to_tasks`."""
    for task in from_tasks:
        task >> list(to_tasks)
