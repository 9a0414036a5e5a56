"""`Pool`: a named number of slots that tasks naming it share (`pool=`, `pool_slots=`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pool:
    name: str
    slots: int
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a pool needs a name")
        if self.slots < 0:
            raise ValueError(f"pool {self.name!r}: slots must be >= 0, got {self.slots}")
