"""Triggers: what deferred tasks wait on, run as coroutines in the engine's event loop."""

from asyncflow.triggers.base import (
    BaseTrigger,
    StartTriggerArgs,
    TaskFailedEvent,
    TaskSkippedEvent,
    TaskSuccessEvent,
    TriggerEvent,
    now,
    sleep,
    sleep_until,
)
from asyncflow.triggers.callable import CallableTrigger
from asyncflow.triggers.external_task import DagStateTrigger, TaskStateTrigger
from asyncflow.triggers.file import FileDeleteTrigger, FileTrigger
from asyncflow.triggers.temporal import DateTimeTrigger, TimeDeltaTrigger

__all__ = [
    "BaseTrigger",
    "CallableTrigger",
    "DagStateTrigger",
    "DateTimeTrigger",
    "FileDeleteTrigger",
    "FileTrigger",
    "StartTriggerArgs",
    "TaskFailedEvent",
    "TaskSkippedEvent",
    "TaskStateTrigger",
    "TaskSuccessEvent",
    "TimeDeltaTrigger",
    "TriggerEvent",
    "now",
    "sleep",
    "sleep_until",
]
