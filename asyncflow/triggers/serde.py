"""JSON for what a deferral keeps in the store: a trigger's kwargs, the method's kwargs and the
event's payload. Plain JSON values pass as they are; datetimes, timedeltas, tuples and sets are
tagged so that they come back as what they were. Anything else is refused when the task
defers, with the value's name, not later at a restart."""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from typing import Any

_TAG = "__asyncflow__"


def _encode(value: Any, where: str) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime):
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, timedelta):
        return {_TAG: "timedelta", "v": value.total_seconds()}
    if isinstance(value, (tuple, set, frozenset)):
        kind = "tuple" if isinstance(value, tuple) else "set"
        return {_TAG: kind, "v": [_encode(v, where) for v in value]}
    if isinstance(value, list):
        return [_encode(v, where) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: key {key!r} is not a string; a deferral is stored "
                                "as JSON, so its keys must be strings")  # fmt: skip
            out[key] = _encode(item, where)
        return out
    raise TypeError(
        f"{where}: {type(value).__name__} value {value!r} cannot be stored; a deferral keeps "
        "JSON values, datetimes, timedeltas, tuples and sets: pass something built from those"
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        tag = value.get(_TAG)
        if tag == "datetime":
            return datetime.fromisoformat(value["v"])
        if tag == "date":
            return date.fromisoformat(value["v"])
        if tag == "timedelta":
            return timedelta(seconds=value["v"])
        if tag == "tuple":
            return tuple(_decode(v) for v in value["v"])
        if tag == "set":
            return {_decode(v) for v in value["v"]}
        return {k: _decode(v) for k, v in value.items()}
    return value


def dumps(value: Any, where: str) -> str:
    """JSON text of `value`; `where` names it in the error when it cannot be stored."""
    return json.dumps(_encode(value, where), separators=(",", ":"))


def loads(text: str) -> Any:
    return _decode(json.loads(text))
