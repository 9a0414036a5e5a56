"""Airflow's import paths, answered with asyncflow's objects, while a DAG file is being loaded.

``with activate(): ...`` puts a finder first on `sys.meta_path` that serves ``airflow``,
``airflow.sdk``, ``airflow.decorators``, ``airflow.models*``, ``airflow.operators.*``,
``airflow.sensors.*``, ``airflow.utils.*``, ``airflow.providers.standard.*`` and
``airflow.exceptions`` as small modules whose names are asyncflow's (``DAG``, ``task``,
``BashOperator``...). A name or module asyncflow does not have raises `UnsupportedImportError`
(an ImportError) naming the Airflow feature and what to use instead, unless another finder on
`sys.meta_path` serves it (a package of one's own under ``airflow.*``).

The hook exists only inside the block (the DAG loader and `asyncflow dags test` open it around
each file's import): on leaving, the finder and every module it made leave `sys.modules`, so no
other code of the process sees a package named ``airflow``. When the real ``airflow`` package is
installed, `activate()` does nothing and DAG files get real Airflow.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

from asyncflow.models import unsupported

__all__ = ["MODULES", "activate", "airflow_installed"]

_M = "asyncflow.models."
_O = "asyncflow.operators."
_S = "asyncflow.sensors."
_E = "asyncflow.exceptions:"

_CORE = {
    "DAG": _M + "dag:DAG",
    "dag": _M + "taskflow:dag",
    "task": _M + "taskflow:task",
    "task_group": _M + "taskgroup:task_group",
    "setup": _M + "taskflow:setup",
    "teardown": _M + "taskflow:teardown",
    "TaskGroup": _M + "taskgroup:TaskGroup",
    "BaseOperator": _M + "baseoperator:BaseOperator",
    "chain": _M + "chain:chain",
    "cross_downstream": _M + "chain:cross_downstream",
    "Param": _M + "param:Param",
    "XComArg": _M + "xcom_arg:XComArg",
    "Label": _M + "edges:Label",
    "EdgeModifier": _M + "edges:EdgeModifier",
    "TriggerRule": _M + "trigger_rule:TriggerRule",
    "WeightRule": _M + "trigger_rule:WeightRule",
    "Pool": _M + "pool:Pool",
    "BaseSensorOperator": _S + "base:BaseSensorOperator",
    "PokeReturnValue": _S + "base:PokeReturnValue",
    "BaseBranchOperator": _O + "branch:BaseBranchOperator",
    "DagRunState": "asyncflow.states:DagRunState",
    "TaskInstanceState": "asyncflow.states:TaskState",
    "Context": _M + "baseoperator:Context",
    "PriorityWeightStrategy": _M + "priority:PriorityWeightStrategy",
    **{
        name: _M + f"retry_policy:{name}"
        for name in (
            "ExceptionRetryPolicy",
            "RetryAction",
            "RetryDecision",
            "RetryPolicy",
            "RetryRule",
        )
    },
    "timezone": "asyncflow.timezone",
    "Variable": _M + "variable:Variable",
    "Connection": _M + "connection:Connection",
    "BaseHook": _M + "connection:BaseHook",
    "get_current_context": _M + "current:get_current_context",
    "NEVER_EXPIRE": _M + "statestore:NEVER_EXPIRE",
    "BaseNotifier": "asyncflow.notifications.base:BaseNotifier",
}
_ASSETS = {
    **{
        name: _M + f"asset:{name}"
        for name in (
            "Asset",
            "AssetAlias",
            "AssetAll",
            "AssetAny",
            "AssetWatcher",
            "Dataset",
            "Metadata",
            "AssetAccessControl",
            "Model",
        )
    },
    "asset": _M + "assetdecorator:asset",
    "AssetOrTimeSchedule": "asyncflow.timetables.assets:AssetOrTimeSchedule",
}
_CORE.update(_ASSETS)
_CORE.update(
    {
        "CronTriggerTimetable": "asyncflow.timetables:CronTriggerTimetable",
        "DeltaTriggerTimetable": "asyncflow.timetables:DeltaTriggerTimetable",
        "CronDataIntervalTimetable": "asyncflow.timetables:CronDataIntervalTimetable",
        "DeltaDataIntervalTimetable": "asyncflow.timetables:DeltaDataIntervalTimetable",
    }
)
_DATASETS = {
    "Dataset": _M + "asset:Dataset",
    "DatasetAlias": _M + "asset:AssetAlias",
    "DatasetAll": _M + "asset:AssetAll",
    "DatasetAny": _M + "asset:AssetAny",
}
_BASH = {"BashOperator": _O + "bash:BashOperator"}
_PYTHON = {
    "get_current_context": _CORE["get_current_context"],
    "PythonOperator": _O + "python:PythonOperator",
    "BranchPythonOperator": _O + "python:BranchPythonOperator",
    "ShortCircuitOperator": _O + "python:ShortCircuitOperator",
    **{
        name: _O + "python_virtualenv:" + name
        for name in (
            "PythonVirtualenvOperator",
            "BranchPythonVirtualenvOperator",
            "ExternalPythonOperator",
            "BranchExternalPythonOperator",
        )
    },
}
_EMPTY = {"EmptyOperator": _O + "empty:EmptyOperator", "DummyOperator": _O + "empty:EmptyOperator"}
_LATEST = {"LatestOnlyOperator": _O + "latest_only:LatestOnlyOperator"}
_WEEKDAY_OP = {"BranchDayOfWeekOperator": _O + "weekday:BranchDayOfWeekOperator"}
_DATETIME_OP = {"BranchDateTimeOperator": _O + "datetime:BranchDateTimeOperator"}
_BRANCH = {"BaseBranchOperator": _O + "branch:BaseBranchOperator"}
_SENSOR_BASE = {
    "BaseSensorOperator": _S + "base:BaseSensorOperator",
    "PokeReturnValue": _S + "base:PokeReturnValue",
}
_TRIGGER = {"TriggerDagRunOperator": _O + "trigger_dagrun:TriggerDagRunOperator"}
_EXTERNAL = {
    "ExternalTaskSensor": _S + "external_task:ExternalTaskSensor",
    "ExternalTaskMarker": _S + "external_task:ExternalTaskMarker",
}
_BASH_SENSOR = {"BashSensor": _S + "bash:BashSensor"}
_FILE_SENSOR = {"FileSensor": _S + "filesystem:FileSensor"}
_PYTHON_SENSOR = {"PythonSensor": _S + "python:PythonSensor"}
_TIME_SENSOR = {"TimeSensor": _S + "time:TimeSensor"}
_DELTA_SENSOR = {"TimeDeltaSensor": _S + "time:TimeDeltaSensor"}
_DATETIME_SENSOR = {"DateTimeSensor": _S + "time:DateTimeSensor"}
_WEEKDAY_SENSOR = {"DayOfWeekSensor": _S + "weekday:DayOfWeekSensor"}
_WEEKDAY = {"WeekDay": "asyncflow.weekday:WeekDay"}
_EXCEPTIONS = {
    "AirflowException": _E + "AsyncflowError",
    "AirflowSkipException": _E + "AsyncflowSkipException",
    "AirflowFailException": _E + "AsyncflowFailException",
    "AirflowSensorTimeout": _E + "AsyncflowSensorTimeout",
    "AirflowTaskTimeout": _E + "AsyncflowTaskTimeout",
    "AirflowRescheduleException": _E + "AsyncflowRescheduleException",
    "ParamValidationError": _E + "ParamValidationError",
    "DuplicateTaskIdFound": _E + "DuplicateTaskIdError",
    "AirflowDagCycleException": _E + "CycleError",
    "TaskNotFound": _E + "TaskNotFound",
    "DagNotFound": _E + "DagNotFound",
    "DagRunNotFound": _E + "DagRunNotFound",
}
_EXCEPTIONS.update(
    {
        "TaskDeferred": _E + "TaskDeferred",
        "TaskDeferralError": _E + "TaskDeferralError",
        "TaskDeferralTimeout": _E + "TaskDeferralTimeout",
    }
)
_T = "asyncflow.triggers."
_TRIGGER_BASE = {
    name: _T + f"base:{name}"
    for name in ("BaseTrigger", "BaseEventTrigger", "TriggerEvent", "StartTriggerArgs",
                 "TaskSuccessEvent", "TaskFailedEvent", "TaskSkippedEvent")
}  # fmt: skip
_TEMPORAL = {n: _T + f"temporal:{n}" for n in ("DateTimeTrigger", "TimeDeltaTrigger")}
_FILE_TRIGGERS = {
    n: _T + f"file:{n}" for n in ("FileTrigger", "FileDeleteTrigger", "DirectoryFileDeleteTrigger")
}
_STATE_TRIGGERS = {n: _T + f"external_task:{n}" for n in ("TaskStateTrigger", "DagStateTrigger")}
_DELTA_SENSOR["TimeDeltaSensorAsync"] = _S + "time:TimeDeltaSensorAsync"
_DATETIME_SENSOR["DateTimeSensorAsync"] = _S + "time:DateTimeSensorAsync"
_TIME_SENSOR["TimeSensorAsync"] = _S + "time:TimeSensorAsync"
_TIMEZONE_NAMES = (
    "coerce_datetime", "convert_to_utc", "datetime", "is_localized", "is_naive", "make_aware",
    "make_naive", "parse", "utc", "utcnow",
)  # fmt: skip
_TIMEZONE = {name: f"asyncflow.timezone:{name}" for name in _TIMEZONE_NAMES}
_DECORATORS = {name: _CORE[name] for name in ("dag", "task", "task_group", "setup", "teardown")}
_STD = "airflow.providers.standard."

#: module name -> {name: "asyncflow.module:attribute" or "asyncflow.module"}
MODULES: dict[str, dict[str, str]] = {
    "airflow": {**_CORE},
    "airflow.sdk": {**_CORE, **_EXCEPTIONS},
    "airflow.sdk.exceptions": _EXCEPTIONS,
    "airflow.sdk.execution_time.context": {
        "NEVER_EXPIRE": _M + "statestore:NEVER_EXPIRE",
        "TaskStateStoreAccessor": _M + "statestore:TaskStateStore",
        "AssetStateStoreAccessor": _M + "statestore:AssetStateStore",
        "AssetStateStoreAccessors": _M + "statestore:AssetStateStores",
        "get_current_context": _CORE["get_current_context"],
    },
    # the providers' shim over Airflow 2 / 3 names: the same objects as airflow.sdk
    "airflow.providers.common.compat.sdk": {**_CORE, **_EXCEPTIONS},
    "airflow.exceptions": _EXCEPTIONS,
    "airflow.decorators": _DECORATORS,
    "airflow.sdk.definitions.decorators": _DECORATORS,
    "airflow.models": {
        name: _CORE[name]
        for name in ("DAG", "BaseOperator", "Param", "Pool", "Variable", "Connection")
    },
    "airflow.models.variable": {"Variable": _CORE["Variable"]},
    "airflow.models.connection": {"Connection": _CORE["Connection"]},
    "airflow.hooks.base": {"BaseHook": _CORE["BaseHook"]},
    "airflow.sdk.bases.hook": {"BaseHook": _CORE["BaseHook"]},
    "airflow.models.dag": {"DAG": _CORE["DAG"]},
    "airflow.models.baseoperator": {
        name: _CORE[name] for name in ("BaseOperator", "chain", "cross_downstream")
    },
    "airflow.models.param": {"Param": _CORE["Param"]},
    "airflow.models.xcom_arg": {"XComArg": _CORE["XComArg"]},
    "airflow.models.pool": {"Pool": _CORE["Pool"]},
    "airflow.utils.dates": {"days_ago": "asyncflow.timezone:days_ago"},
    "airflow.utils.timezone": _TIMEZONE,
    "airflow.sdk.timezone": _TIMEZONE,
    "airflow.utils.trigger_rule": {"TriggerRule": _CORE["TriggerRule"]},
    "airflow.utils.weight_rule": {"WeightRule": _CORE["WeightRule"]},
    "airflow.utils.task_group": {"TaskGroup": _CORE["TaskGroup"]},
    "airflow.utils.edgemodifier": {"Label": _CORE["Label"], "EdgeModifier": _CORE["EdgeModifier"]},
    "airflow.utils.helpers": {name: _CORE[name] for name in ("chain", "cross_downstream")},
    "airflow.utils.state": {
        "DagRunState": _CORE["DagRunState"],
        "TaskInstanceState": _CORE["TaskInstanceState"],
        "State": _CORE["TaskInstanceState"],
    },
    "airflow.utils.weekday": _WEEKDAY,
    "airflow.utils.email": {"send_email": "asyncflow.notifications.smtp:send_email"},
    "airflow.notifications.basenotifier": {"BaseNotifier": _CORE["BaseNotifier"]},
    "airflow.sdk.bases.notifier": {"BaseNotifier": _CORE["BaseNotifier"]},
    "airflow.operators.bash": _BASH,
    "airflow.operators.bash_operator": _BASH,
    "airflow.operators.python": _PYTHON,
    "airflow.operators.python_operator": _PYTHON,
    "airflow.operators.empty": _EMPTY,
    "airflow.operators.dummy": _EMPTY,
    "airflow.operators.dummy_operator": _EMPTY,
    "airflow.operators.latest_only": _LATEST,
    "airflow.operators.weekday": _WEEKDAY_OP,
    "airflow.operators.datetime": _DATETIME_OP,
    "airflow.operators.branch": _BRANCH,
    "airflow.operators.trigger_dagrun": _TRIGGER,
    "airflow.sensors.external_task": _EXTERNAL,
    "airflow.sensors.base": _SENSOR_BASE,
    "airflow.sensors.bash": _BASH_SENSOR,
    "airflow.sensors.filesystem": _FILE_SENSOR,
    "airflow.sensors.python": _PYTHON_SENSOR,
    "airflow.sensors.time_sensor": _TIME_SENSOR,
    "airflow.sensors.time_delta": _DELTA_SENSOR,
    "airflow.sensors.date_time": _DATETIME_SENSOR,
    "airflow.sensors.weekday": _WEEKDAY_SENSOR,
    _STD + "operators.bash": _BASH,
    _STD + "operators.python": _PYTHON,
    _STD + "operators.empty": _EMPTY,
    _STD + "operators.latest_only": _LATEST,
    _STD + "operators.weekday": _WEEKDAY_OP,
    _STD + "operators.datetime": _DATETIME_OP,
    _STD + "operators.branch": _BRANCH,
    _STD + "operators.trigger_dagrun": _TRIGGER,
    _STD + "sensors.external_task": _EXTERNAL,
    _STD + "sensors.bash": _BASH_SENSOR,
    _STD + "sensors.filesystem": _FILE_SENSOR,
    _STD + "sensors.python": _PYTHON_SENSOR,
    _STD + "sensors.time": _TIME_SENSOR,
    _STD + "sensors.time_delta": _DELTA_SENSOR,
    _STD + "sensors.date_time": _DATETIME_SENSOR,
    _STD + "sensors.weekday": _WEEKDAY_SENSOR,
    _STD + "utils.weekday": _WEEKDAY,
    "airflow.datasets": _DATASETS,
    "airflow.sdk.definitions.asset": _ASSETS,
    "airflow.sdk.definitions.asset.decorators": {"asset": _ASSETS["asset"]},
    "airflow.timetables.base": {
        name: f"asyncflow.timetables.base:{name}"
        for name in ("Timetable", "DagRunInfo", "DataInterval", "TimeRestriction")
    },
    "airflow.plugins_manager": {"AirflowPlugin": "asyncflow.compat.plugins:AirflowPlugin"},
    "airflow.task.priority_strategy": {"PriorityWeightStrategy": _CORE["PriorityWeightStrategy"]},
    "airflow.timetables.assets": {"AssetOrTimeSchedule": _ASSETS["AssetOrTimeSchedule"]},
    "airflow.timetables.datasets": {"DatasetOrTimeSchedule": _ASSETS["AssetOrTimeSchedule"]},
    "airflow.triggers.base": _TRIGGER_BASE,
    "airflow.triggers.temporal": _TEMPORAL,
    "airflow.triggers.file": _FILE_TRIGGERS,
    "airflow.triggers.external_task": _STATE_TRIGGERS,
    _STD + "triggers.temporal": _TEMPORAL,
    _STD + "triggers.file": _FILE_TRIGGERS,
    _STD + "triggers.external_task": _STATE_TRIGGERS,
}

#: every module that contains one of MODULES (a package, with nothing of its own to import)
_PACKAGES = frozenset(
    ".".join(name.split(".")[:i]) for name in MODULES for i in range(1, name.count(".") + 1)
)


def _resolve(target: str) -> Any:
    module_name, _, attribute = target.partition(":")
    module = importlib.import_module(module_name)
    return getattr(module, attribute) if attribute else module


class _AirflowModule(ModuleType):
    """One Airflow module: its names resolve to asyncflow's objects on first access."""

    def __init__(self, name: str, names: dict[str, str], package: bool) -> None:
        super().__init__(name, f"asyncflow's stand-in for Airflow's {name}")
        self._targets = names
        if package:
            self.__path__: list[str] = []
        self.__all__ = sorted(names)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "_targets":
            raise AttributeError(name)
        submodule = f"{self.__name__}.{name}"
        if submodule in MODULES or submodule in _PACKAGES:
            return importlib.import_module(submodule)  # `from airflow.utils import timezone`
        target = self._targets.get(name)
        if target is None:
            raise unsupported.name_in(self.__name__, name, list(self._targets))
        try:
            value = _resolve(target)
        except AttributeError:  # named here, not (yet) in asyncflow
            raise unsupported.name_in(self.__name__, name, []) from None
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        return sorted({*super().__dir__(), *self._targets})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "airflow" and not fullname.startswith("airflow."):
            return None
        if fullname not in MODULES and fullname not in _PACKAGES:
            for finder in sys.meta_path:  # another import hook serving this module (a test's)
                if finder is not self and hasattr(finder, "find_spec"):
                    spec = finder.find_spec(fullname, path, target)
                    if spec is not None:
                        return spec
            raise unsupported.module(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=fullname in _PACKAGES)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        name = spec.name
        return _AirflowModule(name, MODULES.get(name, {}), name in _PACKAGES)

    def exec_module(self, module: ModuleType) -> None:
        return None


_FINDER = _Finder()
_lock = threading.Lock()
_users = 0
_real_airflow = False


def airflow_installed() -> bool:
    """Whether the real `airflow` package can be imported (then the hook stays off)."""
    return importlib.machinery.PathFinder.find_spec("airflow") is not None


@contextmanager
def activate() -> Iterator[bool]:
    """Serve Airflow's import paths inside the block; yields whether the hook is on (it is off
    when the real Airflow is installed). Nested and concurrent blocks share one hook."""
    global _users, _real_airflow
    with _lock:
        if _users == 0:
            _real_airflow = airflow_installed()
            if not _real_airflow:
                sys.meta_path.insert(0, _FINDER)
        _users += 1
        active = not _real_airflow
    try:
        yield active
    finally:
        with _lock:
            _users -= 1
            if _users == 0 and not _real_airflow:
                sys.meta_path.remove(_FINDER)
                for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
                    if isinstance(sys.modules[name], _AirflowModule):
                        del sys.modules[name]
