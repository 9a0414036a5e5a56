"""`DAG`: a named graph of tasks with a schedule. What the user writes; immutable once loaded."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from asyncflow.exceptions import (
    CycleError,
    DagDefinitionError,
    DuplicateTaskIdError,
    InvalidScheduleError,
)
from asyncflow.models import checks
from asyncflow.models.docs import check_owner_links, read_doc_md
from asyncflow.models.param import Param, as_params, check_defaults
from asyncflow.timetables import Timetable, create_timetable

if TYPE_CHECKING:
    from asyncflow.models.baseoperator import BaseOperator
    from asyncflow.models.taskgroup import TaskGroup
    from asyncflow.records import DagRun

DagCallback = Callable[[dict[str, Any]], Any]


@dataclass
class DagDefaults:
    """Process-wide defaults for what a DAG leaves out; the daemon sets them from its config."""

    schedule: object = timedelta(days=1)
    catchup: bool = True
    timezone: str = "UTC"
    allow_seconds_in_cron: bool = False


DAG_DEFAULTS = DagDefaults()

_UNSET: Any = object()


class _Context(threading.local):
    def __init__(self) -> None:
        self.stack: list[DAG] = []
        self.collected: list[DAG] | None = None


_context = _Context()


def current_dag() -> DAG | None:
    """The DAG of the innermost `with DAG(...)` block, if any."""
    return _context.stack[-1] if _context.stack else None


@contextmanager
def collect_dags() -> Iterator[list[DAG]]:
    """Collect every DAG created in this thread while the block runs (used by the DagBag)."""
    previous, _context.collected = _context.collected, []
    try:
        yield _context.collected
    finally:
        _context.collected = previous


def _caller_file() -> str | None:
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if "/asyncflow/models/" not in name and "/asyncflow/operators/" not in name:
            return name
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _zone(value: object, where: checks.Where) -> tzinfo:
    if isinstance(value, tzinfo):
        return checks.zone(where, value)
    if not isinstance(value, str):
        raise where.error(
            f"timezone={checks.show(value)} is not a time zone: give an IANA name such as "
            "'Europe/Berlin' or a tzinfo"
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise where.error(
            f"timezone {checks.show(value)} is not a known IANA zone name "
            "(e.g. 'UTC', 'Europe/Berlin')"
        ) from None


def _aware(value: datetime | None, zone: tzinfo) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


class DAG:
    """A DAG: tasks, their dependencies, and when it runs. Use as a context manager or plainly."""

    def __init__(
        self,
        dag_id: str,
        description: str | None = None,
        schedule: object = _UNSET,
        *,
        schedule_interval: object = _UNSET,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        catchup: bool | None = None,
        default_args: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        max_active_tasks: int | None = None,
        max_active_runs: int = 16,
        dagrun_timeout: timedelta | None = None,
        on_success_callback: DagCallback | list[DagCallback] | None = None,
        on_failure_callback: DagCallback | list[DagCallback] | None = None,
        tags: list[str] | None = None,
        is_paused_upon_creation: bool | None = None,
        timezone: str | tzinfo | None = None,
        doc_md: str | None = None,
        template_searchpath: str | list[str] | None = None,
        user_defined_macros: Mapping[str, Any] | None = None,
        user_defined_filters: Mapping[str, Callable[..., Any]] | None = None,
        render_template_as_native_obj: bool = False,
        allow_seconds_in_cron: bool | None = None,
        max_xcom_bytes: int | None = None,
        fileloc: str | None = None,
        dag_display_name: str | None = None,
        owner_links: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(dag_id, str) or not checks.KEY.fullmatch(dag_id):
            raise DagDefinitionError(
                f"dag_id={checks.show(dag_id)} is not a valid dag_id: use 1 to 250 letters, "
                "digits, dashes, dots and underscores",
                fileloc=fileloc or _caller_file(),
            )
        self.dag_id = dag_id
        self.fileloc = fileloc or _caller_file()
        where = checks.Where(dag_id, self.fileloc)
        self.description = checks.optional_string(where, "description", description)
        self.default_args: dict[str, Any] = checks.mapping(where, "default_args", default_args)
        if "schedule_interval" in self.default_args or "schedule" in self.default_args:
            raise InvalidScheduleError(
                "schedule_interval/schedule is set inside default_args, where it has no effect: "
                "pass it to DAG(schedule=...) instead",
                dag_id=dag_id,
                fileloc=self.fileloc,
            )
        if schedule is not _UNSET and schedule_interval is not _UNSET:
            raise InvalidScheduleError(
                "both schedule and schedule_interval are given: keep only schedule=",
                dag_id=dag_id,
                fileloc=self.fileloc,
            )
        if schedule is _UNSET:
            schedule = schedule_interval
        if schedule is _UNSET:
            schedule = DAG_DEFAULTS.schedule
        self.schedule = schedule

        start = checks.moment(
            where, "start_date", start_date or self.default_args.get("start_date")
        )
        end = checks.moment(where, "end_date", end_date or self.default_args.get("end_date"))
        zone_source = timezone or (start.tzinfo if start else None)
        self.timezone = _zone(zone_source or DAG_DEFAULTS.timezone, where)
        self.start_date = _aware(start, self.timezone)
        self.end_date = _aware(end, self.timezone)
        self.catchup = DAG_DEFAULTS.catchup if catchup is None else bool(catchup)
        allow_seconds = (
            DAG_DEFAULTS.allow_seconds_in_cron
            if allow_seconds_in_cron is None
            else allow_seconds_in_cron
        )
        self.timetable: Timetable = create_timetable(
            schedule,
            timezone=self.timezone,
            dag_id=dag_id,
            fileloc=self.fileloc,
            allow_seconds=bool(allow_seconds),
        )
        self.params: dict[str, Param] = as_params(checks.mapping(where, "params", params))
        check_defaults(self.params, where, required=self.timetable.can_be_scheduled)
        #: task instances of this DAG at once; None: only the engine's bounds apply
        self.max_active_tasks = (
            None
            if max_active_tasks is None
            else checks.count(where, "max_active_tasks", max_active_tasks, minimum=1)
        )
        self.max_active_runs = checks.count(where, "max_active_runs", max_active_runs, minimum=1)
        #: the largest XCom (JSON) a task of this DAG may push; None: the engine's setting
        self.max_xcom_bytes = checks.optional_count(where, "max_xcom_bytes", max_xcom_bytes)
        self.dagrun_timeout = checks.optional_duration(
            where, "dagrun_timeout", dagrun_timeout, positive=True
        )
        self.on_success_callback = _one_callback(where, "on_success_callback", on_success_callback)
        self.on_failure_callback = _one_callback(where, "on_failure_callback", on_failure_callback)
        self.tags = checks.strings(where, "tags", tags)
        self.is_paused_upon_creation = is_paused_upon_creation
        self.doc_md = read_doc_md(checks.optional_string(where, "doc_md", doc_md), self.fileloc)
        self.dag_display_name = (
            checks.optional_string(where, "dag_display_name", dag_display_name) or dag_id
        )
        self.owner_links = check_owner_links(
            checks.mapping(where, "owner_links", owner_links), dag_id=dag_id, fileloc=self.fileloc
        )
        self.template_searchpath = checks.strings(where, "template_searchpath", template_searchpath)
        self.user_defined_macros = checks.mapping(where, "user_defined_macros", user_defined_macros)
        self.user_defined_filters = checks.mapping(
            where, "user_defined_filters", user_defined_filters
        )
        if not isinstance(render_template_as_native_obj, bool):
            raise where.error(
                f"render_template_as_native_obj={checks.show(render_template_as_native_obj)} "
                "is not True or False"
            )
        #: templates render to Python objects (jinja2's NativeEnvironment), except shell fields
        self.render_template_as_native_obj = render_template_as_native_obj
        self.task_dict: dict[str, BaseOperator] = {}
        self._frozen = False
        self._topo: list[BaseOperator] | None = None
        if _context.collected is not None:
            _context.collected.append(self)

    # -- context manager --------------------------------------------------------------
    def __enter__(self) -> DAG:
        _context.stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context.stack.pop()

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # -- tasks ------------------------------------------------------------------------
    def add_task(self, task: BaseOperator) -> None:
        if self._frozen:
            raise DagDefinitionError(
                f"cannot add task {task.task_id!r}: the DAG is loaded and immutable",
                dag_id=self.dag_id,
                fileloc=self.fileloc,
            )
        if task.task_id in self.task_dict and self.task_dict[task.task_id] is not task:
            raise DuplicateTaskIdError(
                f"task_id {task.task_id!r} is used twice: give each task a unique task_id",
                dag_id=self.dag_id,
                fileloc=self.fileloc,
                task_id=task.task_id,
            )
        self.task_dict[task.task_id] = task

    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def get_task(self, task_id: str) -> BaseOperator:
        from asyncflow.exceptions import TaskNotFound

        try:
            return self.task_dict[task_id]
        except KeyError:
            raise TaskNotFound(self.dag_id, task_id) from None

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    @property
    def task_group(self) -> TaskGroup:
        """The DAG's root task group (its top-level groups are its children)."""
        from asyncflow.models.taskgroup import root_group

        return root_group(self)

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    # -- validation ---------------------------------------------------------------------
    def topological_sort(self) -> list[BaseOperator]:
        """Tasks ordered so that each comes after its upstream; raises CycleError on a cycle."""
        if self._topo is not None:
            return self._topo
        order: list[BaseOperator] = []
        mark: dict[str, int] = {}  # 1 = on the current path, 2 = done
        for root in self.task_dict:
            if root in mark:
                continue
            path: list[str] = [root]
            stack: list[Iterator[str]] = [iter(sorted(self.task_dict[root].downstream_task_ids))]
            mark[root] = 1
            while stack:
                child = next(stack[-1], None)
                if child is None:
                    stack.pop()
                    done = path.pop()
                    mark[done] = 2
                    order.append(self.task_dict[done])
                    continue
                state = mark.get(child)
                if state == 1:
                    cycle = [*path[path.index(child) :], child]
                    raise CycleError(
                        f"the dependencies form a cycle: {' -> '.join(cycle)}; "
                        "remove one of these edges",
                        dag_id=self.dag_id,
                        fileloc=self.fileloc,
                    )
                if state is None:
                    mark[child] = 1
                    path.append(child)
                    stack.append(iter(sorted(self.task_dict[child].downstream_task_ids)))
        order.reverse()
        return order

    def validate(self) -> None:
        """Check the whole DAG (cycles, dangling edges) and freeze it."""
        for task in self.task_dict.values():
            for other in task.upstream_task_ids | task.downstream_task_ids:
                if other not in self.task_dict:
                    raise DagDefinitionError(
                        f"task {task.task_id!r} depends on {other!r}, which is not in this DAG",
                        dag_id=self.dag_id,
                        fileloc=self.fileloc,
                    )
        self._topo = None
        self._topo = self.topological_sort()
        self._frozen = True

    @property
    def frozen(self) -> bool:
        return self._frozen

    # -- running ------------------------------------------------------------------------
    def test(
        self,
        *,
        conf: Mapping[str, Any] | None = None,
        logical_date: datetime | None = None,
        run_id: str | None = None,
        use_uvloop: bool = True,
    ) -> DagRun:
        """Run this DAG once, in-process, on an in-memory engine; returns the finished run.

        The engine runs it (`asyncflow.engine.dagtest.run_once_sync`), and models sit below the
        engine: they must not import it, or every import of a DAG would load the engine and
        the two layers would import each other. So the engine's module is looked up by name
        when `test()` is called, never when this module is imported: a name lookup at call time
        adds no edge to the import graph and needs no registration that could be forgotten
        (the CLI imports its commands the same way)."""
        from importlib import import_module

        dagtest = import_module("asyncflow.engine.dagtest")
        result = dagtest.run_once_sync(
            self, conf=conf, logical_date=logical_date, run_id=run_id, use_uvloop=use_uvloop
        )
        run: DagRun = result.run
        return run


def _one_callback(where: checks.Where, name: str, value: object) -> DagCallback | None:
    """A DAG callback: one callable, or a list of them (called in turn, as Airflow does)."""
    found = checks.callbacks(where, name, value)
    if not found:
        return None
    if len(found) == 1:
        return found[0]

    async def call_all(context: dict[str, Any]) -> None:
        import functools
        import inspect

        from asyncflow.threads import run_sync

        for callback in found:  # an error stops the rest, as a single callback's would
            if inspect.iscoroutinefunction(callback):
                await callback(context)
            else:
                await run_sync(functools.partial(callback, context))

    call_all.__qualname__ = f"{name}[{', '.join(getattr(c, '__qualname__', '?') for c in found)}]"
    return call_all


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
