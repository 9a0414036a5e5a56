"""Changes another process (the CLI without an API to call) wrote to the store, picked up by
the running engine: runs it queued, requests it made (clear, mark), pause flags and pools it
set. Each is
applied through the same commands as the engine's own API."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import anyio

from asyncflow.engine import commands
from asyncflow.engine.recovery import restore_run
from asyncflow.exceptions import AsyncflowError
from asyncflow.logs import get_logger
from asyncflow.records import DagRun
from asyncflow.states import DagRunState
from asyncflow.store.base import XComRow

if TYPE_CHECKING:
    from asyncflow.engine.engine import Engine
    from asyncflow.records import TaskInstance

log = get_logger("asyncflow.engine")


async def poll(engine: Engine, interval: float) -> None:
    """Every `interval` seconds, pick up what another process wrote."""
    while True:
        await anyio.sleep(interval)
        try:
            await sync(engine)
        except Exception as exc:  # keep polling; the next round may succeed
            log.warning("could not read external changes", error=str(exc))


async def sync(engine: Engine) -> None:
    store = engine.store
    mirror = engine._require().mirror
    for record in await store.get_dag_runs(states=[DagRunState.QUEUED]):
        if record.dag_id in mirror.dags and (record.dag_id, record.run_id) not in mirror.runs:
            tis = await store.get_task_instances(record.dag_id, record.run_id)
            xcoms = await store.get_run_xcoms(record.dag_id, record.run_id)

            def adopt(now: datetime, record: DagRun = record, tis: list[TaskInstance] = tis,
                      xcoms: list[XComRow] = xcoms) -> None:  # fmt: skip
                if (record.dag_id, record.run_id) not in mirror.runs:
                    restore_run(mirror, record, tis, xcoms, now)

            await engine._in_loop(adopt)
    for request_id, kind, payload in await store.pending_requests():
        await store.finish_request(request_id, await carry_out(engine, kind, payload))
    pools = await store.get_pools()
    if pools != mirror.pools:  # `asyncflow pools set` while the daemon runs
        await engine._in_loop(lambda now: mirror.set_pools(pools))
    paused = await store.get_paused()
    changed = {d: p for d, p in paused.items() if d in mirror.dags
               and mirror.dags[d].paused != p}  # fmt: skip
    if changed:
        await engine._in_loop(lambda now: engine._apply_paused(changed, write=False))


async def carry_out(engine: Engine, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
    """One request another process queued (`asyncflow tasks clear` on an active run)."""
    try:
        if kind == commands.CLEAR:
            cleared = await engine.clear_task_instances(**payload)
            return {"ok": True, "task_ids": cleared}
        if kind == "mark":
            marked = await engine.set_task_instance_state(**payload)
            return {"ok": True, "task_ids": marked}
        return {"ok": False, "error": f"unknown request kind {kind!r}"}
    except (AsyncflowError, TypeError, ValueError) as exc:
        return {"ok": False, "error": str(exc)}
