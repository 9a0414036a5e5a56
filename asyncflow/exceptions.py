"""Every error asyncflow raises, rooted at `AsyncflowError`.

Each error also subclasses the stdlib type it is, so `except LookupError` still works, and
builds its message from the ids involved (DAG, file, task, value) plus what to do about it.

    AsyncflowError
    ├── DagDefinitionError (ValueError)        a DAG as written cannot be loaded
    │   ├── CycleError                         a -> b -> a
    │   ├── DuplicateTaskIdError               two tasks with one task_id in a DAG
    │   ├── InvalidScheduleError               bad cron / preset / 'None' / never fires
    │   ├── InvalidTriggerRuleError            unknown trigger_rule
    │   ├── CrossDagDependencyError            a >> b across two DAGs
    │   └── UnknownPoolError                   task names a pool that is not declared
    ├── NotFoundError (LookupError)
    │   ├── DagNotFound
    │   ├── DagRunNotFound
    │   ├── TaskNotFound
    │   └── PoolNotFound
    ├── DagAlreadyExists (ValueError)          add_dag with a dag_id already scheduled
    ├── DagRunAlreadyExists (ValueError)       run_id or logical_date taken
    ├── DagHasActiveRuns (RuntimeError)        a DAG with queued or running runs is not deleted
    ├── RunWaitTimeout (TimeoutError)          wait_for_run gave up; names the run's state
    ├── InvalidRunIdError (ValueError)         a run_id with characters or a length not allowed
    ├── ParamValidationError (ValueError)      a required param has no value
    ├── InvalidStateTransition (RuntimeError)  a transition missing from the state table
    ├── ConfigError (ValueError)               a setting in file, environment or flag is bad
    ├── DagFileError (ImportError)             a DAG file failed to import
    ├── NotSupportedError                      an Airflow feature asyncflow does not have
    │   ├── UnsupportedImportError (ImportError)      ... imported from an Airflow module
    │   └── UnsupportedAttributeError (AttributeError) ... reached as an attribute (@task.docker)
    ├── EngineLockedError (RuntimeError)       another daemon holds the database
    ├── StoreError (OSError)                   the database could not be written (disk full...)
    ├── XComTooLarge (ValueError)              a return value / XCom above max_xcom_bytes
    └── TaskControl                            raised by task code to steer its own outcome
        ├── AsyncflowSkipException             end the task as `skipped`
        ├── AsyncflowFailException             end the task as `failed`, no retries
        │   └── AsyncflowSensorTimeout (TimeoutError)  a sensor waited past its timeout
        ├── AsyncflowRescheduleException       a reschedule-mode sensor: poke again later
        ├── TaskDeferred                       self.defer(): wait on a trigger, no slot held
        └── AsyncflowTaskTimeout (TimeoutError) execution_timeout passed
    TaskDeferralError                          the trigger a task waited on failed
    └── TaskDeferralTimeout (TimeoutError)     the deferral's timeout passed (retried)

`AirflowException`, `AirflowSkipException`, `AirflowFailException` and `AirflowTaskTimeout` are
aliases so that ported DAG files keep working after an import change.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any


class AsyncflowError(Exception):
    """The root of every error asyncflow raises."""


def _where(dag_id: str | None, fileloc: str | None, task_id: str | None) -> str:
    parts = []
    if dag_id is not None:
        parts.append(f"DAG {dag_id!r}")
    if task_id is not None:
        parts.append(f"task {task_id!r}")
    where = ", ".join(parts)
    if fileloc:
        where = f"{where} ({fileloc})" if where else fileloc
    return where


class DagDefinitionError(AsyncflowError, ValueError):
    """A DAG as written cannot be loaded; the message names where and what to do."""

    def __init__(
        self,
        message: str,
        *,
        dag_id: str | None = None,
        fileloc: str | None = None,
        task_id: str | None = None,
    ) -> None:
        self.dag_id = dag_id
        self.fileloc = fileloc
        self.task_id = task_id
        self.detail = message
        where = _where(dag_id, fileloc, task_id)
        super().__init__(f"{where}: {message}" if where else message)


class CycleError(DagDefinitionError):
    """The dependencies form a cycle."""


class DuplicateTaskIdError(DagDefinitionError):
    """Two tasks in one DAG share a task_id."""


class InvalidScheduleError(DagDefinitionError):
    """A schedule that is not a valid cron, preset, timedelta, None or Timetable."""


class InvalidTriggerRuleError(DagDefinitionError):
    """A trigger_rule that is not one of TriggerRule's values."""


class CrossDagDependencyError(DagDefinitionError):
    """A dependency between tasks of two different DAGs."""


class UnknownPoolError(DagDefinitionError):
    """A task names a pool that is not declared."""


class NotFoundError(AsyncflowError, LookupError):
    """Something named by id does not exist."""


class DagNotFound(NotFoundError):
    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        super().__init__(f"DAG {dag_id!r} is not loaded: check the dag_id and the DAG folder")


class DagRunNotFound(NotFoundError):
    def __init__(self, dag_id: str, run_id: str) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        super().__init__(f"DAG {dag_id!r} has no run {run_id!r}")


class TaskNotFound(NotFoundError):
    def __init__(self, dag_id: str, task_id: str) -> None:
        self.dag_id = dag_id
        self.task_id = task_id
        super().__init__(f"DAG {dag_id!r} has no task {task_id!r}")


class PoolNotFound(NotFoundError):
    def __init__(self, pool: str) -> None:
        self.pool = pool
        super().__init__(
            f"pool {pool!r} does not exist: declare it in the config or Engine(pools=)"
        )


class DagAlreadyExists(AsyncflowError, ValueError):
    def __init__(self, dag_id: str) -> None:
        self.dag_id = dag_id
        super().__init__(
            f"DAG {dag_id!r} is already scheduled: use replace_dag() to swap it for a new "
            "version, or give the new DAG another dag_id"
        )


class RunWaitTimeout(AsyncflowError, TimeoutError):
    def __init__(self, dag_id: str, run_id: str, state: str, timeout: float) -> None:
        self.dag_id, self.run_id, self.state = dag_id, run_id, state
        super().__init__(
            f"run {run_id!r} of DAG {dag_id!r} had not finished after {timeout:g} s (it is "
            f"{state}); it goes on running: wait again, or cancel it with cancel_run()"
        )


class DagRunAlreadyExists(AsyncflowError, ValueError):
    def __init__(self, dag_id: str, what: str) -> None:
        self.dag_id = dag_id
        super().__init__(
            f"DAG {dag_id!r} already has a run with {what}: pick another run_id or logical_date"
        )


class DagHasActiveRuns(AsyncflowError, RuntimeError):
    def __init__(self, dag_id: str, run_ids: list[str]) -> None:
        self.dag_id = dag_id
        self.run_ids = run_ids
        shown = ", ".join(repr(r) for r in run_ids[:5]) + (" ..." if len(run_ids) > 5 else "")
        super().__init__(
            f"DAG {dag_id!r} has {len(run_ids)} queued or running run(s) ({shown}): wait for "
            "them to finish or mark them failed, then delete it"
        )


class InvalidRunIdError(AsyncflowError, ValueError):
    """A run_id given at trigger time that is not allowed (characters, length)."""

    def __init__(self, dag_id: str, run_id: str, why: str) -> None:
        self.dag_id = dag_id
        self.run_id = run_id
        shown = run_id if len(run_id) <= 80 else f"{run_id[:77]}..."
        super().__init__(f"DAG {dag_id!r}: run_id {shown!r} is not allowed: {why}")


class ParamValidationError(AsyncflowError, ValueError):
    """A DAG param is missing or has the wrong type for a run."""


class InvalidStateTransition(AsyncflowError, RuntimeError):
    def __init__(self, kind: str, key: str, old: str, new: str) -> None:
        # str(): a StrEnum's repr is `<TaskState.NONE: 'none'>`; the message shows the value
        super().__init__(f"{kind} {key}: transition {str(old)!r} -> {str(new)!r} is not allowed")


class ConfigError(AsyncflowError, ValueError):
    """A configuration setting is invalid; the message names the setting and its source."""


class DagFileError(AsyncflowError, ImportError):
    """A DAG file failed to import; carries the file and the formatted traceback."""

    def __init__(self, fileloc: str, message: str, stacktrace: str = "") -> None:
        self.fileloc = fileloc
        self.stacktrace = stacktrace
        super().__init__(f"{fileloc}: {message}")


class NotSupportedError(AsyncflowError):
    """An Airflow feature asyncflow does not have; the message names it and what to use."""

    def __init__(self, feature: str, advice: str) -> None:
        self.feature = feature
        self.advice = advice
        super().__init__(f"{feature} is not supported by asyncflow: {advice}")


class UnsupportedImportError(NotSupportedError, ImportError):
    """An Airflow module or name imported by a DAG file that asyncflow does not provide."""


class UnsupportedAttributeError(NotSupportedError, AttributeError):
    """An Airflow attribute (`@task.docker`, `.expand`) that asyncflow does not provide."""


class EngineLockedError(AsyncflowError, RuntimeError):
    """Another engine process holds the database."""


class StoreError(AsyncflowError, OSError):
    """The store could not commit; nothing was acted on."""


class XComTooLarge(AsyncflowError, ValueError):
    """A task's XCom (its return value, a bash task's last line) is above `max_xcom_bytes`."""

    def __init__(self, task_id: str, key: str, size: int, limit: int) -> None:
        self.task_id, self.key, self.size, self.limit = task_id, key, size, limit
        super().__init__(
            f"task {task_id!r}: XCom {key!r} is {size:,} bytes, above max_xcom_bytes "
            f"({limit:,} bytes): write large results to a file or a database and return "
            "where they are, or raise the limit (DAG(max_xcom_bytes=...), "
            "Engine(max_xcom_bytes=...), the max_xcom_bytes setting)"
        )


class TaskControl(AsyncflowError):
    """Raised by task code to steer its own outcome."""


class AsyncflowSkipException(TaskControl):
    """Raise inside a task to end it as `skipped`."""


class AsyncflowFailException(TaskControl):
    """Raise inside a task to end it as `failed` without using its retries."""


class AsyncflowTaskTimeout(TaskControl, TimeoutError):
    """The task ran past its execution_timeout."""


class AsyncflowSensorTimeout(AsyncflowFailException, TimeoutError):
    """A sensor's condition did not hold within its timeout: failed, without retries."""


class AsyncflowRescheduleException(TaskControl):
    """A sensor in reschedule mode asks to be started again at `reschedule_date`."""

    def __init__(self, reschedule_date: datetime, *, first_poke: datetime | None = None) -> None:
        self.reschedule_date = reschedule_date
        self.first_poke = first_poke
        super().__init__(f"reschedule at {reschedule_date.isoformat()}")


class TaskDeferred(TaskControl):
    """Raised by `BaseOperator.defer()`: the task gives its slot back and waits on `trigger`;
    when the trigger fires, `method_name(context, event=..., **kwargs)` runs as the rest of the
    same try. `timeout` (a timedelta) bounds the wait."""

    def __init__(self, *, trigger: Any, method_name: str, kwargs: dict[str, Any] | None = None,
                 timeout: timedelta | None = None) -> None:  # fmt: skip
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = dict(kwargs or {})
        self.timeout = timeout
        super().__init__(f"deferred to {trigger!r}, resuming in {method_name}()")


class TaskDeferralError(AsyncflowError):
    """The trigger a deferred task waited on failed: the task fails (retries apply)."""


class TaskDeferralTimeout(TaskDeferralError, TimeoutError):
    """A deferred task's trigger did not fire within its timeout: the task fails (retries
    apply, as in Airflow)."""


AirflowException = AsyncflowError
AirflowSkipException = AsyncflowSkipException
AirflowFailException = AsyncflowFailException
AirflowTaskTimeout = AsyncflowTaskTimeout
AirflowSensorTimeout = AsyncflowSensorTimeout
AirflowRescheduleException = AsyncflowRescheduleException
