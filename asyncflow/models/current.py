"""`get_current_context()`: the running task's context, from anywhere in its code.

The engine sets it for each attempt (in the attempt's own asyncio task, so concurrent tasks each
see their own); a sync task's worker thread inherits it. Outside a running task it raises.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import AsyncflowError

if TYPE_CHECKING:
    from asyncflow.models.baseoperator import Context

__all__ = ["current_context", "get_current_context"]

current_context: ContextVar[dict[str, Any] | None] = ContextVar(
    "asyncflow_current_context", default=None
)


def get_current_context() -> Context:
    """The context of the task running this code (`ti`, `ds`, `params`, `dag_run`...)."""
    context = current_context.get()
    if context is None:
        raise AsyncflowError(
            "get_current_context() was called outside a running task: call it from the code "
            "of a task (its callable or execute), or take the context as an argument"
        )
    return context
