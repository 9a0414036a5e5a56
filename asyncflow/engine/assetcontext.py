"""What a task sees of assets in its context, as in Airflow:

* `outlet_events[asset].extra = {...}` sets the extra of the event its success records;
  `outlet_events[AssetAlias("a")].add(Asset(...), extra={...})` records an event of that asset
  under the alias (the alias must be one of the task's outlets);
* `inlet_events[asset]` (or `.for_asset(uri=...)`, `.for_alias(name)`): that asset's events,
  oldest first, read from the store when asked;
* `triggering_asset_events[asset]`: the events that created this asset-triggered run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from asyncflow.models.asset import Asset, AssetAlias, Metadata, normalize_uri
from asyncflow.records import AssetEvent, AssetKey
from asyncflow.store.base import AssetEventRow, Store

#: how many of an inlet asset's events `inlet_events[asset]` reads (the newest)
INLET_EVENTS_LIMIT = 1000


def event_of(row: AssetEventRow) -> AssetEvent:
    interval = None
    if row.source_interval_start is not None and row.source_interval_end is not None:
        interval = (datetime.fromisoformat(row.source_interval_start),
                    datetime.fromisoformat(row.source_interval_end))  # fmt: skip
    return AssetEvent(
        id=row.id, asset=AssetKey(row.name, row.uri), extra=json.loads(row.extra),
        timestamp=datetime.fromisoformat(row.timestamp), source_dag_id=row.source_dag_id,
        source_run_id=row.source_run_id, source_task_id=row.source_task_id,
        source_map_index=row.source_map_index,
        source_aliases=tuple(json.loads(row.source_aliases)), source_interval=interval,
    )  # fmt: skip


class OutletEventAccessor:
    """One outlet's event-to-be: its `extra`, and (an alias) the assets added to it."""

    def __init__(self, key: Asset | AssetAlias) -> None:
        self.key = key
        self.extra: dict[str, Any] = {}
        #: (asset, extra) recorded under this alias
        self.asset_alias_events: list[tuple[Asset, dict[str, Any]]] = []

    def add(self, asset: Asset, extra: Mapping[str, Any] | None = None) -> None:
        if not isinstance(self.key, AssetAlias):
            raise TypeError(
                f"outlet_events[{self.key!r}].add(...) is for aliases: set .extra on an asset"
            )
        if not isinstance(asset, Asset):
            raise TypeError(f"outlet_events[{self.key!r}].add({asset!r}) needs an Asset")
        self.asset_alias_events.append((asset, dict(extra or {})))

    def __repr__(self) -> str:
        return f"<OutletEventAccessor {self.key!r} extra={self.extra!r}>"


class OutletEventAccessors(Mapping[Asset | AssetAlias, OutletEventAccessor]):
    """`context["outlet_events"]`."""

    def __init__(self) -> None:
        self._by_key: dict[Any, OutletEventAccessor] = {}

    def _key(self, key: Asset | AssetAlias) -> Any:
        if isinstance(key, Asset):
            return key.key
        if isinstance(key, AssetAlias):
            return ("alias", key.name)
        raise TypeError(f"outlet_events[{key!r}]: use an Asset or AssetAlias as the key")

    def __getitem__(self, key: Asset | AssetAlias) -> OutletEventAccessor:
        found = self._by_key.get(self._key(key))
        if found is None:
            found = self._by_key[self._key(key)] = OutletEventAccessor(key)
        return found

    def __iter__(self) -> Iterator[Asset | AssetAlias]:
        return iter([accessor.key for accessor in self._by_key.values()])

    def __len__(self) -> int:
        return len(self._by_key)

    def take(self, metadata: Metadata) -> None:
        """`yield Metadata(asset, extra, alias)` from a task."""
        if metadata.alias is not None:
            self[metadata.alias].add(metadata.asset, metadata.extra)
        else:
            self[metadata.asset].extra.update(metadata.extra)

    def extra_of(self, asset: Asset) -> dict[str, Any]:
        found = self._by_key.get(asset.key)
        return dict(found.extra) if found is not None else {}

    def alias_events(self, alias: AssetAlias) -> list[tuple[Asset, dict[str, Any]]]:
        found = self._by_key.get(("alias", alias.name))
        return list(found.asset_alias_events) if found is not None else []


def _key_of(obj: object) -> tuple[str, str]:
    if isinstance(obj, Asset):
        return ("asset", obj.uri)
    if isinstance(obj, AssetAlias):
        return ("alias", obj.name)
    raise TypeError(f"{obj!r}: use an Asset or AssetAlias as the key")


class InletEventAccessors(Mapping[Any, list[AssetEvent]]):
    """`context["inlet_events"]`: an inlet asset's (or alias's) events, oldest first."""

    def __init__(self, store: Store, inlets: list[Any], aliases: Mapping[str, set[AssetKey]]):
        self._store = store
        self._inlets = inlets
        self._aliases = aliases

    def _read(self, name: str | None, uri: str | None) -> list[AssetEvent]:
        rows = self._store.get_asset_events_sync(name, uri, INLET_EVENTS_LIMIT)
        return [event_of(row) for row in rows]

    def for_asset(self, *, name: str | None = None, uri: str | None = None) -> list[AssetEvent]:
        """The events of the asset with this name and URI; given one of them, of every asset
        with it (as Airflow's asset references read them)."""
        if name is not None and uri is not None:
            found = Asset(name=name, uri=uri)
            return self._read(found.name, found.uri)
        if name is not None:
            return self._read(name, None)
        if uri is not None:
            return self._read(None, normalize_uri(uri))
        raise TypeError("inlet_events.for_asset() needs name= or uri=")

    def for_alias(self, name: str) -> list[AssetEvent]:
        events = [e for key in self._aliases.get(name, ()) for e in self._read(*key)]
        return sorted(events, key=lambda e: e.id)

    def __getitem__(self, key: Any) -> list[AssetEvent]:
        if isinstance(key, AssetAlias):
            return self.for_alias(key.name)
        if isinstance(key, Asset):
            return self._read(key.name, key.uri)
        if isinstance(key, int) and not isinstance(key, bool):  # inlets by position
            return self[self._inlets[key]]
        raise KeyError(f"inlet_events[{key!r}]: use an Asset or AssetAlias")

    def __iter__(self) -> Iterator[Any]:
        return iter(self._inlets)

    def __len__(self) -> int:
        return len(self._inlets)


class TriggeringAssetEvents(Mapping[Any, list[AssetEvent]]):
    """`context["triggering_asset_events"]`: the events the run consumed, by asset (or
    alias); read from the store when first asked."""

    def __init__(self, store: Store | None, dag_id: str, run_id: str) -> None:
        self._store, self._dag_id, self._run_id = store, dag_id, run_id
        self._events: list[AssetEvent] | None = None

    @property
    def events(self) -> list[AssetEvent]:
        if self._events is None:
            rows = [] if self._store is None else self._store.get_run_asset_events_sync(
                self._dag_id, self._run_id
            )  # fmt: skip
            self._events = [event_of(row) for row in rows]
        return self._events

    def _grouped(self) -> dict[tuple[str, str], list[AssetEvent]]:
        grouped: dict[tuple[str, str], list[AssetEvent]] = {}
        for event in self.events:
            grouped.setdefault(("asset", event.uri), []).append(event)
            for alias in event.source_aliases:
                grouped.setdefault(("alias", alias), []).append(event)
        return grouped

    def __getitem__(self, key: Any) -> list[AssetEvent]:
        if isinstance(key, str):  # Airflow 2 keyed these by URI
            key = Asset(key)
        return self._grouped().get(_key_of(key), [])

    def __iter__(self) -> Iterator[Any]:
        seen: dict[str, Asset] = {}
        for event in self.events:
            seen.setdefault(event.uri, Asset(name=event.name, uri=event.uri))
        return iter(list(seen.values()))

    def __len__(self) -> int:
        return len({event.uri for event in self.events})

    def __repr__(self) -> str:
        return f"TriggeringAssetEvents({self.events!r})"


NO_TRIGGERING_EVENTS = TriggeringAssetEvents(None, "", "")
