"""`BaseTrigger`: something a deferred task waits on, run as one coroutine in the engine's own
event loop (no triggerer process, no slot).

A trigger is rebuilt from `serialize()` — its class path and keyword arguments — so the engine
keeps it in the store and a restart resumes every deferred task without running `execute`
again. `run()` is an async generator: the first `TriggerEvent` it yields wakes the task; a
`TaskSuccessEvent` / `TaskFailedEvent` / `TaskSkippedEvent` ends the task without resuming it.

Triggers read time and sleep through `now()` / `sleep_until()` / `sleep()` of this module:
inside the engine they use the engine's clock (a FakeClock moves them in tests).
"""

from __future__ import annotations

import contextvars
import importlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import anyio


@dataclass(frozen=True)
class TriggerEvent:
    """What a trigger yields when the condition holds; `payload` reaches the resumed method as
    its `event` argument (JSON values, datetimes, timedeltas)."""

    payload: Any = None


@dataclass(frozen=True)
class BaseTaskEndEvent(TriggerEvent):
    """A trigger's event that ends the task itself, with `xcoms` pushed, without resuming it."""

    xcoms: dict[str, Any] = field(default_factory=dict)
    state: str = "success"


@dataclass(frozen=True)
class TaskSuccessEvent(BaseTaskEndEvent):
    state: str = "success"


@dataclass(frozen=True)
class TaskFailedEvent(BaseTaskEndEvent):
    state: str = "failed"


@dataclass(frozen=True)
class TaskSkippedEvent(BaseTaskEndEvent):
    state: str = "skipped"


@dataclass(frozen=True)
class StartTriggerArgs:
    """How an operator with `start_from_trigger = True` begins: deferred on `trigger_cls`
    (a class path) with `trigger_kwargs`, resuming in `next_method`, without running execute."""

    trigger_cls: str
    next_method: str
    trigger_kwargs: dict[str, Any] | None = None
    next_kwargs: dict[str, Any] | None = None
    timeout: timedelta | None = None


@dataclass(frozen=True)
class StateWait:
    """What a task- or DAG-state trigger waits for: every matching run (by run_id or logical
    date) of `dag_id` — its task `task_id`, or the run itself — in one of `states`; or one of
    them in `failed_states`."""

    dag_id: str
    states: frozenset[str]
    task_id: str | None = None
    run_ids: tuple[str, ...] = ()
    logical_dates: tuple[datetime, ...] = ()
    failed_states: frozenset[str] = frozenset()


class TriggerRuntime(Protocol):
    """What a running trigger may ask of the engine that runs it."""

    def now(self) -> datetime: ...

    async def sleep_until(self, when: datetime) -> None: ...

    async def wait_for_path(self, pattern: str, *, recursive: bool, exists: bool,
                            interval: float) -> list[str]:  # fmt: skip
        """Until a file matches `pattern` (exists) or none does (not exists); the matches."""
        ...

    async def wait_for_states(self, wait: StateWait) -> dict[str, str]:
        """Until `wait` holds; the state of each matching run's task (or run) by run_id."""
        ...


class _Standalone:
    """Outside an engine (a trigger run by hand in a test): the wall clock, polling."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep_until(self, when: datetime) -> None:
        await anyio.sleep(max(0.0, (when - self.now()).total_seconds()))

    async def wait_for_path(self, pattern: str, *, recursive: bool, exists: bool,
                            interval: float) -> list[str]:  # fmt: skip
        from asyncflow.triggers.file import matches

        while True:
            found = await anyio.to_thread.run_sync(matches, pattern, recursive)
            if bool(found) == exists:
                return found
            await anyio.sleep(interval)

    async def wait_for_states(self, wait: StateWait) -> dict[str, str]:
        raise RuntimeError(
            f"a trigger waiting on DAG {wait.dag_id!r} needs the engine's event bus: "
            "run it inside an Engine"
        )


runtime_var: contextvars.ContextVar[TriggerRuntime | None] = contextvars.ContextVar(
    "asyncflow_trigger_runtime", default=None
)
_STANDALONE = _Standalone()


def runtime() -> TriggerRuntime:
    """The engine running this trigger (outside one: the wall clock, polling)."""
    return runtime_var.get() or _STANDALONE


def now() -> datetime:
    """The current time on the clock of the engine running this trigger."""
    return runtime().now()


async def sleep_until(when: datetime) -> None:
    """Sleep until `when` on the engine's clock (a timer, not a poll)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    await runtime().sleep_until(when)


async def sleep(seconds: float) -> None:
    rt = runtime()
    await rt.sleep_until(rt.now() + timedelta(seconds=seconds))


class BaseTrigger:
    """Subclass it: `__init__` takes the keyword arguments `serialize()` returns, and `run()`
    yields a `TriggerEvent` when the condition holds. `cleanup()` runs whenever the trigger
    stops (it fired, the task was cleared or timed out, the engine shut down)."""

    def __init__(self, **kwargs: Any) -> None:
        self.trigger_id: int | None = None

    @property
    def log(self) -> logging.Logger:
        """Lines logged here go to the deferred task's attempt log."""
        cls = type(self)
        return logging.getLogger(f"{cls.__module__}.{cls.__qualname__}")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """(class path, keyword arguments) that rebuild this trigger after a restart."""
        raise NotImplementedError(
            f"{type(self).__name__} must implement serialize() -> (classpath, kwargs)"
        )

    def run(self) -> AsyncIterator[TriggerEvent]:
        """An async generator yielding TriggerEvents; the first one wakes the task."""
        raise NotImplementedError(f"{type(self).__name__} must implement async def run()")

    async def cleanup(self) -> None:
        """Called when the trigger stops, for whatever reason."""

    def __repr__(self) -> str:
        classpath, kwargs = self.serialize()
        return f"<{classpath} {kwargs}>"


class BaseEventTrigger(BaseTrigger):
    """A trigger that may watch an asset (`AssetWatcher`): after each event it is started
    again, so it must not fire again at once for the same condition (FileDeleteTrigger takes
    the file away; a queue trigger takes the message)."""


def classpath_of(obj: type) -> str:
    return f"{obj.__module__}.{obj.__qualname__}"


def load_trigger(classpath: str, kwargs: dict[str, Any]) -> BaseTrigger:
    """Rebuild a trigger from what `serialize()` returned; errors say which class failed."""
    module_name, _, name = classpath.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ImportError(
            f"trigger class {classpath!r} cannot be imported ({exc}): it must be importable by "
            "the engine (a module on sys.path, or in the DAG folder's plugins)"
        ) from exc
    trigger = cls(**kwargs)
    if not isinstance(trigger, BaseTrigger):
        raise TypeError(f"{classpath!r} is not a BaseTrigger subclass")
    return trigger
