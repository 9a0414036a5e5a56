"""asyncflow: Apache Airflow's concepts as one asyncio event-driven daemon.

The public API is this list; everything else may change.
"""

from asyncflow.clock import Clock, FakeClock, SystemClock
from asyncflow.engine.engine import Engine
from asyncflow.engine.events import DagRunStateChanged, EventsMissed, TaskStateChanged
from asyncflow.exceptions import (
    AsyncflowError,
    AsyncflowFailException,
    AsyncflowSkipException,
    AsyncflowTaskTimeout,
    DagDefinitionError,
    DagNotFound,
    DagRunAlreadyExists,
    DagRunNotFound,
    ParamValidationError,
    TaskNotFound,
)
from asyncflow.models.baseoperator import BaseOperator, chain, cross_downstream
from asyncflow.models.dag import DAG
from asyncflow.models.param import Param
from asyncflow.models.pool import Pool
from asyncflow.models.taskflow import dag, task
from asyncflow.models.trigger_rule import TriggerRule, WeightRule
from asyncflow.models.xcom_arg import XComArg
from asyncflow.records import DagRun, DagRunType, TaskInstance
from asyncflow.states import DagRunState, TaskState

__version__ = "0.1.0"

__all__ = [
    "DAG",
    "AsyncflowError",
    "AsyncflowFailException",
    "AsyncflowSkipException",
    "AsyncflowTaskTimeout",
    "BaseOperator",
    "Clock",
    "DagDefinitionError",
    "DagNotFound",
    "DagRun",
    "DagRunAlreadyExists",
    "DagRunNotFound",
    "DagRunState",
    "DagRunStateChanged",
    "DagRunType",
    "Engine",
    "EventsMissed",
    "FakeClock",
    "Param",
    "ParamValidationError",
    "Pool",
    "SystemClock",
    "TaskInstance",
    "TaskNotFound",
    "TaskState",
    "TaskStateChanged",
    "TriggerRule",
    "WeightRule",
    "XComArg",
    "__version__",
    "chain",
    "cross_downstream",
    "dag",
    "task",
]
