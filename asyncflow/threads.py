"""Sync user code runs in worker threads, bounded by the engine's thread limiter."""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")

thread_limiter: ContextVar[CapacityLimiter | None] = ContextVar("thread_limiter", default=None)


async def run_sync(func: Callable[[], T]) -> T:
    """Run `func` in a worker thread. On cancellation (a timeout) the thread is abandoned:
    Python cannot stop a thread, so its result is discarded when it finishes."""
    return await anyio.to_thread.run_sync(
        func, abandon_on_cancel=True, limiter=thread_limiter.get()
    )
