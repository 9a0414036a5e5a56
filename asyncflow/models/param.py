"""DAG and task params: defaults, overridden by a run's conf, validated before the run starts."""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Mapping
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any

from asyncflow.exceptions import ParamValidationError

if TYPE_CHECKING:
    from asyncflow.models.checks import Where


class _NoValue:
    def __repr__(self) -> str:
        return "NOTSET"


NOTSET: Any = _NoValue()


class Param:
    """A param: an optional default, an optional description, and a JSON schema (every other
    keyword, or `schema={...}`) its value must pass, as in Airflow: `type`, `enum`, `const`,
    `minimum`, `items`, `properties`, `required`, `oneOf`, `anyOf`... are checked by the
    `jsonschema` library (JSON Schema 2020-12 unless the schema names its `$schema`), and
    `format` for date, date-time, time, duration, email, ipv4, ipv6, uuid and regex. Keywords a
    form shows (`title`, `section`, `values_display`, `description_md`...) are kept and not
    checked, as JSON Schema treats unknown keywords; a keyword neither JSON Schema nor Airflow's
    form knows draws a warning (a typo is never checked)."""

    __slots__ = ("_validator", "default", "description", "schema")

    def __init__(
        self,
        default: Any = NOTSET,
        description: str | None = None,
        *,
        schema: Mapping[str, Any] | None = None,
        **keywords: Any,
    ) -> None:
        if schema is not None and not isinstance(schema, Mapping):
            raise ParamValidationError(f"Param schema={schema!r} is not a dict")
        self.schema: dict[str, Any] = {**(schema or {}), **keywords}
        self.default = default
        self.description = description
        self._validator: Any = _validator(self.schema) if self.schema else None

    @property
    def type(self) -> list[str]:
        """The JSON types the value may have (empty: any)."""
        kind = self.schema.get("type")
        return [kind] if isinstance(kind, str) else list(kind or [])

    @property
    def enum(self) -> list[Any] | None:
        return self.schema.get("enum")

    @property
    def minimum(self) -> float | None:
        return self.schema.get("minimum")

    @property
    def maximum(self) -> float | None:
        return self.schema.get("maximum")

    def resolve(self, name: str, value: Any = NOTSET) -> Any:
        """The param's value (`value`, else its default), checked against its schema."""
        value = self.default if value is NOTSET else value
        if value is NOTSET:
            raise ParamValidationError(
                f"param {name!r} is required and has no default: pass it in the run's conf"
            )
        if self._validator is not None:
            error = _first_error(self._validator, value)
            if error is not None:
                raise ParamValidationError(_explain(name, value, error))
        return value


#: JSON-schema keywords that only change how Airflow's trigger form shows the param
_DISPLAY_KEYWORDS = frozenset(
    {"title", "section", "values_display", "description_md", "examples", "custom_html_form",
     "const_display", "default_display", "description"}
)  # fmt: skip
#: keywords JSON Schema defines that are annotations (nothing to check)
_ANNOTATIONS = frozenset(
    {"$comment", "$id", "$schema", "$anchor", "$defs", "definitions", "default", "deprecated",
     "readOnly", "writeOnly", "contentEncoding", "contentMediaType", "contentSchema"}
)  # fmt: skip


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

#: the formats checked here (others jsonschema knows depend on optional packages: left out so
#: that a value passes or fails the same on every machine)
_FORMATS: dict[str, Any] = {
    "date": lambda text: _parses(date.fromisoformat, text) and len(text) == 10,
    "date-time": lambda text: (
        "T" in text.upper()
        and _parses(lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")), text)
    ),
    "time": lambda text: _parses(time.fromisoformat, text.replace("Z", "+00:00")),
    "duration": lambda text: _DURATION.fullmatch(text) is not None,
}
_LIBRARY_FORMATS = ("email", "idn-email", "ipv4", "ipv6", "uuid", "regex")


@functools.cache
def _format_checker() -> Any:
    from jsonschema import FormatChecker

    checker = FormatChecker(formats=_LIBRARY_FORMATS)
    for name, check in _FORMATS.items():
        checker.checks(name)(lambda value, check=check: not isinstance(value, str) or check(value))
    return checker


@functools.cache
def _validator_class(base: type) -> Any:
    """`base` (a jsonschema validator class) with Python tuples counted as JSON arrays."""
    from jsonschema import validators

    types = base.TYPE_CHECKER.redefine(  # type: ignore[attr-defined]
        "array", lambda checker, value: isinstance(value, list | tuple)
    )
    return validators.extend(base, type_checker=types)  # type: ignore[no-untyped-call]


def _validator(schema: dict[str, Any]) -> Any:
    """A validator of `schema`, once the schema itself is valid JSON Schema."""
    from jsonschema import Draft202012Validator, SchemaError
    from jsonschema.validators import validator_for

    base = validator_for(schema, default=Draft202012Validator)
    try:
        base.check_schema(schema)
    except SchemaError as exc:
        at = "".join(f"[{part!r}]" for part in exc.absolute_path)
        raise ParamValidationError(
            f"Param schema is not valid JSON Schema: {exc.message}"
            + (f" (at {at})" if at else "")
            + ": see https://json-schema.org/understanding-json-schema/"
        ) from None
    known = set(base.VALIDATORS) | _ANNOTATIONS | _DISPLAY_KEYWORDS
    unknown = sorted(set(schema) - known)
    if unknown:
        warnings.warn(
            f"Param keywords {unknown} are neither JSON Schema nor Airflow form keywords: "
            "nothing checks them (a misspelling?)",
            UserWarning,
            stacklevel=3,
        )
    return _validator_class(base)(schema, format_checker=_format_checker())


def _first_error(validator: Any, value: Any) -> Any:
    from jsonschema.exceptions import best_match

    return best_match(validator.iter_errors(value))


def _explain(name: str, value: Any, error: Any) -> str:
    """The failure, naming the param, its value and where inside the value it fails."""
    at = "".join(f"[{part!r}]" for part in error.absolute_path)
    shown = repr(value)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    inside = f" at {name}{at}" if at else ""
    return f"param {name!r} = {shown} fails its schema{inside}: {error.message}"


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
                "fix the default or the Param's schema"
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
