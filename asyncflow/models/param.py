"""DAG and task params: defaults, overridden by a run's conf, validated before the run starts."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import ParamValidationError

if TYPE_CHECKING:
    from asyncflow.models.checks import Where

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
    """A param with an optional default, a JSON type (or list of types) and allowed values.

    Further JSON-schema keywords, as Airflow takes them: the ones a form shows (`title`,
    `section`, `values_display`, `description_md`, `examples`...) are kept in `schema`; the string
    checks `minLength`, `maxLength`, `pattern` and `format` (date, date-time, time, duration) are
    enforced;
    any other keyword is refused by name rather than silently not checked.
    """

    __slots__ = ("default", "description", "enum", "maximum", "minimum", "schema", "type")

    def __init__(
        self,
        default: Any = NOTSET,
        description: str | None = None,
        *,
        type: str | list[str] | None = None,
        enum: list[Any] | None = None,
        minimum: float | None = None,
        maximum: float | None = None,
        **schema: Any,
    ) -> None:
        types = [type] if isinstance(type, str) else list(type or [])
        for name in types:
            if name not in _JSON_TYPES:
                raise ParamValidationError(
                    f"Param type {name!r} is not one of {sorted(_JSON_TYPES)}"
                )
        if enum is not None and not isinstance(enum, list | tuple):
            raise ParamValidationError(f"Param enum={enum!r} is not a list of allowed values")
        for bound, label in ((minimum, "minimum"), (maximum, "maximum")):
            if bound is not None and not _is_type(bound, "number"):
                raise ParamValidationError(f"Param {label}={bound!r} is not a number")
        unknown = sorted(set(schema) - _DISPLAY_KEYWORDS - _CHECKED_KEYWORDS)
        if unknown:
            raise ValueError(
                f"Param keywords {unknown} are not supported by asyncflow (it checks type, enum, "
                f"minimum, maximum, {', '.join(sorted(_CHECKED_KEYWORDS))} and accepts the "
                f"display keywords {sorted(_DISPLAY_KEYWORDS)}): check the value in the task"
            )
        if schema.get("format") not in (None, *_FORMATS):
            raise ValueError(f"Param format {schema['format']!r} is not one of {sorted(_FORMATS)}")
        self.schema: dict[str, Any] = schema
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
        if (self.minimum is not None or self.maximum is not None) and not _is_type(value, "number"):
            raise ParamValidationError(
                f"param {name!r} = {value!r} is not a number, and it has a minimum or maximum"
            )
        if self.minimum is not None and value < self.minimum:
            raise ParamValidationError(f"param {name!r} = {value!r} is below {self.minimum}")
        if self.maximum is not None and value > self.maximum:
            raise ParamValidationError(f"param {name!r} = {value!r} is above {self.maximum}")
        if self.schema and isinstance(value, str):
            _check_string(name, value, self.schema)
        return value


#: JSON-schema keywords that only change how a form shows the param
_DISPLAY_KEYWORDS = frozenset(
    {"title", "section", "values_display", "description_md", "examples", "custom_html_form",
     "const_display", "default_display"}
)  # fmt: skip
_CHECKED_KEYWORDS = frozenset({"minLength", "maxLength", "pattern", "format"})


def _parses(parse: Any, text: str) -> bool:
    try:
        parse(text)
    except ValueError:
        return False
    return True


#: an ISO 8601 duration (JSON Schema's "duration"): P1D, PT15M, P1Y2M3W4DT5H6M7.5S
_DURATION = re.compile(
    r"P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+W)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?",
    re.IGNORECASE,
)

_FORMATS = {
    "date": lambda text: _parses(date.fromisoformat, text) and len(text) == 10,
    "date-time": lambda text: (
        "T" in text.upper()
        and _parses(lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")), text)
    ),
    "time": lambda text: _parses(time.fromisoformat, text.replace("Z", "+00:00")),
    "duration": lambda text: _DURATION.fullmatch(text) is not None,
}


def _check_string(name: str, value: str, schema: dict[str, Any]) -> None:
    low, high = schema.get("minLength"), schema.get("maxLength")
    if low is not None and len(value) < low:
        raise ParamValidationError(f"param {name!r} = {value!r} is shorter than {low} characters")
    if high is not None and len(value) > high:
        raise ParamValidationError(f"param {name!r} = {value!r} is longer than {high} characters")
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        raise ParamValidationError(f"param {name!r} = {value!r} does not match {pattern!r}")
    form = schema.get("format")
    if form is not None and not _FORMATS[form](value):
        raise ParamValidationError(f"param {name!r} = {value!r} is not a valid {form}")


def _is_type(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False
    return isinstance(value, _JSON_TYPES[name])


def as_params(params: Mapping[str, Any] | None) -> dict[str, Param]:
    """Wrap plain values as `Param(default=value)`."""
    return {k: v if isinstance(v, Param) else Param(v) for k, v in (params or {}).items()}


def check_defaults(params: Mapping[str, Param], where: Where, *, required: bool) -> None:
    """At load time, as Airflow does: every default must pass its own schema, and a DAG that
    has a schedule cannot have a param without a default (its scheduled runs have no conf)."""
    for name, param in params.items():
        if param.default is NOTSET:
            if required:
                raise where.error(
                    f"param {name!r} has no default, but scheduled runs have no conf to fill "
                    "it: give it a default, or set schedule=None for a DAG run only by trigger"
                )
            continue
        try:
            param.resolve(name)
        except ParamValidationError as exc:
            raise where.error(
                f"the default of param {name!r} fails its own schema ({exc}): "
                "fix the default or the Param's type/enum/minimum/maximum"
            ) from None


def resolve_params(
    params: Mapping[str, Param], conf: Mapping[str, Any] | None, *, dag_id: str
) -> dict[str, Any]:
    """The values a run sees: each param's default, overridden by the run's conf."""
    conf = conf or {}
    try:
        return {name: p.resolve(name, conf.get(name, NOTSET)) for name, p in params.items()}
    except ParamValidationError as exc:
        raise ParamValidationError(f"DAG {dag_id!r}: {exc}") from None
