"""Data-aware scheduling in the scheduler's own loop: asset events and the runs they trigger.

* A task with `outlets=` that succeeds records one event per outlet asset (and per asset added
  to an outlet alias) **in the burst of its success**: the event rows, and one queue row for
  every DAG scheduled on that asset (or alias), commit with the task's `success`.
* In the same step, each DAG whose queue changed has its condition (`schedule=[a, b]`,
  `a | b`, `AssetAll`, `AssetAny`, aliases) evaluated over the assets in its queue; when it
  holds, an `asset_triggered` run is created through `Mirror.add_run`, and the events it
  consumed are stored with it and leave the queue — in that run's insert transaction. A
  crash before it leaves the events queued (the next start evaluates them again); after it,
  the run exists and the queue is empty: no run is lost or made twice.
* `AssetWatcher` triggers (engine/watchers.py) record events the same way, through the loop.

Runs are named after their latest event: logical_date = the time of the latest consumed event
(moved a microsecond past the DAG's previous asset-triggered run if equal), and the data
interval spans the consumed events' source runs' intervals (an event without a source run:
its timestamp) — Airflow 2's rule; Airflow 3 gives these runs no logical date or interval,
which the store's UNIQUE(dag_id, logical_date) does not allow.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from asyncflow.engine.assetcontext import (
    NO_TRIGGERING_EVENTS,
    InletEventAccessors,
    OutletEventAccessors,
    TriggeringAssetEvents,
    event_of,
)
from asyncflow.engine.dagruns import new_run
from asyncflow.logs import get_logger
from asyncflow.models.asset import Asset, AssetAlias, BaseAsset
from asyncflow.records import AssetEvent, AssetKey, DagRunType
from asyncflow.store.base import (
    AssetConsumedRow,
    AssetEventRow,
    AssetQueueRow,
    AssetRow,
    Store,
    iso,
)
from asyncflow.timetables import DataInterval
from asyncflow.timetables.assets import AssetTriggeredTimetable

if TYPE_CHECKING:
    from asyncflow.engine.live import LiveRun, LiveTI
    from asyncflow.engine.mirror import Mirror
    from asyncflow.engine.scheduler import Scheduler
    from asyncflow.engine.watchers import Watchers
    from asyncflow.models.baseoperator import Context

log = get_logger("asyncflow.assets")
MICROSECOND = timedelta(microseconds=1)


@dataclass
class StoredAssets:
    """What the store holds for asset scheduling, read once at start."""

    last_event_id: int = 0
    queue: list[tuple[str, AssetEventRow]] = field(default_factory=list)
    aliases: list[tuple[str, str, str]] = field(default_factory=list)

    @classmethod
    async def load(cls, store: Store) -> StoredAssets:
        return cls(await store.last_asset_event_id(), await store.get_asset_queue(),
                   await store.get_asset_aliases())  # fmt: skip


def _row(event: AssetEvent) -> AssetEventRow:
    interval = event.source_interval
    return AssetEventRow(
        event.id, event.asset.name, event.asset.uri, json.dumps(event.extra),
        iso(event.timestamp) or "", event.source_dag_id, event.source_run_id,
        event.source_task_id, event.source_map_index, json.dumps(list(event.source_aliases)),
        iso(interval[0]) if interval else None, iso(interval[1]) if interval else None,
    )  # fmt: skip


def _assets_of(dag: Any) -> Iterable[Asset]:
    timetable = dag.timetable
    if isinstance(timetable, AssetTriggeredTimetable):
        yield from timetable.asset_condition.iter_assets()
    for task in dag.tasks:
        for item in (*task.outlets, *task.inlets):
            if isinstance(item, Asset):
                yield item


class AssetScheduling:
    """The asset half of the scheduler: a step hook (`__call__`) plus what the mirror and the
    dispatcher call (`task_succeeded`, `extend_context`). Owns the DAGs' event queues."""

    def __init__(self, mirror: Mirror, store: Store, stored: StoredAssets, *,
                 enabled: bool = True) -> None:  # fmt: skip
        self.mirror = mirror
        self.store = store
        self.enabled = enabled
        self.next_id = stored.last_event_id + 1
        #: dag_id -> its queued events by id (not yet consumed by an asset-triggered run)
        self.queues: dict[str, dict[int, AssetEvent]] = {}
        for dag_id, row in stored.queue:
            event = event_of(row)
            self.queues.setdefault(dag_id, {})[event.id] = event
        #: alias name -> the assets events were recorded for under it
        self.aliases: dict[str, set[AssetKey]] = {}
        for alias, name, uri in stored.aliases:
            self.aliases.setdefault(alias, set()).add(AssetKey(name, uri))
        self.due: set[str] = set(self.queues)
        self.conditions: dict[str, BaseAsset] = {}
        self.on_asset: dict[AssetKey, set[str]] = {}
        self.on_alias: dict[str, set[str]] = {}
        self.last_logical: dict[str, datetime] = {}
        self.watchers: Watchers | None = None
        self.events_recorded = 0
        self.runs_created = 0

    # -- the DAGs ---------------------------------------------------------------------------
    def refresh(self, now: datetime) -> None:
        """The loaded DAGs changed: which DAG is scheduled on which asset, the asset rows,
        the watchers. Called in the loop after DAGs are added, replaced or removed."""
        self.conditions, self.on_asset, self.on_alias = {}, {}, {}
        known: dict[AssetKey, Asset] = {}
        watched: dict[tuple[AssetKey, str], tuple[Asset, Any]] = {}
        for dag_id, live_dag in self.mirror.dags.items():
            if live_dag.removed:
                continue
            dag = live_dag.dag
            timetable = dag.timetable
            if isinstance(timetable, AssetTriggeredTimetable):
                condition = timetable.asset_condition
                self.conditions[dag_id] = condition
                for asset in condition.iter_assets():
                    self.on_asset.setdefault(asset.key, set()).add(dag_id)
                    for watcher in asset.watchers:
                        watched[(asset.key, watcher.name)] = (asset, watcher)
                for alias in condition.iter_aliases():
                    self.on_alias.setdefault(alias.name, set()).add(dag_id)
                if self.queues.get(dag_id):
                    self.due.add(dag_id)
            for asset in _assets_of(dag):
                known.setdefault(asset.key, asset)
        stamp = iso(now) or ""
        self.mirror.burst.assets.assets.extend(
            AssetRow(a.name, a.uri, a.group, json.dumps(a.extra), stamp) for a in known.values()
        )
        if self.watchers is not None:
            self.watchers.sync(watched)

    # -- events -------------------------------------------------------------------------------
    def record(self, asset: Asset | AssetKey, extra: dict[str, Any], now: datetime, *,
               ti: LiveTI | None = None, aliases: tuple[str, ...] = ()) -> AssetEvent:  # fmt: skip
        """One asset event, written in this burst, queued for every DAG scheduled on it."""
        key = asset.key if isinstance(asset, Asset) else asset
        source: dict[str, Any] = {}
        if ti is not None:
            record = ti.run.record
            source = {
                "source_dag_id": record.dag_id, "source_run_id": record.run_id,
                "source_task_id": ti.task_id, "source_map_index": ti.map_index,
                "source_interval": (record.data_interval_start, record.data_interval_end),
            }  # fmt: skip
        event = AssetEvent(self.next_id, key, extra, now, source_aliases=aliases, **source)
        self.next_id += 1
        self.events_recorded += 1
        writes = self.mirror.burst.assets
        writes.events.append(_row(event))
        if isinstance(asset, Asset) and aliases:  # added through an alias: it may be new
            writes.assets.append(AssetRow(asset.name, asset.uri, asset.group,
                                          json.dumps(asset.extra), iso(now) or ""))  # fmt: skip
        targets = set(self.on_asset.get(key, ()))
        for alias in aliases:
            self.aliases.setdefault(alias, set()).add(key)
            targets |= self.on_alias.get(alias, set())
        for dag_id in targets:
            live_dag = self.mirror.dags.get(dag_id)
            if live_dag is None or live_dag.removed or live_dag.paused:
                continue  # as Airflow: a paused DAG does not queue events
            self.queues.setdefault(dag_id, {})[event.id] = event
            writes.queue.append(AssetQueueRow(dag_id, event.id))
            self.due.add(dag_id)
        return event

    def task_succeeded(self, ti: LiveTI, outlet_events: Any, now: datetime) -> None:
        """`ti` succeeded: an event for each outlet asset, and each asset added to an alias."""
        accessors = outlet_events if isinstance(outlet_events, OutletEventAccessors) else None
        for outlet in ti.task.outlets:
            if isinstance(outlet, Asset):
                extra = accessors.extra_of(outlet) if accessors is not None else {}
                self.record(outlet, extra, now, ti=ti)
            elif isinstance(outlet, AssetAlias) and accessors is not None:
                for asset, extra in accessors.alias_events(outlet):
                    self.record(asset, extra, now, ti=ti, aliases=(outlet.name,))

    # -- runs ---------------------------------------------------------------------------------
    def __call__(self, now: datetime) -> None:
        """The step hook: create the asset-triggered runs whose condition now holds."""
        if not self.due:
            return
        due, self.due = self.due, set()
        mirror = self.mirror
        for dag_id in due:
            queue = self.queues.get(dag_id)
            condition = self.conditions.get(dag_id)
            live_dag = mirror.dags.get(dag_id)
            if not queue or condition is None or live_dag is None:
                continue
            if not self.enabled or live_dag.paused or live_dag.removed or mirror.draining:
                continue  # stays queued (in the store too): evaluated at the next chance
            if live_dag.error is not None:
                continue
            if condition.evaluate(partial(self._updated, queue)):
                self._create_run(dag_id, queue, now)

    def _updated(self, queue: dict[int, AssetEvent], obj: BaseAsset) -> bool:
        if isinstance(obj, Asset):
            return any(event.asset == obj.key for event in queue.values())
        if isinstance(obj, AssetAlias):
            keys = self.aliases.get(obj.name, set())
            return any(obj.name in e.source_aliases or e.asset in keys for e in queue.values())
        return False

    def _create_run(self, dag_id: str, queue: dict[int, AssetEvent], now: datetime) -> None:
        mirror = self.mirror
        dag = mirror.dags[dag_id].dag
        events = sorted(queue.values(), key=lambda e: e.id)
        logical = max(e.timestamp for e in events)
        last = self.last_logical.get(dag_id)
        if last is not None and logical <= last:
            logical = last + MICROSECOND
        self.last_logical[dag_id] = logical
        spans = [e.source_interval or (e.timestamp, e.timestamp) for e in events]
        interval = DataInterval(min(s for s, _ in spans), max(e for _, e in spans))
        record = new_run(dag, run_type=DagRunType.ASSET_TRIGGERED, logical_date=logical,
                         interval=interval, now=now)  # fmt: skip
        run = mirror.add_run(dag_id, record, now)
        mirror.burst.assets.consumed.extend(
            AssetConsumedRow(dag_id, record.run_id, e.id) for e in events
        )
        queue.clear()
        self.runs_created += 1
        mirror.burst.after.append(partial(self._inserted, run, events))
        log.info("asset-triggered run created", dag_id=dag_id, run_id=record.run_id,
                 events=len(events))  # fmt: skip

    def _inserted(self, run: LiveRun, events: list[AssetEvent]) -> None:
        """After the commit: a run whose insert conflicted (its logical date was taken)
        consumed nothing; its events are queued again and tried at the next step."""
        if not run.conflict:
            return
        queue = self.queues.setdefault(run.dag_id, {})
        for event in events:
            queue[event.id] = event
        self.due.add(run.dag_id)

    # -- the context ---------------------------------------------------------------------------
    def extend_context(self, context: Context, ti: LiveTI) -> None:
        """A task's asset entries: outlet_events, inlet_events, triggering_asset_events."""
        task = ti.task
        if task.outlets:
            context["outlet_events"] = OutletEventAccessors()
        if task.inlets:
            context["inlet_events"] = InletEventAccessors(self.store, task.inlets, self.aliases)
        record = ti.run.record
        if record.run_type is DagRunType.ASSET_TRIGGERED:
            context["triggering_asset_events"] = TriggeringAssetEvents(
                self.store, record.dag_id, record.run_id
            )
        else:
            context["triggering_asset_events"] = NO_TRIGGERING_EVENTS

    def statistics(self) -> dict[str, int]:
        return {"asset_events": self.events_recorded, "asset_runs": self.runs_created,
                "asset_queued": sum(len(q) for q in self.queues.values())}  # fmt: skip


async def attach(scheduler: Scheduler, store: Store, *, enabled: bool) -> AssetScheduling:
    """Asset scheduling for a scheduler not yet running: what the store holds is loaded, the
    step hook and the mirror's hooks installed, the watchers made (run `watchers.run()` in the
    engine's task group). Call `refresh(now)` once the DAGs are added."""
    from asyncflow.engine.watchers import Watchers

    assets = AssetScheduling(scheduler.mirror, store, await StoredAssets.load(store),
                             enabled=enabled)  # fmt: skip
    scheduler.mirror.assets = assets
    scheduler.step_hooks.append(assets)

    async def emit(asset: Asset, extra: dict[str, Any]) -> None:
        await scheduler.call(lambda now: assets.record(asset, extra, now)).get()

    assets.watchers = Watchers(emit=emit, runtime=scheduler.triggerer.runtime,
                               clock=scheduler.clock)  # fmt: skip
    return assets
