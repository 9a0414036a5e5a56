"""What commands print: aligned tables for people, tab-separated lines for pipelines, JSON or
YAML for programs (`-o table|plain|json|yaml`), and `CommandError` for a failure that ends the
command with a status."""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any

from asyncflow.exitcodes import EX_FAILED

__all__ = ["FORMATS", "CommandError", "Output", "format_table"]


class CommandError(Exception):
    """The command cannot do what was asked: `message` goes to stderr, `code` is the status."""

    def __init__(self, message: str, code: int = EX_FAILED) -> None:
        super().__init__(message)
        self.code = code


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | tuple | set):
        return ",".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, default=str)
    return " ".join(str(value).splitlines())


#: a table cell longer than this is cut (with "..."); `-o json` has every value whole
MAX_CELL = 60


def _capped(text: str) -> str:
    return text if len(text) <= MAX_CELL else text[: MAX_CELL - 3] + "..."


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Plain aligned columns with a header line; the last column is not padded; no cell is
    wider than MAX_CELL, so one long value cannot pad every row."""
    cells = [[_capped(_cell(row.get(c))) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        padded = [v.ljust(w) for v, w in zip(values[:-1], widths[:-1], strict=True)]
        return "  ".join([*padded, values[-1]]).rstrip()

    header = line(list(columns))
    rule = line(["-" * w for w in widths])
    return "\n".join([header, rule, *(line(r) for r in cells)])


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)


#: `-o`: table (aligned, cells capped) and plain (tab-separated, whole) for people and shell
#: pipelines; json and yaml for programs
FORMATS = ("table", "plain", "json", "yaml")


def _plain_data(value: Any) -> Any:
    """JSON-able data: dates as ISO strings, enums as their values."""
    return json.loads(json.dumps(value, default=_json_value))


class Output:
    """Prints results in the chosen format to stdout; notes for people go to stderr."""

    def __init__(self, fmt: str = "table") -> None:
        self.format = fmt
        #: data for a program (json or yaml): no notes for people on stdout
        self.json = fmt in ("json", "yaml")

    def data(self, value: Any) -> None:
        """`value` as JSON or YAML (the format asked for)."""
        if self.format == "yaml":
            import yaml

            sys.stdout.write(
                yaml.safe_dump(_plain_data(value), sort_keys=False, allow_unicode=True)
            )
        else:
            print(json.dumps(value, default=_json_value))

    def rows(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, empty: str = ""
    ) -> None:
        """A list of records: a table, tab-separated lines, or a JSON/YAML list of objects with
        exactly `columns`."""
        if self.json:
            self.data([{c: row.get(c) for c in columns} for row in rows])
        elif rows and self.format == "plain":
            print("\t".join(columns))
            for row in rows:
                print("\t".join(_cell(row.get(c)) for c in columns))
        elif rows:
            print(format_table(rows, columns))
        elif empty:
            self.note(empty)

    def record(self, row: Mapping[str, Any], columns: Sequence[str]) -> None:
        """One record: `key  value` lines (tab-separated when plain), or one object."""
        if self.json:
            self.data({c: row.get(c) for c in columns})
            return
        width = max(len(c) for c in columns)
        for column in columns:
            if self.format == "plain":
                print(f"{column}\t{_cell(row.get(column))}")
            else:
                print(f"{column.ljust(width)}  {_cell(row.get(column))}")

    def text(self, text: str, data: Any = None) -> None:
        """A sentence for people, or `data` (when given) as JSON/YAML."""
        if self.json:
            self.data(data if data is not None else {"message": text})
        else:
            print(text)

    @staticmethod
    def note(text: str) -> None:
        print(text, file=sys.stderr)
