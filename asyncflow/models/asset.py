"""Assets (data-aware scheduling), as Airflow 3 defines them: what a task produces
(`outlets=`) or reads (`inlets=`), and what a DAG may be scheduled on (`schedule=`).

    orders = Asset("s3://warehouse/orders")        # name and uri both "s3://warehouse/orders"
    report = Asset(name="report", uri="file:///srv/report.csv", extra={"owner": "bi"})
    DAG(..., schedule=[orders, report])            # both updated since the last run
    DAG(..., schedule=orders | report)             # either one
    DAG(..., schedule=(orders & report) | AssetAlias("late-data"))

An asset is known by its name and its URI. A URI is checked and normalized as Airflow does for the
schemes it knows (a lower-case scheme, no trailing slash, sorted query, no fragment or password;
`s3://` and `gs://` need a bucket, `postgres://` a host and a database/schema/table path); a
string without a scheme is an opaque name, kept as it is.
"""

from __future__ import annotations

import re
import urllib.parse
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from asyncflow.records import AssetKey

if TYPE_CHECKING:
    from asyncflow.triggers.base import BaseEventTrigger


def _fail(what: str, value: object, advice: str) -> ValueError:
    return ValueError(f"{what} {value!r}: {advice}")


def _identifier(kind: str, what: str, value: object, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str):
        raise _fail(f"{kind} {what}", value, "must be a string")
    if len(value) > 1500:
        raise _fail(f"{kind} {what}", value[:40] + "...", "cannot exceed 1500 characters")
    if value and value.isspace():
        raise _fail(f"{kind} {what}", value, "cannot be just whitespace")
    if not value and not empty_ok:
        raise _fail(f"{kind} {what}", value, "cannot be empty")
    return value


def _bucket(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
    if not parts.netloc:
        raise _fail(
            "asset URI",
            urllib.parse.urlunsplit(parts),
            f"a {parts.scheme}:// URI must name a bucket ({parts.scheme}://bucket/key)",
        )
    return parts  # fmt: skip


def _database(default_port: int) -> Callable[[urllib.parse.SplitResult], urllib.parse.SplitResult]:
    def normalize(parts: urllib.parse.SplitResult) -> urllib.parse.SplitResult:
        uri = urllib.parse.urlunsplit(parts)
        if not parts.hostname:
            raise _fail("asset URI", uri, f"a {parts.scheme}:// URI must name a host")
        if len(parts.path.strip("/").split("/")) != 3:
            raise _fail("asset URI", uri, f"use {parts.scheme}://host/database/schema/table")
        netloc = parts.netloc if parts.port else f"{parts.netloc}:{default_port}"
        return parts._replace(scheme=parts.scheme, netloc=netloc)

    return normalize


#: the schemes whose URIs are checked beyond the generic rules (Airflow's providers do these)
_NORMALIZERS: dict[str, Callable[[urllib.parse.SplitResult], urllib.parse.SplitResult]] = {
    "file": lambda parts: parts,
    "s3": _bucket,
    "gs": _bucket,
    "gcs": _bucket,
    "postgres": _database(5432),
    "postgresql": _database(5432),
    "mysql": _database(3306),
}
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*$")


def normalize_uri(uri: str) -> str:
    """An asset URI checked and in its normal form, as Airflow 3 normalizes it."""
    _identifier("Asset", "uri", uri)
    parsed = urllib.parse.urlsplit(uri)
    if not parsed.scheme and not parsed.netloc:  # not a URI: an opaque identifier
        return uri
    scheme = parsed.scheme.lower()
    if not scheme or not _SCHEME.match(scheme) or scheme.startswith("x-"):
        return uri
    if scheme == "airflow":
        raise _fail("asset URI", uri, "the scheme 'airflow' is reserved; use another scheme")
    netloc = parsed.netloc
    if parsed.password:
        warnings.warn(
            f"asset URI {uri!r} contains a password: it was dropped (keep secrets in "
            "Connections, not in asset URIs)",
            UserWarning,
            stacklevel=4,
        )
        netloc = netloc.rpartition("@")[2]
    query = urllib.parse.urlencode(sorted(urllib.parse.parse_qsl(parsed.query)))
    parts = parsed._replace(scheme=scheme, netloc=netloc, path=parsed.path.rstrip("/") or "/",
                            query=query, fragment="")  # fmt: skip
    normalizer = _NORMALIZERS.get(scheme)
    if normalizer is not None:
        parts = normalizer(parts)
    return urllib.parse.urlunsplit(parts)


class BaseAsset:
    """What `schedule=` accepts: an asset, an alias, or a condition over them (`&`, `|`)."""

    def __or__(self, other: BaseAsset) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def __and__(self, other: BaseAsset) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def evaluate(self, updated: Callable[[BaseAsset], bool]) -> bool:
        """Whether the condition holds, `updated(asset or alias)` telling which have events."""
        return updated(self)

    def iter_assets(self) -> Iterator[Asset]:
        """The assets the condition names (not those behind aliases)."""
        return iter(())

    def iter_aliases(self) -> Iterator[AssetAlias]:
        return iter(())


@dataclass(frozen=True)
class AssetWatcher:
    """Watch something outside asyncflow: every `TriggerEvent` the trigger yields is an event
    of the asset it watches (and so may start the DAGs scheduled on that asset). The trigger
    runs as a coroutine in the engine's loop for as long as a loaded DAG uses the asset."""

    name: str
    trigger: BaseEventTrigger

    def __post_init__(self) -> None:
        from asyncflow.triggers.base import BaseEventTrigger

        _identifier("AssetWatcher", "name", self.name)
        if not isinstance(self.trigger, BaseEventTrigger):
            raise _fail(f"AssetWatcher {self.name!r}: trigger", self.trigger,
                        "must be a BaseEventTrigger (FileDeleteTrigger, or your own subclass "
                        "that does not fire twice for one condition)")  # fmt: skip


class Asset(BaseAsset):
    """A piece of data a task produces or reads; `Asset("s3://b/k")` names it by its URI."""

    asset_type = "asset"

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str | None = None,
        extra: Mapping[str, Any] | None = None,
        watchers: Iterable[AssetWatcher] | None = None,
        **ignored: Any,  # access_control and other Airflow-only options: no effect here
    ) -> None:
        if name is None and uri is None:
            raise TypeError("Asset() needs a name or a uri: Asset('s3://bucket/key')")
        if name is None:
            name = str(uri)
        elif uri is None:
            uri = name
        self.name = _identifier("Asset", "name", name)
        if self.name in ("self", "context"):
            raise _fail("Asset name", self.name, "is reserved; choose another name")
        self.uri = normalize_uri(str(uri))
        self.group = _identifier("Asset", "group", self.asset_type if group is None else group,
                                 empty_ok=True)  # fmt: skip
        if extra is not None and not isinstance(extra, Mapping):
            raise _fail(f"Asset {self.name!r}: extra", extra, "must be a dict of JSON values")
        self.extra: dict[str, Any] = dict(extra or {})
        self.watchers: list[AssetWatcher] = list(watchers or [])
        for watcher in self.watchers:
            if not isinstance(watcher, AssetWatcher):
                raise _fail(f"Asset {self.name!r}: watchers", watcher,
                            "must be AssetWatcher(name=..., trigger=...)")  # fmt: skip

    @property
    def key(self) -> AssetKey:
        return AssetKey(self.name, self.uri)

    def __fspath__(self) -> str:
        return self.uri

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Asset):
            return NotImplemented
        return (self.name, self.uri, self.group, self.extra) == (
            other.name, other.uri, other.group, other.extra,
        )  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.name, self.uri, self.group))

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r}, group={self.group!r})"

    def evaluate(self, updated: Callable[[BaseAsset], bool]) -> bool:
        return updated(self)

    def iter_assets(self) -> Iterator[Asset]:
        yield self


class Dataset(Asset):
    """Airflow 2's name for an asset: `Dataset(uri, extra=...)`."""

    asset_type = "dataset"

    def __init__(self, uri: str | None = None, extra: Mapping[str, Any] | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        name = kwargs.pop("name", None)
        super().__init__(name=name, uri=uri, extra=extra, **kwargs)


class Model(Asset):
    asset_type = "model"


@dataclass(frozen=True)
class AssetAlias(BaseAsset):
    """A name a task's events may be given under: the task adds the real assets at run time
    (`outlet_events[AssetAlias("x")].add(Asset(...))`); DAGs may be scheduled on the alias."""

    name: str
    group: str = field(default="asset", kw_only=True)

    def __post_init__(self) -> None:
        _identifier("AssetAlias", "name", self.name)
        _identifier("AssetAlias", "group", self.group, empty_ok=True)

    def iter_aliases(self) -> Iterator[AssetAlias]:
        yield self


class _Condition(BaseAsset):
    objects: tuple[BaseAsset, ...]

    def __init__(self, *objects: BaseAsset) -> None:
        for obj in objects:
            if not isinstance(obj, BaseAsset):
                raise TypeError(
                    f"{type(self).__name__} takes assets, aliases and conditions, got {obj!r}"
                )
        self.objects = tuple(objects)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.objects == other.objects

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.objects))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def iter_assets(self) -> Iterator[Asset]:
        for obj in self.objects:
            yield from obj.iter_assets()

    def iter_aliases(self) -> Iterator[AssetAlias]:
        for obj in self.objects:
            yield from obj.iter_aliases()


class AssetAny(_Condition):
    """Holds when any of its parts holds (`a | b`)."""

    def __or__(self, other: BaseAsset) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)

    def evaluate(self, updated: Callable[[BaseAsset], bool]) -> bool:
        return any(obj.evaluate(updated) for obj in self.objects)


class AssetAll(_Condition):
    """Holds when every part holds (`a & b`; a list in `schedule=`)."""

    def __and__(self, other: BaseAsset) -> BaseAsset:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)

    def evaluate(self, updated: Callable[[BaseAsset], bool]) -> bool:
        return all(obj.evaluate(updated) for obj in self.objects)


def as_condition(schedule: object) -> BaseAsset | None:
    """`schedule=` as an asset condition (a list means all of them), or None when it is not
    about assets."""
    if isinstance(schedule, BaseAsset):
        return schedule
    if isinstance(schedule, (list, tuple, set, frozenset)) and schedule:
        items = list(schedule)
        if all(isinstance(item, BaseAsset) for item in items):
            return AssetAll(*items)
    return None


def outlets_of(values: object, *, what: str) -> list[BaseAsset]:
    """`outlets=` / `inlets=` as a list of assets and aliases; other values (Airflow allows
    lineage objects) are refused with the reason."""
    if values is None:
        return []
    items = list(values) if isinstance(values, (list, tuple, set, frozenset)) else [values]
    found: list[BaseAsset] = []
    for item in items:
        if not isinstance(item, (Asset, AssetAlias)):
            raise ValueError(
                f"{what}={item!r} is not an Asset or AssetAlias: asyncflow tracks assets only"
            )
        found.append(item)
    return found


@dataclass
class Metadata:
    """`yield Metadata(asset, extra)` from a task: the extra of that asset's event (and an
    alias to record it under)."""

    asset: Asset
    extra: dict[str, Any]
    alias: AssetAlias | None = None


@dataclass(frozen=True)
class AssetAccessControl:
    """Airflow's multi-team access rules for an asset (`Asset(access_control=...)`). asyncflow
    has no teams: accepted so that such DAG files load, and shown, never enforced."""

    producer_teams: tuple[str, ...] | list[str] = ()
    consumer_teams: tuple[str, ...] | list[str] = ()
    allow_global: bool = True
