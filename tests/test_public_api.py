"""The public API is a list: every name in `asyncflow.__all__` imports, and the list only
changes on purpose (update EXPECTED with the change)."""

from __future__ import annotations

import importlib

import asyncflow

EXPECTED = [
    "DAG",
    "NEVER_EXPIRE",
    "TaskStateStore",
    "AssetStateStore",
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetEvent",
    "AssetWatcher",
    "Dataset",
    "Metadata",
    "asset",
    "AsyncflowError",
    "AsyncflowFailException",
    "AsyncflowSkipException",
    "AsyncflowTaskTimeout",
    "BaseHook",
    "BaseOperator",
    "BaseTrigger",
    "Clock",
    "Connection",
    "DagDefinitionError",
    "DagAlreadyExists",
    "DagNotFound",
    "DagRun",
    "DagHasActiveRuns",
    "DagRunAlreadyExists",
    "DagRunNotFound",
    "DagRunState",
    "DagRunStateChanged",
    "DagRunType",
    "Engine",
    "EventsMissed",
    "FakeClock",
    "Label",
    "NotSupportedError",
    "Param",
    "ParamValidationError",
    "RunWaitTimeout",
    "Pool",
    "SystemClock",
    "TaskDeferralError",
    "TaskDeferralTimeout",
    "TaskDeferred",
    "TaskGroup",
    "TaskInstance",
    "TaskNotFound",
    "TaskState",
    "TaskStateChanged",
    "TriggerEvent",
    "TriggerRule",
    "Variable",
    "WeightRule",
    "PriorityWeightStrategy",
    "ExceptionRetryPolicy",
    "RetryAction",
    "RetryDecision",
    "RetryPolicy",
    "RetryRule",
    "XComArg",
    "__version__",
    "chain",
    "cross_downstream",
    "dag",
    "get_current_context",
    "setup",
    "task",
    "teardown",
    "task_group",
]

OPERATORS = [
    "BaseBranchOperator",
    "BashOperator",
    "BranchDateTimeOperator",
    "BranchDayOfWeekOperator",
    "BranchExternalPythonOperator",
    "BranchPythonOperator",
    "BranchPythonVirtualenvOperator",
    "EmptyOperator",
    "ExternalPythonOperator",
    "LatestOnlyOperator",
    "PythonOperator",
    "PythonVirtualenvOperator",
    "ShortCircuitOperator",
    "TriggerDagRunOperator",
]


def test_all_matches_the_checked_in_list() -> None:
    assert sorted(asyncflow.__all__) == sorted(EXPECTED)
    assert len(set(asyncflow.__all__)) == len(asyncflow.__all__)


def test_every_public_name_is_importable() -> None:
    module = importlib.import_module("asyncflow")
    for name in asyncflow.__all__:
        assert getattr(module, name) is not None, name
    namespace: dict[str, object] = {}
    exec("from asyncflow import *", namespace)
    assert set(EXPECTED) - {"__version__"} <= set(namespace)


def test_operators_are_importable_from_asyncflow_operators() -> None:
    operators = importlib.import_module("asyncflow.operators")
    assert sorted(operators.__all__) == OPERATORS
    for name in OPERATORS:
        assert isinstance(getattr(operators, name), type)


def test_lookup_errors_are_lookup_errors() -> None:
    for error in (asyncflow.DagNotFound, asyncflow.DagRunNotFound, asyncflow.TaskNotFound):
        assert issubclass(error, LookupError)
        assert issubclass(error, asyncflow.AsyncflowError)
    assert issubclass(asyncflow.DagRunAlreadyExists, ValueError)
    assert issubclass(asyncflow.DagDefinitionError, ValueError)
    assert issubclass(asyncflow.AsyncflowTaskTimeout, TimeoutError)


def test_airflow_exception_names_are_aliases() -> None:
    from asyncflow import exceptions

    assert exceptions.AirflowException is asyncflow.AsyncflowError
    assert exceptions.AirflowSkipException is asyncflow.AsyncflowSkipException
    assert exceptions.AirflowFailException is asyncflow.AsyncflowFailException
    assert exceptions.AirflowTaskTimeout is asyncflow.AsyncflowTaskTimeout
