"""XCom values as text: JSON, with a tag for the Python values JSON has no type for.

A plain JSON value is stored as it is, so rows written before this codec existed read back
unchanged. A value JSON cannot hold is written as a one-key object, ``{"__af__": [TYPE,
DATA]}``, as Airflow's serializer writes ``__classname__``/``__data__``:

    datetime, date, time, timedelta, set, frozenset, tuple, Decimal, UUID, pathlib paths,
    dataclass instances, pydantic models, dicts whose keys are not all strings

A dict that happens to have the one key ``"__af__"`` is tagged too, so decoding is never
ambiguous. Anything else is refused with a `TypeError` naming the type; the runner turns it
into the task's failure.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import uuid
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from pathlib import PurePath
from typing import Any

__all__ = ["TAG", "XComDecodeError", "dumps", "encode", "loads"]

TAG = "__af__"


class XComDecodeError(ValueError):
    """A stored XCom names a class that cannot be found (its module is not importable)."""


def dumps(value: Any) -> str:
    """`value` as JSON text; TypeError names the first value that has no encoding."""
    return json.dumps(encode(value), separators=(",", ":"), allow_nan=True)


def loads(text: str) -> Any:
    """The value `dumps` wrote (or any plain JSON)."""
    return decode(json.loads(text))


def _tagged(kind: str, data: Any) -> dict[str, Any]:
    return {TAG: [kind, data]}


def _class_path(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def _tz(value: tzinfo | None, moment: datetime | time | None) -> Any:
    """A zone by name when it has one (ZoneInfo, pendulum, pytz), else its UTC offset."""
    if value is None:
        return None
    name = getattr(value, "key", None) or getattr(value, "name", None)
    name = name or getattr(value, "zone", None)
    if isinstance(name, str) and name and name not in ("UTC", "+00:00") and "/" in name:
        return name
    offset = value.utcoffset(moment if isinstance(moment, datetime) else None)
    return 0.0 if offset is None else offset.total_seconds()


def encode(value: Any) -> Any:
    """A JSON-able structure for `value` (plain JSON values are returned as they are)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value) and not (len(value) == 1 and TAG in value):
            return {k: encode(v) for k, v in value.items()}
        return _tagged("dict", [[encode(k), encode(v)] for k, v in value.items()])
    if isinstance(value, tuple) and not hasattr(value, "_fields"):
        return _tagged("tuple", [encode(v) for v in value])
    if isinstance(value, frozenset):
        return _tagged("frozenset", [encode(v) for v in value])
    if isinstance(value, set):
        return _tagged("set", [encode(v) for v in value])
    if isinstance(value, datetime):
        kind = "pendulum" if type(value).__module__.startswith("pendulum") else "datetime"
        naive = value.replace(tzinfo=None).isoformat()
        return _tagged(kind, [naive, _tz(value.tzinfo, value)])
    if isinstance(value, date):
        return _tagged("date", value.isoformat())
    if isinstance(value, time):
        return _tagged("time", [value.replace(tzinfo=None).isoformat(), _tz(value.tzinfo, None)])
    if isinstance(value, timedelta):
        return _tagged("timedelta", [value.days, value.seconds, value.microseconds])
    if isinstance(value, Decimal):
        return _tagged("decimal", str(value))
    if isinstance(value, uuid.UUID):
        return _tagged("uuid", str(value))
    if isinstance(value, PurePath):
        return _tagged("path", [_class_path(type(value)), str(value)])
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return _tagged("dataclass", [_class_path(type(value)), fields])
    dump = getattr(value, "model_dump", None)
    if callable(dump) and hasattr(type(value), "model_validate"):
        return _tagged("pydantic", [_class_path(type(value)), encode(dump(mode="json"))])
    if hasattr(value, "_fields") and isinstance(value, tuple):  # a NamedTuple: as a tuple
        return _tagged("tuple", [encode(v) for v in value])
    raise TypeError(
        f"a value of type {type(value).__module__}.{type(value).__qualname__} ({value!r:.60}) "
        "has no XCom encoding: XComs hold JSON values, datetimes, dates, times, "
        "timedeltas, sets, tuples, Decimal, UUID, paths, dataclasses and pydantic models"
    )


def _find_class(path: str) -> type:
    module_name, _, qualname = path.partition(":")
    module = sys.modules.get(module_name)
    if module is None:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise XComDecodeError(
                f"an XCom holds a {qualname} from module {module_name!r}, which cannot be "
                f"imported here ({exc}): define the class in an importable module"
            ) from None
    found: Any = module
    for part in qualname.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise XComDecodeError(
                f"an XCom holds a {qualname} from module {module_name!r}, which has no such "
                "class (renamed or removed since the value was stored?)"
            )
    if not isinstance(found, type):
        raise XComDecodeError(f"an XCom names {path!r}, which is not a class")
    return found


def _zone(data: Any) -> tzinfo | None:
    if data is None:
        return None
    if isinstance(data, str):
        from zoneinfo import ZoneInfo

        return ZoneInfo(data)
    return UTC if data == 0 else timezone(timedelta(seconds=float(data)))


def _datetime(data: list[Any], pendulum: bool) -> datetime:
    naive = datetime.fromisoformat(data[0])
    zone = _zone(data[1])
    moment = naive if zone is None else naive.replace(tzinfo=zone)
    if pendulum and zone is not None:
        try:
            import pendulum as pendulum_module
        except ImportError:
            return moment
        return pendulum_module.instance(moment)
    return moment


def _decode_tagged(kind: str, data: Any) -> Any:
    if kind == "dict":
        return {decode(k): decode(v) for k, v in data}
    if kind == "tuple":
        return tuple(decode(v) for v in data)
    if kind == "set":
        return {decode(v) for v in data}
    if kind == "frozenset":
        return frozenset(decode(v) for v in data)
    if kind in ("datetime", "pendulum"):
        return _datetime(data, kind == "pendulum")
    if kind == "date":
        return date.fromisoformat(data)
    if kind == "time":
        return time.fromisoformat(data[0]).replace(tzinfo=_zone(data[1]))
    if kind == "timedelta":
        return timedelta(days=data[0], seconds=data[1], microseconds=data[2])
    if kind == "decimal":
        return Decimal(data)
    if kind == "uuid":
        return uuid.UUID(data)
    if kind == "path":
        return _find_class(data[0])(data[1])
    if kind == "dataclass":
        cls = _find_class(data[0])
        values = {name: decode(v) for name, v in data[1].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        made = cls(**{k: v for k, v in values.items() if k in init})
        for name, v in values.items():
            if name not in init:
                object.__setattr__(made, name, v)
        return made
    if kind == "pydantic":
        return _find_class(data[0]).model_validate(decode(data[1]))  # type: ignore[attr-defined]
    raise XComDecodeError(
        f"an XCom holds a value tagged {kind!r}, which this version of asyncflow cannot read"
    )


def decode(data: Any) -> Any:
    """The value behind a structure `encode` made."""
    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if len(data) == 1 and TAG in data:
            tag = data[TAG]
            if isinstance(tag, list) and len(tag) == 2 and isinstance(tag[0], str):
                return _decode_tagged(tag[0], tag[1])
        return {k: decode(v) for k, v in data.items()}
    return data
