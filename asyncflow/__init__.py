"""asyncflow: Apache Airflow's concepts as one asyncio event-driven daemon.

The public API is this list; everything else may change.
"""

from typing import TYPE_CHECKING, Any

from asyncflow.clock import Clock, FakeClock, SystemClock
from asyncflow.exceptions import (
    AsyncflowError,
    AsyncflowFailException,
    AsyncflowSkipException,
    AsyncflowTaskTimeout,
    DagAlreadyExists,
    DagDefinitionError,
    DagHasActiveRuns,
    DagNotFound,
    DagRunAlreadyExists,
    DagRunNotFound,
    NotSupportedError,
    ParamValidationError,
    RunWaitTimeout,
    TaskDeferralError,
    TaskDeferralTimeout,
    TaskDeferred,
    TaskNotFound,
)

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine
    from asyncflow.engine.events import DagRunStateChanged, EventsMissed, TaskStateChanged
    from asyncflow.models.asset import (
        Asset,
        AssetAlias,
        AssetAll,
        AssetAny,
        AssetWatcher,
        Dataset,
        Metadata,
    )
    from asyncflow.models.assetdecorator import asset
    from asyncflow.models.baseoperator import BaseOperator
    from asyncflow.models.chain import chain, cross_downstream
    from asyncflow.models.connection import BaseHook, Connection
    from asyncflow.models.current import get_current_context
    from asyncflow.models.dag import DAG
    from asyncflow.models.edges import Label
    from asyncflow.models.param import Param
    from asyncflow.models.pool import Pool
    from asyncflow.models.priority import PriorityWeightStrategy
    from asyncflow.models.retry_policy import (
        ExceptionRetryPolicy,
        RetryAction,
        RetryDecision,
        RetryPolicy,
        RetryRule,
    )
    from asyncflow.models.statestore import NEVER_EXPIRE, AssetStateStore, TaskStateStore
    from asyncflow.models.taskflow import dag, setup, task, teardown
    from asyncflow.models.taskgroup import TaskGroup, task_group
    from asyncflow.models.trigger_rule import TriggerRule, WeightRule
    from asyncflow.models.variable import Variable
    from asyncflow.models.xcom_arg import XComArg
    from asyncflow.records import AssetEvent, DagRun, DagRunType, TaskInstance
    from asyncflow.states import DagRunState, TaskState
    from asyncflow.triggers.base import BaseTrigger, TriggerEvent

__version__ = "0.1.0"

# Every name loads on first use: `import asyncflow` costs almost nothing, a DAG file pays for
# the models it names, and only what runs DAGs loads the engine (aiosqlite, the scheduler).
_LAZY = {
    "Asset": "asyncflow.models.asset",
    "AssetAlias": "asyncflow.models.asset",
    "AssetAll": "asyncflow.models.asset",
    "AssetAny": "asyncflow.models.asset",
    "AssetEvent": "asyncflow.records",
    "AssetStateStore": "asyncflow.models.statestore",
    "AssetWatcher": "asyncflow.models.asset",
    "BaseHook": "asyncflow.models.connection",
    "BaseOperator": "asyncflow.models.baseoperator",
    "BaseTrigger": "asyncflow.triggers.base",
    "Connection": "asyncflow.models.connection",
    "DAG": "asyncflow.models.dag",
    "DagRun": "asyncflow.records",
    "DagRunState": "asyncflow.states",
    "DagRunType": "asyncflow.records",
    "Dataset": "asyncflow.models.asset",
    "ExceptionRetryPolicy": "asyncflow.models.retry_policy",
    "Label": "asyncflow.models.edges",
    "Metadata": "asyncflow.models.asset",
    "NEVER_EXPIRE": "asyncflow.models.statestore",
    "Param": "asyncflow.models.param",
    "Pool": "asyncflow.models.pool",
    "PriorityWeightStrategy": "asyncflow.models.priority",
    "RetryAction": "asyncflow.models.retry_policy",
    "RetryDecision": "asyncflow.models.retry_policy",
    "RetryPolicy": "asyncflow.models.retry_policy",
    "RetryRule": "asyncflow.models.retry_policy",
    "TaskGroup": "asyncflow.models.taskgroup",
    "TaskInstance": "asyncflow.records",
    "TaskState": "asyncflow.states",
    "TaskStateStore": "asyncflow.models.statestore",
    "TriggerEvent": "asyncflow.triggers.base",
    "TriggerRule": "asyncflow.models.trigger_rule",
    "Variable": "asyncflow.models.variable",
    "WeightRule": "asyncflow.models.trigger_rule",
    "XComArg": "asyncflow.models.xcom_arg",
    "asset": "asyncflow.models.assetdecorator",
    "chain": "asyncflow.models.chain",
    "cross_downstream": "asyncflow.models.chain",
    "dag": "asyncflow.models.taskflow",
    "get_current_context": "asyncflow.models.current",
    "setup": "asyncflow.models.taskflow",
    "task": "asyncflow.models.taskflow",
    "task_group": "asyncflow.models.taskgroup",
    "teardown": "asyncflow.models.taskflow",
    "Engine": "asyncflow.engine.engine",
    "DagRunStateChanged": "asyncflow.engine.events",
    "EventsMissed": "asyncflow.engine.events",
    "TaskStateChanged": "asyncflow.engine.events",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'asyncflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DAG",
    "NEVER_EXPIRE",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetEvent",
    "AssetStateStore",
    "AssetWatcher",
    "AsyncflowError",
    "AsyncflowFailException",
    "AsyncflowSkipException",
    "AsyncflowTaskTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseTrigger",
    "Clock",
    "Connection",
    "DagAlreadyExists",
    "DagDefinitionError",
    "DagHasActiveRuns",
    "DagNotFound",
    "DagRun",
    "DagRunAlreadyExists",
    "DagRunNotFound",
    "DagRunState",
    "DagRunStateChanged",
    "DagRunType",
    "Dataset",
    "Engine",
    "EventsMissed",
    "ExceptionRetryPolicy",
    "FakeClock",
    "Label",
    "Metadata",
    "NotSupportedError",
    "Param",
    "ParamValidationError",
    "Pool",
    "PriorityWeightStrategy",
    "RetryAction",
    "RetryDecision",
    "RetryPolicy",
    "RetryRule",
    "RunWaitTimeout",
    "SystemClock",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "TaskGroup",
    "TaskInstance",
    "TaskNotFound",
    "TaskState",
    "TaskStateChanged",
    "TaskStateStore",
    "TriggerEvent",
    "TriggerRule",
    "Variable",
    "WeightRule",
    "XComArg",
    "__version__",
    "asset",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "setup",
    "task",
    "task_group",
    "teardown",
]
