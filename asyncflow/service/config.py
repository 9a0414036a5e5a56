"""The daemon's settings: defaults < TOML file < `ASYNCFLOW_*` environment < CLI flags.

The config file (``--config``, else `$ASYNCFLOW_CONFIG`) holds top-level keys named as the
`Settings` fields plus a ``[pools]`` table::

    dags_folder = "/srv/asyncflow/dags"     # relative paths: against this file's folder
    parallelism = 64
    default_timezone = "Europe/Berlin"

    [pools]
    api = 3

Each setting `name` is also read from `ASYNCFLOW_<NAME>` (`ASYNCFLOW_POOLS="api=3,db=2"`;
an empty variable counts as unset) and from the flag `--<name>` (passed in `flags` by setting
name; None means "not given"). A layer replaces a setting whole: `ASYNCFLOW_POOLS` replaces the
file's `[pools]`, it does not merge with it.

Every value given is checked, also one that a higher layer overrides; each problem raises
`ConfigError` naming the setting, where the value came from, the value and what is allowed.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
import zoneinfo
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Literal, cast

from asyncflow.exceptions import ConfigError

__all__ = ["ENV_PREFIX", "Settings", "load_settings"]

ENV_PREFIX = "ASYNCFLOW_"
MEMORY_DATABASE = ":memory:"

Durability = Literal["normal", "full"]
LogFormat = Literal["auto", "json", "console"]

_DEFAULT_HOME = Path(".asyncflow")


@dataclass(frozen=True, slots=True)
class Settings:
    """The daemon's resolved settings. Build them with `load_settings()`, which validates them
    and derives `database` and `logs_folder` from `home`; direct construction checks nothing."""

    home: Path = _DEFAULT_HOME
    """State folder: `$ASYNCFLOW_HOME`, else systemd's `$STATE_DIRECTORY`, else ./.asyncflow."""
    dags_folder: Path = Path("dags")
    database: str = str(_DEFAULT_HOME / "asyncflow.db")
    """A SQLite file path (default `<home>/asyncflow.db`) or ':memory:'."""
    logs_folder: Path = _DEFAULT_HOME / "logs"
    parallelism: int = 10_000
    """How many task instances run at once in the whole daemon (`async def` tasks cost a
    coroutine each, so the bound is high; threads and subprocesses have their own below)."""
    thread_slots: int = 0
    """Sync tasks (run in worker threads) at once; 0: min(32, CPUs + 4)."""
    process_slots: int = 0
    """Subprocess tasks (Bash) at once; 0: two per CPU, at least 4."""
    durability: Durability = "normal"
    """SQLite `synchronous=NORMAL` (survives a process crash) or FULL (survives power loss)."""
    default_timezone: str = "UTC"
    catchup_by_default: bool = True
    default_schedule_seconds: int = 86400
    """The schedule of a DAG that names none, as in Airflow 2: one day."""
    drain_timeout: float = 60.0
    """Seconds that running tasks get to finish after SIGTERM (below the unit's TimeoutStopSec)."""
    dagbag_import_timeout: float = 30.0
    dag_dir_list_interval: float = 5.0
    """Seconds between rescans of the DAG folder."""
    log_format: LogFormat = "auto"
    log_level: str = "info"
    pools: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}), hash=False)
    """Pool name -> slots."""
    allow_seconds_in_cron: bool = False
    """Accept six/seven-field cron strings (croniter puts the seconds last)."""
    web_listen: str = "127.0.0.1:8793"
    """Where the HTTP API and dashboard listen: `host:port`, a unix socket path (`unix:PATH`
    or an absolute path), or `off`."""
    max_xcom_bytes: int = 1 << 20
    """The largest XCom (a return value, a bash task's last line) a task may push, in bytes."""
    loop_stall_threshold: float = 0.5
    """Seconds something may hold the event loop before a warning names it (engine/monitor.py)."""


# -- where a value came from ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    kind: Literal["file", "env", "flag"]
    label: str  # the file path, the variable name or the flag
    base: Path  # the folder relative paths are resolved against

    def describe(self) -> str:
        if self.kind == "file":
            return f"config file {self.label}"
        if self.kind == "env":
            return f"environment variable {self.label}"
        return f"flag {self.label}"

    @property
    def strings(self) -> bool:
        """Whether values arrive as text to parse (environment, command line)."""
        return self.kind != "file"


def _error(name: str, value: object, source: _Source, allowed: str) -> ConfigError:
    return ConfigError(f"invalid {name} = {value!r} from {source.describe()}: expected {allowed}")


# -- parsers: (name, raw value, source) -> checked value ------------------------------------------

_Parser = Callable[[str, object, _Source], object]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _int(minimum: int) -> _Parser:
    allowed = f"an integer >= {minimum}"

    def parse(name: str, raw: object, source: _Source) -> int:
        value = raw
        if isinstance(raw, str) and source.strings:
            try:
                value = int(raw.strip())
            except ValueError:
                raise _error(name, raw, source, allowed) from None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise _error(name, raw, source, allowed)
        return value

    return parse


def _float(minimum: float, *, inclusive: bool) -> _Parser:
    allowed = f"a number of seconds {'>=' if inclusive else '>'} {minimum:g}"

    def parse(name: str, raw: object, source: _Source) -> float:
        value = raw
        if isinstance(raw, str) and source.strings:
            try:
                value = float(raw.strip())
            except ValueError:
                raise _error(name, raw, source, allowed) from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _error(name, raw, source, allowed)
        number = float(value)
        if not math.isfinite(number) or number < minimum or (number == minimum and not inclusive):
            raise _error(name, raw, source, allowed)
        return number

    return parse


def _bool(name: str, value: object, source: _Source) -> bool:
    if isinstance(value, str) and source.strings:
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    if isinstance(value, bool):
        return value
    allowed = "true or false" if source.kind == "file" else "true/false, 1/0, yes/no or on/off"
    raise _error(name, value, source, allowed)


def _choice(*choices: str) -> _Parser:
    allowed = "one of " + ", ".join(repr(choice) for choice in choices)

    def parse(name: str, value: object, source: _Source) -> str:
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        raise _error(name, value, source, allowed)

    return parse


def _text(name: str, value: object, source: _Source) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value.strip():
        raise _error(name, value, source, "a non-empty path")
    return value.strip()


def _path(name: str, value: object, source: _Source) -> Path:
    path = Path(_text(name, value, source)).expanduser()
    return path if path.is_absolute() else source.base / path


def _database(name: str, value: object, source: _Source) -> str:
    text = _text(name, value, source)
    if text == MEMORY_DATABASE:
        return text
    return str(_path(name, text, source))


def _timezone(name: str, value: object, source: _Source) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(name, value, source, "an IANA time zone name such as 'UTC'")
    zone = value.strip()
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = difflib.get_close_matches(zone, zoneinfo.available_timezones(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise _error(
            name, value, source, f"an IANA time zone name such as 'UTC' or 'Europe/Berlin'{hint}"
        ) from None
    return zone


_POOL_NAME = re.compile(r"^[\w.-]+$")
_POOLS_ALLOWED = "pool names (letters, digits, '_', '.', '-') mapped to slots >= 1"


def _listen(name: str, value: object, source: _Source) -> str:
    allowed = "'host:port' (port 0-65535), 'unix:PATH', an absolute socket path, or 'off'"
    if not isinstance(value, str) or not value.strip():
        raise _error(name, value, source, allowed)
    text = value.strip()
    if text.lower() == "off":
        return "off"
    if text.startswith("unix:"):
        path = text.removeprefix("unix:").strip()
        if not path:
            raise _error(name, value, source, allowed)
        return "unix:" + str(_path(name, path, source))
    if text.startswith("/"):
        return "unix:" + text
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise _error(name, value, source, allowed)
    return f"{host}:{int(port)}"


def _pools(name: str, value: object, source: _Source) -> Mapping[str, int]:
    if isinstance(value, str) and source.strings:
        value = _parse_pool_list(name, value, source)
    if not isinstance(value, Mapping):
        raise _error(name, value, source, f"a table of {_POOLS_ALLOWED}")
    pools: dict[str, int] = {}
    for pool, slots in value.items():
        if not isinstance(pool, str) or not _POOL_NAME.match(pool):
            raise _error(f"{name}.{pool}", slots, source, _POOLS_ALLOWED)
        pools[pool] = cast(int, _int(1)(f"{name}.{pool}", slots, source))
    return MappingProxyType(pools)


def _parse_pool_list(name: str, text: str, source: _Source) -> dict[str, str]:
    allowed = "name=slots pairs separated by commas, e.g. 'api=3,db=2'"
    pairs: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        pool, sep, slots = item.partition("=")
        pool = pool.strip()
        if not sep or not pool:
            raise _error(name, text, source, allowed)
        if pool in pairs:
            raise _error(name, text, source, f"{allowed}, each pool once ({pool!r} repeats)")
        pairs[pool] = slots
    return pairs


_PARSERS: dict[str, _Parser] = {
    "home": _path,
    "dags_folder": _path,
    "database": _database,
    "logs_folder": _path,
    "parallelism": _int(1),
    "thread_slots": _int(0),
    "process_slots": _int(0),
    "durability": _choice("normal", "full"),
    "default_timezone": _timezone,
    "catchup_by_default": _bool,
    "default_schedule_seconds": _int(1),
    "drain_timeout": _float(0, inclusive=True),
    "dagbag_import_timeout": _float(0, inclusive=False),
    "dag_dir_list_interval": _float(0, inclusive=False),
    "log_format": _choice("auto", "json", "console"),
    "log_level": _choice("debug", "info", "warning", "error"),
    "pools": _pools,
    "allow_seconds_in_cron": _bool,
    "web_listen": _listen,
    "max_xcom_bytes": _int(1),
    "loop_stall_threshold": _float(0, inclusive=False),
}
assert set(_PARSERS) == {f.name for f in fields(Settings)}, "a Settings field has no parser"


def _unknown(name: str, known: Iterable[str], where: str) -> ConfigError:
    known = sorted(known)
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return ConfigError(f"unknown setting {name!r} in {where}: {hint}known: {', '.join(known)}")


# -- the layers -----------------------------------------------------------------------------------

_Layer = dict[str, object]  # setting name -> checked value


def _parse_layer(raw: Mapping[str, tuple[object, _Source]]) -> _Layer:
    return {name: _PARSERS[name](name, value, source) for name, (value, source) in raw.items()}


def _read_file(path: Path, origin: str) -> _Layer:
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot read config file {path} (from {origin}): {reason}; "
            "fix the path or its permissions"
        ) from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text: {exc}") from None
    except tomllib.TOMLDecodeError as exc:  # the message ends with "(at line N, column M)"
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    source = _Source("file", str(path), path.parent)
    for key in document:
        if key not in _PARSERS:
            raise _unknown(key, _PARSERS, f"config file {path}")
    return _parse_layer({key: (value, source) for key, value in document.items()})


def _read_environ(environ: Mapping[str, str], cwd: Path) -> _Layer:
    raw: dict[str, tuple[object, _Source]] = {}
    for name in _PARSERS:
        variable = ENV_PREFIX + name.upper()
        value = environ.get(variable, "")
        if value.strip():
            raw[name] = (value, _Source("env", variable, cwd))
    return _parse_layer(raw)


def _read_flags(flags: Mapping[str, object], cwd: Path) -> _Layer:
    raw: dict[str, tuple[object, _Source]] = {}
    for name, value in flags.items():
        if name not in _PARSERS:
            raise _unknown(name, _PARSERS, "flags")
        if value is not None:
            raw[name] = (value, _Source("flag", "--" + name.replace("_", "-"), cwd))
    return _parse_layer(raw)


def _default_home(environ: Mapping[str, str], cwd: Path) -> Path:
    # systemd's StateDirectory=: one absolute path per listed directory, joined by ':'.
    state = environ.get("STATE_DIRECTORY", "").split(":")[0].strip()
    return cwd / state if state else cwd / _DEFAULT_HOME


def load_settings(
    *,
    config_file: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    flags: Mapping[str, object] | None = None,
) -> Settings:
    """Read, check and merge the settings; raise `ConfigError` on the first problem.

    `config_file` (the ``--config`` flag) wins over `$ASYNCFLOW_CONFIG`; with neither there is
    no file. `environ` defaults to `os.environ`. Relative paths from the file resolve against
    the file's folder, from the environment and flags against the current directory.
    """
    env = os.environ if environ is None else environ
    cwd = Path.cwd()
    layers: list[_Layer] = []
    if config_file is not None:
        layers.append(_read_file(cwd / Path(config_file).expanduser(), "--config"))
    elif env.get(ENV_PREFIX + "CONFIG", "").strip():
        path = Path(env[ENV_PREFIX + "CONFIG"].strip()).expanduser()
        layers.append(_read_file(cwd / path, f"environment variable {ENV_PREFIX}CONFIG"))
    layers.append(_read_environ(env, cwd))
    layers.append(_read_flags(flags or {}, cwd))

    merged: dict[str, object] = {"home": _default_home(env, cwd)}
    for layer in layers:  # lowest precedence first
        merged.update(layer)
    home = cast(Path, merged["home"])
    merged.setdefault("database", str(home / "asyncflow.db"))
    merged.setdefault("logs_folder", home / "logs")
    merged.setdefault("dags_folder", cwd / "dags")
    return Settings(**merged)  # type: ignore[arg-type]
