"""Stopping the scheduler with every wait bounded: stop starting work, let running attempts
finish for the drain, then interrupt the rest (they cost no try and run again at the next
start), and commit. A full disk or an attempt that ignores its cancellation cannot hold the
process past `drain_timeout + grace`: what could not be committed, the store's recovery takes
back at the next start."""

from __future__ import annotations

import anyio

from asyncflow.engine.scheduler import Scheduler
from asyncflow.logs import get_logger

log = get_logger("asyncflow.engine")


async def drain(scheduler: Scheduler, *, drain_timeout: float, grace: float) -> bool:
    """True when the final state was committed within the deadline."""
    now = anyio.current_time()
    drain_end, end = now + drain_timeout, now + drain_timeout + grace
    mirror = scheduler.mirror
    with anyio.move_on_at(drain_end):  # an unanswered command is still carried out
        await scheduler.call(lambda now: mirror.drain()).get()
        await scheduler.wait_idle()
    committed = False
    with anyio.move_on_at(end):
        await scheduler.call(
            lambda now: mirror.cancel_all("shutdown: the engine stopped this attempt")
        ).get()
        await scheduler.wait_idle()
        await scheduler.call(lambda now: None).get()
        committed = True
    for worker in list(scheduler.workers):  # stragglers that ignored their cancellation
        worker.cancel()
    if not committed:
        log.error(
            "the engine stopped before its last changes were committed; the next start "
            "recovers them from the store",
            running=mirror.running,
            grace=grace,
        )
    return committed
