"""`asyncflow config list | get-value` and `asyncflow info`: the settings in effect (defaults <
file < environment < flags, as the daemon resolves them) and what a bug report needs."""

from __future__ import annotations

import dataclasses
from typing import Any

from asyncflow.cli.context import Cli, close_matches
from asyncflow.cli.output import CommandError


def _values(cli: Cli) -> dict[str, Any]:
    from asyncflow.service.config import Settings

    settings = cli.settings
    return {f.name: _shown(getattr(settings, f.name)) for f in dataclasses.fields(Settings)}


def _defaults() -> dict[str, Any]:
    from asyncflow.service.config import Settings

    return {f.name: _shown(getattr(Settings(), f.name)) for f in dataclasses.fields(Settings)}


def _shown(value: Any) -> Any:
    if isinstance(value, bool | int | float) or value is None:
        return value
    if hasattr(value, "items"):
        return dict(value.items())
    return str(value)


def list_settings(cli: Cli) -> int:
    values, defaults = _values(cli), _defaults()
    rows = [
        {"setting": name, "value": value, "default": defaults.get(name),
         "changed": value != defaults.get(name)}
        for name, value in values.items()
    ]  # fmt: skip
    cli.out.rows(rows, ("setting", "value", "default", "changed"))
    return 0


def get_value(cli: Cli) -> int:
    """Airflow's `config get-value SECTION KEY`: asyncflow's settings have no sections, so
    `core dags_folder` and `dags_folder` name the same one."""
    key = cli.args.key or cli.args.section
    key = key.replace("-", "_").lower()
    values = _values(cli)
    if key not in values:
        raise CommandError(f"no such setting {key!r}{close_matches(key, values)}; "
                           "`asyncflow config list` shows them all")  # fmt: skip
    value = values[key]
    cli.out.text(str(value) if not isinstance(value, bool) else str(value).lower(),
                 {key: value})  # fmt: skip
    return 0


def info(cli: Cli) -> int:
    import platform
    import sqlite3
    import sys

    from asyncflow import __version__

    settings = cli.settings
    row = {
        "asyncflow": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "sqlite": sqlite3.sqlite_version,
        "uvloop": _version("uvloop"),
        "home": str(settings.home),
        "dags_folder": str(settings.dags_folder),
        "database": settings.database,
        "database_exists": cli.database_exists(),
        "logs_folder": str(settings.logs_folder),
        "daemon_pid": cli.daemon_pid(),
        "web_listen": settings.web_listen,
        "parallelism": settings.parallelism,
    }
    cli.out.record(row, list(row))
    return 0


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None
