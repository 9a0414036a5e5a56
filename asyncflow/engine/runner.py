"""Run one attempt of one task instance and say how it ended. Never touches state: the
scheduler turns the `Attempt` into transitions."""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
import os
import threading
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

import anyio

from asyncflow.engine.context import RuntimeTaskInstance
from asyncflow.engine.deferred import DeferRequest, request_of
from asyncflow.engine.monitor import holding
from asyncflow.engine.tasklog import current_log
from asyncflow.engine.templating import render_task
from asyncflow.exceptions import (
    AsyncflowFailException,
    AsyncflowRescheduleException,
    AsyncflowSkipException,
    AsyncflowTaskTimeout,
    TaskDeferred,
)
from asyncflow.logs import get_logger
from asyncflow.models import xcom_codec
from asyncflow.models.baseoperator import BaseOperator, Context
from asyncflow.models.current import current_context
from asyncflow.models.mapped import MappingError
from asyncflow.models.xcom_arg import RETURN_KEY
from asyncflow.threads import run_sync

log = get_logger("asyncflow.runner")


class Ending(Enum):
    SUCCESS = "success"
    SKIPPED = "skipped"
    FAILED = "failed"  # may be retried
    FAILED_FINAL = "failed_final"  # AsyncflowFailException: no retry
    RESCHEDULE = "reschedule"  # a sensor in reschedule mode: poke again at `reschedule_at`
    INTERRUPTED = "interrupted"  # the engine stopped it (shutdown): no try is used
    DEFERRED = "deferred"  # self.defer(): wait on a trigger, no slot held; same try resumes


@dataclass(slots=True)
class Attempt:
    ending: Ending
    error: str | None = None
    xcoms: dict[str, str] = field(default_factory=dict)
    skipped: set[str] = field(default_factory=set)
    reschedule_at: datetime | None = None
    first_poke: datetime | None = None
    deferred: DeferRequest | None = None
    #: `context["outlet_events"]` of a task with outlets: the extras of its asset events
    outlet_events: Any = None
    #: FAILED: the wait before the retry, when the task's retry_policy chose one
    retry_delay: timedelta | None = None


#: (next_method, next_kwargs): the attempt resumes a deferred try instead of running execute
Resume = tuple[str, dict[str, Any]]


async def _execute(task: BaseOperator, context: Context, resume: Resume | None) -> Any:
    if resume is not None:
        method, kwargs = resume
        fn = getattr(task, method, None)
        if method != "__fail__" and inspect.iscoroutinefunction(fn):
            return await fn(context, **kwargs)
        if method == "__fail__" or fn is None:  # raises at once: nothing to run
            return task.resume_execution(method, kwargs, context)
        return await run_sync(functools.partial(task.resume_execution, method, kwargs, context))
    if task._is_async:
        return await task.execute(context)
    return await run_sync(functools.partial(task.execute, context))


def _on_kill(task: BaseOperator) -> None:
    try:
        task.on_kill()
    except Exception as exc:  # the task's own cleanup: logged, the stop goes on
        log.error("on_kill raised", task_id=task.task_id, error=_describe(exc))


#: frames of these packages are the machinery around a task, not what its author wrote
_MACHINERY = (
    *(os.path.dirname(package.__file__ or "") + os.sep for package in (anyio, asyncio)),
    os.path.dirname(os.path.dirname(__file__)) + os.sep,  # asyncflow
    os.path.dirname(concurrent.futures.__file__ or "") + os.sep,
    threading.__file__ or "",
)


def _is_user_frame(frame: traceback.FrameSummary) -> bool:
    return not frame.filename.startswith(_MACHINERY)


def user_traceback(exc: BaseException) -> str:
    """The traceback of an exception raised by task code, without asyncflow's (and the event
    loop's, the worker thread's) frames: the frames the task's author can act on, then the
    exception itself; chained exceptions alike. Only the exception line is left when every
    frame is ours (an operator of asyncflow's that reports a failure)."""
    shown = traceback.TracebackException.from_exception(exc)
    seen: set[int] = set()
    todo = [shown]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        frames = [f for f in current.stack if _is_user_frame(f)]
        current.stack = traceback.StackSummary.from_list(frames)
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        todo.extend(current.exceptions or ())
    return "".join(shown.format()).rstrip("\n")


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def run_attempt(task: BaseOperator, context: Context, ti: RuntimeTaskInstance,
                      resume: Resume | None = None) -> Attempt:  # fmt: skip
    """Render, execute (bounded by execution_timeout) — or, with `resume`, run the method a
    deferral named — and collect XComs and skips. The attempt's asyncio task is registered with
    the loop monitor while it runs, so that a stall it causes names it."""
    with holding(ti):
        return await _run(task, context, ti, resume)


async def _run(task: BaseOperator, context: Context, ti: RuntimeTaskInstance,
               resume: Resume | None) -> Attempt:  # fmt: skip
    timeout: timedelta | None = task.execution_timeout
    current_context.set(context)  # get_current_context(), in this attempt's asyncio task
    try:
        if task.is_mapped:
            task = task.unmap(context)
        task = render_task(task, context)
        context["task"] = task
        await _before_execute(task, context, ti)
        if timeout is None:
            result = await _execute(task, context, resume)
        else:
            limit = timeout.total_seconds()
            started = anyio.current_time()
            with anyio.move_on_after(limit) as scope:
                result = await _execute(task, context, resume)
            if scope.cancelled_caught:
                message = f"execution_timeout of {timeout} exceeded"
                return _failed(task, AsyncflowTaskTimeout(message), message, context, ti)
            took = anyio.current_time() - started
            if took > limit:  # it never yielded to be cancelled: a late result is no success
                message = _late(timeout, took, task)
                return _failed(task, AsyncflowTaskTimeout(message), message, context, ti)
        if inspect.isgenerator(result):  # a task yielding Metadata(asset, extra)
            result = _take_metadata(result, context)
        await _after_execute(task, context, result)
        if result is not None and task.do_xcom_push:
            ti.xcom_push(RETURN_KEY, result)
        if task.map_source_keys:
            check_mappable(task, ti)
    except TaskDeferred as exc:
        try:
            request = request_of(exc, task.task_id)
        except Exception as bad:  # a trigger that cannot be stored: this attempt fails
            return Attempt(Ending.FAILED, f"the task cannot defer: {_describe(bad)}")
        return Attempt(Ending.DEFERRED, None, ti.pushed, deferred=request)
    except AsyncflowRescheduleException as exc:
        return Attempt(
            Ending.RESCHEDULE, reschedule_at=exc.reschedule_date, first_poke=exc.first_poke
        )
    except AsyncflowSkipException as exc:
        return Attempt(Ending.SKIPPED, str(exc) or None, ti.pushed)
    except AsyncflowFailException as exc:
        return Attempt(Ending.FAILED_FINAL, _describe(exc))
    except anyio.get_cancelled_exc_class():
        _on_kill(task)
        raise
    except Exception as exc:
        shown = user_traceback(exc)
        task_log = current_log.get()
        if task_log is not None:
            task_log.line(shown, level="ERROR")
        log.warning(
            "task attempt failed",
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            error=_describe(exc),
            exception=shown,
        )
        return _failed(task, exc, _describe(exc), context, ti)
    return Attempt(Ending.SUCCESS, None, ti.pushed, ti.skipped,
                   outlet_events=context.get("outlet_events"))  # fmt: skip


def _failed(task: BaseOperator, exc: BaseException, error: str, context: Context,
            ti: RuntimeTaskInstance) -> Attempt:  # fmt: skip
    """A failed attempt, as the task's retry_policy (if any) decides from the exception: fail
    now, retry after a delay of its own, or the ordinary retries; a policy that raises is
    logged and changes nothing (Airflow's)."""
    policy = task.retry_policy
    if policy is None:
        return Attempt(Ending.FAILED, error)
    try:
        decision = policy.evaluate(exc, ti.try_number, ti.max_tries, context)
        action = decision.action.value
    except Exception as bad:  # the DAG's own policy
        log.error("retry_policy raised; the task's retries apply", task_id=task.task_id,
                  error=_describe(bad), exception=user_traceback(bad))  # fmt: skip
        return Attempt(Ending.FAILED, error)
    task_log = current_log.get()
    if task_log is not None and decision.reason:
        task_log.line(f"retry policy: {action} ({decision.reason})")
    if action == "fail":
        reason = f" (retry_policy: {decision.reason})" if decision.reason else ""
        return Attempt(Ending.FAILED_FINAL, error + reason)
    if action == "retry":
        return Attempt(Ending.FAILED, error, retry_delay=decision.retry_delay)
    return Attempt(Ending.FAILED, error)


async def _before_execute(task: BaseOperator, context: Context, ti: RuntimeTaskInstance) -> None:
    """Airflow's order before execute: the `pre_execute=` callable, an overridden
    `pre_execute` method (either raising fails the attempt), then `on_execute_callback`
    (whose errors are logged)."""
    if task.pre_execute_hook is not None:
        await _call_hook(task.pre_execute_hook, context)
    if type(task).pre_execute is not BaseOperator.pre_execute:
        await _call_hook(task.pre_execute, context)
    if task.on_execute_callback:
        where = f"{ti.dag_id}/{ti.run_id}/{ti.task_id}"
        await run_callbacks(task.on_execute_callback, context, what="on_execute_callback",
                            where=where)  # fmt: skip


async def _after_execute(task: BaseOperator, context: Context, result: Any) -> None:
    """After execute: the `post_execute=` callable, then an overridden `post_execute`, each
    given the context and execute's result; either raising fails the attempt."""
    if task.post_execute_hook is not None:
        await _call_hook(task.post_execute_hook, context, result)
    if type(task).post_execute is not BaseOperator.post_execute:
        await _call_hook(task.post_execute, context, result)


async def _call_hook(hook: Any, context: Context, *args: Any) -> None:
    """A hook of the task's author: awaited when it is async, else run in a worker thread; a
    generator hook's `yield Metadata(asset, extra)` sets an outlet's extra (as in Airflow)."""
    if is_async_callable(hook):
        await hook(context, *args)
        return

    def call() -> None:
        value = hook(context, *args)
        if inspect.isgenerator(value):
            _take_metadata(value, context)

    await run_sync(call)


def _take_metadata(results: Any, context: Context) -> Any:
    """Airflow's `yield Metadata(asset, extra)`: each sets the extra of an outlet's event;
    anything else yielded is the task's return value (a list)."""
    from asyncflow.models.asset import Metadata

    others = []
    outlet_events = context.get("outlet_events")
    for item in results:
        if isinstance(item, Metadata):
            if outlet_events is None:
                raise TypeError(f"the task yielded {item!r} but has no outlets=[...]")
            outlet_events.take(item)
        else:
            others.append(item)
    return others or None


def check_mappable(task: BaseOperator, ti: RuntimeTaskInstance) -> None:
    """A task whose XCom a mapped task maps over must push a list or dict no longer than
    max_map_length (Airflow fails the pushing task, as here)."""
    for key in task.map_source_keys:
        raw = ti.pushed.get(key)
        if raw is None:
            raise MappingError(
                f"task {task.task_id!r} pushed no XCom {key!r}, which a mapped task downstream "
                "maps over: return a list or dict"
            )
        value = xcom_codec.loads(raw)
        if not isinstance(value, list | tuple | dict):
            raise MappingError(
                f"task {task.task_id!r} pushed {type(value).__name__} {value!r:.80} as XCom "
                f"{key!r}, which a mapped task downstream maps over: return a list or dict"
            )
        if len(value) > ti.engine_max_map_length:
            raise MappingError(
                f"task {task.task_id!r} pushed {len(value)} items as XCom {key!r}, which a "
                f"mapped task downstream maps over: more than max_map_length="
                f"{ti.engine_max_map_length} allows"
            )


def _late(timeout: timedelta, took: float, task: BaseOperator) -> str:
    text = f"execution_timeout of {timeout} exceeded: the task returned after {took:.1f} s"
    if task._is_async:
        text += (
            " without giving the event loop a chance to stop it (blocking code in an "
            "`async def`: make it a `def` task or await); its result is discarded"
        )
    return text


async def run_callbacks(callbacks: list[Any], context: Context, *, what: str, where: str) -> None:
    """Call each callback; an error is logged and changes nothing."""
    for callback in callbacks:
        try:
            if is_async_callable(callback):
                await callback(context)
            else:
                await run_sync(functools.partial(callback, context))
        except anyio.get_cancelled_exc_class():
            raise
        except Exception as exc:
            log.error(
                f"{what} raised; the state stays as it is",
                where=where,
                callback=getattr(callback, "__qualname__", repr(callback)),
                error=_describe(exc),
                exception=user_traceback(exc),
            )


def is_async_callable(fn: Any) -> bool:
    """An `async def` function, or an object whose `__call__` is one."""
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - async callable objects
    )
