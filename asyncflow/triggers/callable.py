"""`CallableTrigger`: any importable `async def` as a trigger. Its return value is the event's
payload; it may sleep with `asyncflow.triggers.sleep()` (the engine's clock) or await IO."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from asyncflow.triggers.base import BaseTrigger, TriggerEvent, classpath_of


def _path_of(fn: Callable[..., Any] | str) -> str:
    if isinstance(fn, str):
        return fn
    qualname = getattr(fn, "__qualname__", "")
    if "<locals>" in qualname or "<lambda>" in qualname:
        raise ValueError(
            f"CallableTrigger needs a module-level async function, got {qualname!r}: a restart "
            "must be able to import it by name"
        )
    return f"{fn.__module__}.{qualname}"


class CallableTrigger(BaseTrigger):
    """Awaits `callable(**kwargs)` (an importable `async def`, or its dotted path) and fires
    with what it returns."""

    def __init__(self, callable: Callable[..., Any] | str,
                 kwargs: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.path = _path_of(callable)
        self.kwargs = dict(kwargs or {})

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(CallableTrigger), {"callable": self.path, "kwargs": self.kwargs}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        module_name, _, name = self.path.rpartition(".")
        fn = getattr(importlib.import_module(module_name), name)
        yield TriggerEvent(await fn(**self.kwargs))
