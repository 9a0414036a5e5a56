"""Airflow's task state store and asset state store (AIP-103): small durable key-value stores a
task reads and writes while it runs.

* ``context["task_state_store"]`` (`TaskStateStore`): keys of one task instance, shared by all
  its tries (a retry finds what the failed try wrote: the job id it submitted, a checkpoint).
  Each mapped instance has its own. A key expires `DEFAULT_RETENTION` (Airflow's
  ``[state_store] default_retention_days``, 30 days) after it was last set, unless ``set`` is
  given another ``retention`` or `NEVER_EXPIRE`.
* ``context["asset_state_store"]`` (`AssetStateStores`): keys of each asset among the task's
  inlets and outlets, shared by every DAG and run (a watermark); ``[asset]`` picks one, and a
  task with exactly one asset may call the methods directly. Asset keys never expire.

Values are JSON (str, int, float, bool, list, dict; not None). Every method has an ``a``-prefixed
coroutine twin (``aget``, ``aset``, ...) for async tasks. The engine installs the backend that
reads and writes its database (`current_state_backend`); outside a running task there is none
and each call says so.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from datetime import timedelta
from typing import Any, NamedTuple, Protocol

from asyncflow.models.asset import Asset

__all__ = [
    "DEFAULT_RETENTION",
    "NEVER_EXPIRE",
    "AssetStateStore",
    "AssetStateStores",
    "StateBackend",
    "TaskScope",
    "TaskStateStore",
    "current_state_backend",
]

#: pass as ``retention`` to `TaskStateStore.set` for a key that never expires (Airflow's value)
NEVER_EXPIRE: timedelta = timedelta.max
#: how long a task state key lives after its last ``set`` without a ``retention`` (Airflow's
#: ``[state_store] default_retention_days`` default)
DEFAULT_RETENTION = timedelta(days=30)


class TaskScope(NamedTuple):
    """The task instance whose keys a `TaskStateStore` holds (map_index -1: not mapped)."""

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1


class StateBackend(Protocol):
    """Where the state stores read and write (the engine's database). Values travel as JSON
    text; each method blocks briefly and may be called from any thread."""

    def get_task_state(self, scope: TaskScope, key: str) -> str | None:
        """The key's JSON text, or None when it is not set (or has expired)."""
        ...

    def set_task_state(
        self, scope: TaskScope, key: str, value: str, retention: timedelta | None
    ) -> None:
        """Set the key; it expires `retention` from now (None: never)."""
        ...

    def delete_task_state(self, scope: TaskScope, key: str) -> None: ...

    def clear_task_state(self, scope: TaskScope) -> None: ...

    def get_asset_state(self, asset: str, key: str) -> str | None: ...

    def set_asset_state(self, asset: str, key: str, value: str) -> None: ...

    def delete_asset_state(self, asset: str, key: str) -> None: ...

    def clear_asset_state(self, asset: str) -> None: ...


#: the state backend of the engine whose task is running (set by the engine for its tasks)
current_state_backend: ContextVar[StateBackend | None] = ContextVar(
    "asyncflow_state_backend", default=None
)


def _backend(what: str) -> StateBackend:
    backend = current_state_backend.get()
    if backend is None:
        raise RuntimeError(
            f"the {what} is only available to a task run by an asyncflow engine "
            "(`asyncflow serve`, `asyncflow dags test` or Engine); there is none here"
        )
    return backend


def _encode(what: str, key: str, value: Any) -> str:
    if not isinstance(key, str) or not key:
        raise TypeError(f"{what}: a key is a non-empty string, not {key!r}")
    if value is None:
        raise ValueError(f"{what}: cannot set key {key!r} to None; use delete({key!r}) instead")
    try:
        return json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what}: the value of key {key!r} is not JSON ({type(value).__name__}: {exc}); "
            "store str, int, float, bool, list or dict (a datetime as .isoformat())"
        ) from exc


def _decode(text: str | None, default: Any) -> Any:
    return default if text is None else json.loads(text)


class TaskStateStore:
    """``context["task_state_store"]``: this task instance's keys, kept across its tries."""

    __slots__ = ("scope",)

    def __init__(self, scope: TaskScope) -> None:
        self.scope = scope

    def __repr__(self) -> str:
        s = self.scope
        return f"<TaskStateStore {s.dag_id}/{s.run_id}/{s.task_id}[{s.map_index}]>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TaskStateStore) and other.scope == self.scope

    def __hash__(self) -> int:
        return hash(self.scope)

    @property
    def _what(self) -> str:
        return f"task state store of {self.scope.task_id!r} (DAG {self.scope.dag_id!r})"

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value, or `default` when it is not set or has expired."""
        return _decode(_backend("task state store").get_task_state(self.scope, key), default)

    def set(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        """Set the key (JSON, not None). It expires `retention` after now; `NEVER_EXPIRE`
        keeps it for good; None (the default) means `DEFAULT_RETENTION`."""
        text = _encode(self._what, key, value)
        if retention is not None and not isinstance(retention, timedelta):
            raise TypeError(f"{self._what}: retention is a timedelta or NEVER_EXPIRE")
        if retention is not None and retention <= timedelta(0):
            raise ValueError(f"{self._what}: retention must be positive, got {retention}")
        lifetime = DEFAULT_RETENTION if retention is None else retention
        ttl = None if lifetime == NEVER_EXPIRE else lifetime
        _backend("task state store").set_task_state(self.scope, key, text, ttl)

    def delete(self, key: str) -> None:
        """Remove the key (nothing happens if it is not set)."""
        _backend("task state store").delete_task_state(self.scope, key)

    def clear(self) -> None:
        """Remove every key of this task instance."""
        _backend("task state store").clear_task_state(self.scope)

    # point queries on the engine's database: short enough to answer on the loop
    async def aget(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    async def aset(self, key: str, value: Any, *, retention: timedelta | None = None) -> None:
        self.set(key, value, retention=retention)

    async def adelete(self, key: str) -> None:
        self.delete(key)

    async def aclear(self) -> None:
        self.clear()


class AssetStateStore:
    """The keys of one asset (``context["asset_state_store"][asset]``), shared by every task
    that names the asset among its inlets or outlets; they never expire."""

    __slots__ = ("asset",)

    def __init__(self, asset: str) -> None:
        self.asset = asset

    def __repr__(self) -> str:
        return f"<AssetStateStore asset={self.asset!r}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetStateStore) and other.asset == self.asset

    def __hash__(self) -> int:
        return hash(self.asset)

    def get(self, key: str, default: Any = None) -> Any:
        """The key's value, or `default` when it is not set."""
        return _decode(_backend("asset state store").get_asset_state(self.asset, key), default)

    def set(self, key: str, value: Any) -> None:
        """Set the key (JSON, not None)."""
        text = _encode(f"asset state store of asset {self.asset!r}", key, value)
        _backend("asset state store").set_asset_state(self.asset, key, text)

    def delete(self, key: str) -> None:
        _backend("asset state store").delete_asset_state(self.asset, key)

    def clear(self) -> None:
        _backend("asset state store").clear_asset_state(self.asset)

    async def aget(self, key: str, default: Any = None) -> Any:
        return self.get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self.set(key, value)

    async def adelete(self, key: str) -> None:
        self.delete(key)

    async def aclear(self) -> None:
        self.clear()


class AssetStateStores:
    """``context["asset_state_store"]``: one `AssetStateStore` per asset among the task's
    inlets and outlets, by ``[asset]`` (an `Asset` or its name); with exactly one such asset
    the methods may be called here directly."""

    __slots__ = ("_by_name", "task_id")

    def __init__(self, task_id: str, assets: list[Any]) -> None:
        self.task_id = task_id
        self._by_name: dict[str, AssetStateStore] = {}
        for asset in assets:
            if isinstance(asset, Asset) and asset.name not in self._by_name:
                self._by_name[asset.name] = AssetStateStore(asset.name)

    def __repr__(self) -> str:
        return f"<AssetStateStores {sorted(self._by_name)}>"

    def __len__(self) -> int:
        return len(self._by_name)

    def __getitem__(self, asset: Asset | str) -> AssetStateStore:
        name = asset.name if isinstance(asset, Asset) else asset
        if not isinstance(name, str):
            raise TypeError(f"asset_state_store[...] takes an Asset or its name, not {asset!r}")
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(
                f"asset {name!r} is not among the inlets or outlets of task {self.task_id!r} "
                f"(those are {sorted(self._by_name)}); add it to inlets=[...] to use its state"
            ) from None

    def _single(self) -> AssetStateStore:
        if len(self._by_name) != 1:
            raise ValueError(
                f"task {self.task_id!r} has {len(self._by_name)} assets among its inlets and "
                "outlets; say which: context['asset_state_store'][MY_ASSET]"
            )
        return next(iter(self._by_name.values()))

    def get(self, key: str, default: Any = None) -> Any:
        return self._single().get(key, default)

    def set(self, key: str, value: Any) -> None:
        self._single().set(key, value)

    def delete(self, key: str) -> None:
        self._single().delete(key)

    def clear(self) -> None:
        self._single().clear()

    async def aget(self, key: str, default: Any = None) -> Any:
        return self._single().get(key, default)

    async def aset(self, key: str, value: Any) -> None:
        self._single().set(key, value)

    async def adelete(self, key: str) -> None:
        self._single().delete(key)

    async def aclear(self) -> None:
        self._single().clear()
