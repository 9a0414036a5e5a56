"""Operators and triggers the deferral tests use (module level: a restart imports them by
their class path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from asyncflow import BaseOperator
from asyncflow.triggers import BaseTrigger, StartTriggerArgs, TimeDeltaTrigger, TriggerEvent

#: what ran, in order: ("execute", task_id), ("resume", task_id, event), ("cleanup", name)...
CALLS: list[tuple[Any, ...]] = []


class WaitOperator(BaseOperator):
    """Defers for `seconds` on the engine's clock, then returns what it was woken with."""

    def __init__(self, *, seconds: float = 60, timeout: float | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.seconds = seconds
        self.timeout = timeout

    def execute(self, context: Any) -> Any:
        CALLS.append(("execute", self.task_id, context["ti"].try_number))
        context["ti"].xcom_push(key="before", value="pushed before deferring")
        self.defer(
            trigger=TimeDeltaTrigger(timedelta(seconds=self.seconds)),
            method_name="done",
            kwargs={"note": "kept"},
            timeout=None if self.timeout is None else timedelta(seconds=self.timeout),
        )

    def done(self, context: Any, event: Any = None, note: str = "") -> Any:
        CALLS.append(("resume", self.task_id, context["ti"].try_number))
        return {"event": event.isoformat(), "note": note}


class AsyncWaitOperator(WaitOperator):
    async def execute(self, context: Any) -> Any:  # type: ignore[override]
        return WaitOperator.execute(self, context)

    async def done(self, context: Any, event: Any = None, note: str = "") -> Any:  # type: ignore[override]
        return WaitOperator.done(self, context, event, note)


class NeverTrigger(BaseTrigger):
    """Never fires; says when it is stopped."""

    def __init__(self, name: str = "never") -> None:
        super().__init__()
        self.name = name

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.NeverTrigger", {"name": self.name}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        self.log.warning("waiting forever (%s)", self.name)
        import anyio

        await anyio.sleep_forever()
        yield TriggerEvent(None)  # pragma: no cover

    async def cleanup(self) -> None:
        CALLS.append(("cleanup", self.name))


class BrokenTrigger(BaseTrigger):
    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{__name__}.BrokenTrigger", {}

    async def run(self) -> AsyncIterator[TriggerEvent]:
        raise ConnectionError("the queue is unreachable")
        yield TriggerEvent(None)  # pragma: no cover


class NeverOperator(BaseOperator):
    def __init__(self, *, timeout: float | None = None, trigger: str = "never",
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(**kwargs)
        self.timeout = timeout
        self.trigger = trigger

    def execute(self, context: Any) -> Any:
        CALLS.append(("execute", self.task_id, context["ti"].try_number))
        trigger = BrokenTrigger() if self.trigger == "broken" else NeverTrigger(self.task_id)
        self.defer(trigger=trigger, method_name="done", timeout=self.timeout)

    def done(self, context: Any, event: Any = None) -> Any:
        CALLS.append(("resume", self.task_id, event))
        return event


class StartDeferred(BaseOperator):
    """Begins deferred on a timer, never running execute."""

    start_from_trigger = True

    def __init__(self, *, moment: datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_trigger_args = StartTriggerArgs(
            trigger_cls="asyncflow.triggers.temporal.DateTimeTrigger",
            trigger_kwargs={"moment": moment},
            next_method="done",
        )

    def execute(self, context: Any) -> Any:
        CALLS.append(("execute", self.task_id))
        raise AssertionError("execute must not run for start_from_trigger")

    def done(self, context: Any, event: Any = None) -> Any:
        CALLS.append(("resume", self.task_id, context["ti"].try_number))
        return "started from the trigger"
