"""DAG and task params: defaults, overridden by a run's conf, validated before the run starts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncflow.exceptions import ParamValidationError

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "array": (list, tuple),
    "object": (dict,),
    "null": (type(None),),
}


class _NoValue:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NoValue()


class Param:
    """A param with an optional default, a JSON type (or list of types) and allowed values."""

    __slots__ = ("default", "description", "enum", "maximum", "minimum", "type")

    def __init__(
        self,
        default: Any = NOTSET,
        description: str | None = None,
        *,
        type: str | list[str] | None = None,
        enum: list[Any] | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
    ) -> None:
        types = [type] if isinstance(type, str) else (type or [])
        for name in types:
            if name not in _JSON_TYPES:
                raise ValueError(f"Param type {name!r} is not one of {sorted(_JSON_TYPES)}")
        self.default = default
        self.description = description
        self.type = types
        self.enum = enum
        self.minimum = minimum
        self.maximum = maximum

    def resolve(self, name: str, value: Any = NOTSET) -> Any:
        value = self.default if value is NOTSET else value
        if value is NOTSET:
            raise ParamValidationError(
                f"param {name!r} is required and has no default: pass it in the run's conf"
            )
        if self.type and not any(_is_type(value, t) for t in self.type):
            raise ParamValidationError(
                f"param {name!r} = {value!r} is not of type {' or '.join(self.type)}"
            )
        if self.enum is not None and value not in self.enum:
            raise ParamValidationError(f"param {name!r} = {value!r} is not one of {self.enum}")
        if self.minimum is not None and value < self.minimum:
            raise ParamValidationError(f"param {name!r} = {value!r} is below {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ParamValidationError(f"param {name!r} = {value!r} is above {self.maximum}")
        return value


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES[name])


def as_params(params: Mapping[str, Any] | None) -> dict[str, Param]:
    """Wrap plain values as `Param(default=value)`."""
    return {k: v if isinstance(v, Param) else Param(v) for k, v in (params or {}).items()}


def resolve_params(
    params: Mapping[str, Param], conf: Mapping[str, Any] | None, *, dag_id: str
) -> dict[str, Any]:
    """The values a run sees: each param's default, overridden by the run's conf."""
    conf = conf or {}
    try:
        return {name: p.resolve(name, conf.get(name, NOTSET)) for name, p in params.items()}
    except ParamValidationError as exc:
        raise ParamValidationError(f"DAG {dag_id!r}: {exc}") from None
