"""Settings: defaults < TOML file < ASYNCFLOW_* environment < flags, and errors that say where."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from asyncflow.exceptions import ConfigError
from asyncflow.exitcodes import EX_CONFIG
from asyncflow.service.config import Settings, load_settings


@pytest.fixture(autouse=True)
def _cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_exit_config_is_ex_config() -> None:
    assert EX_CONFIG == 78


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings(environ={})
    assert settings.home == tmp_path / ".asyncflow"
    assert settings.database == str(tmp_path / ".asyncflow" / "asyncflow.db")
    assert settings.logs_folder == tmp_path / ".asyncflow" / "logs"
    assert settings.dags_folder == tmp_path / "dags"
    assert settings.parallelism == 10_000
    assert (settings.thread_slots, settings.process_slots) == (0, 0)  # 0: from the CPUs
    assert settings.durability == "normal"
    assert settings.default_timezone == "UTC"
    assert settings.catchup_by_default is True
    assert settings.default_schedule_seconds == 86400
    assert settings.drain_timeout == 60.0
    assert settings.dagbag_import_timeout == 30.0
    assert settings.dag_dir_list_interval == 5.0
    assert settings.log_format == "auto"
    assert settings.log_level == "info"
    assert dict(settings.pools) == {}
    assert settings.allow_seconds_in_cron is False


def test_settings_are_frozen() -> None:
    settings = load_settings(environ={"ASYNCFLOW_POOLS": "api=3"})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.parallelism = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        settings.pools["api"] = 5  # type: ignore[index]


def test_state_directory_is_the_default_home() -> None:
    settings = load_settings(environ={"STATE_DIRECTORY": "/var/lib/asyncflow:/var/lib/other"})
    assert settings.home == Path("/var/lib/asyncflow")
    assert settings.database == "/var/lib/asyncflow/asyncflow.db"
    assert settings.logs_folder == Path("/var/lib/asyncflow/logs")


def test_asyncflow_home_beats_state_directory(tmp_path: Path) -> None:
    environ = {"STATE_DIRECTORY": "/var/lib/asyncflow", "ASYNCFLOW_HOME": "state"}
    settings = load_settings(environ=environ)
    assert settings.home == tmp_path / "state"
    assert settings.database == str(tmp_path / "state" / "asyncflow.db")


def test_home_from_file_beats_state_directory_and_loses_to_env(tmp_path: Path) -> None:
    config = write(tmp_path / "etc" / "af.toml", 'home = "/srv/af"\n')
    settings = load_settings(config_file=config, environ={"STATE_DIRECTORY": "/var/lib/af"})
    assert settings.home == Path("/srv/af")
    assert settings.logs_folder == Path("/srv/af/logs")
    settings = load_settings(config_file=config, environ={"ASYNCFLOW_HOME": "/opt/af"})
    assert settings.home == Path("/opt/af")


@pytest.mark.parametrize(
    ("use_env", "use_flag", "expected"),
    [(False, False, 10), (True, False, 20), (True, True, 30), (False, True, 30)],
    ids=["file", "env-beats-file", "flag-beats-env", "flag-beats-file"],
)
def test_precedence(tmp_path: Path, use_env: bool, use_flag: bool, expected: int) -> None:
    config = write(tmp_path / "af.toml", "parallelism = 10\n")
    environ = {"ASYNCFLOW_PARALLELISM": "20"} if use_env else {}
    flags: dict[str, object] = {"parallelism": 30 if use_flag else None}
    settings = load_settings(config_file=config, environ=environ, flags=flags)
    assert settings.parallelism == expected


def test_config_file_from_environment(tmp_path: Path) -> None:
    from_env = write(tmp_path / "env.toml", "parallelism = 4\n")
    from_flag = write(tmp_path / "flag.toml", "parallelism = 5\n")
    environ = {"ASYNCFLOW_CONFIG": str(from_env)}
    assert load_settings(environ=environ).parallelism == 4
    assert load_settings(config_file=from_flag, environ=environ).parallelism == 5


def test_relative_paths_from_file_resolve_against_its_folder(tmp_path: Path) -> None:
    config = write(
        tmp_path / "etc" / "af.toml",
        'dags_folder = "dags"\ndatabase = "state/af.db"\nlogs_folder = "../logs"\n',
    )
    settings = load_settings(config_file=config, environ={})
    assert settings.dags_folder == tmp_path / "etc" / "dags"
    assert settings.database == str(tmp_path / "etc" / "state" / "af.db")
    assert settings.logs_folder == tmp_path / "etc" / ".." / "logs"


def test_relative_paths_from_env_and_flags_resolve_against_cwd(tmp_path: Path) -> None:
    config = write(tmp_path / "etc" / "af.toml", 'dags_folder = "dags"\n')
    settings = load_settings(
        config_file=config,
        environ={"ASYNCFLOW_DATABASE": "db/af.db"},
        flags={"dags_folder": "mydags", "logs_folder": Path("out")},
    )
    assert settings.dags_folder == tmp_path / "mydags"
    assert settings.database == str(tmp_path / "db" / "af.db")
    assert settings.logs_folder == tmp_path / "out"


def test_memory_database() -> None:
    assert load_settings(environ={"ASYNCFLOW_DATABASE": ":memory:"}).database == ":memory:"
    assert load_settings(environ={}, flags={"database": ":memory:"}).database == ":memory:"


def test_environment_values_are_parsed() -> None:
    environ = {
        "ASYNCFLOW_PARALLELISM": " 8 ",
        "ASYNCFLOW_DURABILITY": "FULL",
        "ASYNCFLOW_DEFAULT_TIMEZONE": "Europe/Berlin",
        "ASYNCFLOW_CATCHUP_BY_DEFAULT": "no",
        "ASYNCFLOW_DEFAULT_SCHEDULE_SECONDS": "3600",
        "ASYNCFLOW_DRAIN_TIMEOUT": "0",
        "ASYNCFLOW_DAGBAG_IMPORT_TIMEOUT": "2.5",
        "ASYNCFLOW_DAG_DIR_LIST_INTERVAL": "0.5",
        "ASYNCFLOW_LOG_FORMAT": "json",
        "ASYNCFLOW_LOG_LEVEL": "DEBUG",
        "ASYNCFLOW_POOLS": "api=3, db = 2,",
        "ASYNCFLOW_ALLOW_SECONDS_IN_CRON": "1",
    }
    settings = load_settings(environ=environ)
    assert settings.parallelism == 8
    assert settings.durability == "full"
    assert settings.default_timezone == "Europe/Berlin"
    assert settings.catchup_by_default is False
    assert settings.default_schedule_seconds == 3600
    assert settings.drain_timeout == 0.0
    assert settings.dagbag_import_timeout == 2.5
    assert settings.dag_dir_list_interval == 0.5
    assert settings.log_format == "json"
    assert settings.log_level == "debug"
    assert dict(settings.pools) == {"api": 3, "db": 2}
    assert settings.allow_seconds_in_cron is True


@pytest.mark.parametrize(
    ("word", "expected"),
    [("true", True), ("Yes", True), ("1", True), ("false", False), ("NO", False), ("0", False)],
)
def test_environment_booleans(word: str, expected: bool) -> None:
    environ = {"ASYNCFLOW_CATCHUP_BY_DEFAULT": word}
    assert load_settings(environ=environ).catchup_by_default is expected


def test_empty_environment_variable_counts_as_unset() -> None:
    assert load_settings(environ={"ASYNCFLOW_PARALLELISM": ""}).parallelism == 10_000


def test_flags_accept_text_and_typed_values() -> None:
    settings = load_settings(
        environ={},
        flags={"parallelism": "7", "drain_timeout": 5, "catchup_by_default": False},
    )
    assert settings.parallelism == 7
    assert settings.drain_timeout == 5.0
    assert isinstance(settings.drain_timeout, float)
    assert settings.catchup_by_default is False


def test_file_values_and_pools_table(tmp_path: Path) -> None:
    config = write(
        tmp_path / "af.toml",
        """
        parallelism = 3
        drain_timeout = 10          # an integer is fine for seconds
        catchup_by_default = false
        default_timezone = "America/New_York"

        [pools]
        api = 3
        "db.main" = 2
        """,
    )
    settings = load_settings(config_file=config, environ={})
    assert settings.parallelism == 3
    assert settings.drain_timeout == 10.0
    assert settings.catchup_by_default is False
    assert settings.default_timezone == "America/New_York"
    assert dict(settings.pools) == {"api": 3, "db.main": 2}


def test_env_pools_replace_file_pools(tmp_path: Path) -> None:
    config = write(tmp_path / "af.toml", "[pools]\napi = 3\n")
    settings = load_settings(config_file=config, environ={"ASYNCFLOW_POOLS": "db=1"})
    assert dict(settings.pools) == {"db": 1}


def test_the_shipped_example_config_loads() -> None:
    example = Path(__file__).parents[2] / "systemd" / "asyncflow.toml"
    settings = load_settings(config_file=example, environ={"STATE_DIRECTORY": "/var/lib/af"})
    assert settings.dags_folder == Path("/srv/asyncflow/dags")
    assert settings.database == "/var/lib/af/asyncflow.db"
    defaults = load_settings(environ={})
    assert settings.drain_timeout == defaults.drain_timeout
    assert settings.parallelism == defaults.parallelism


# -- errors: each names the setting, where it came from, the value and what is allowed ------------


def file_error(tmp_path: Path, text: str) -> tuple[str, str]:
    config = write(tmp_path / "conf" / "asyncflow.toml", text)
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=config, environ={})
    return str(info.value), str(config)


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ('parallelism = "32"', ["parallelism", "'32'", "an integer >= 1"]),
        ("parallelism = 0", ["parallelism", "= 0", "an integer >= 1"]),
        ("parallelism = true", ["parallelism", "True", "an integer"]),
        ("drain_timeout = -1.0", ["drain_timeout", "-1.0", ">= 0"]),
        ("drain_timeout = inf", ["drain_timeout", "inf", ">= 0"]),
        ("dagbag_import_timeout = 0", ["dagbag_import_timeout", "> 0"]),
        ("dag_dir_list_interval = 0.0", ["dag_dir_list_interval", "> 0"]),
        ("default_schedule_seconds = 0", ["default_schedule_seconds", ">= 1"]),
        ('catchup_by_default = "yes"', ["catchup_by_default", "'yes'", "true or false"]),
        ('durability = "fast"', ["durability", "'fast'", "'normal', 'full'"]),
        ('log_format = "xml"', ["log_format", "'xml'", "'auto', 'json', 'console'"]),
        ('log_level = "verbose"', ["log_level", "'verbose'", "'debug', 'info'"]),
        ('default_timezone = "Europe/Berln"', ["default_timezone", "did you mean 'Europe/Berlin'"]),
        ('default_timezone = "Mars/Olympus"', ["default_timezone", "'Mars/Olympus'", "IANA"]),
        ('dags_folder = ""', ["dags_folder", "''", "a non-empty path"]),
        ("database = 5", ["database", "5", "a non-empty path"]),
        ("pools = 3", ["pools", "3", "a table"]),
        ("[pools]\napi = 0", ["pools.api", "0", ">= 1"]),
        ('[pools]\napi = "3"', ["pools.api", "'3'", "an integer"]),
        ('[pools]\n"a b" = 2', ["pools.a b", "2", "pool names"]),
    ],
)
def test_file_value_errors(tmp_path: Path, text: str, fragments: list[str]) -> None:
    message, path = file_error(tmp_path, text + "\n")
    assert f"from config file {path}" in message
    for fragment in fragments:
        assert fragment in message


def test_unknown_key_in_file_suggests_the_closest(tmp_path: Path) -> None:
    message, path = file_error(tmp_path, "paralelism = 4\n")
    assert "unknown setting 'paralelism'" in message
    assert path in message
    assert "did you mean 'parallelism'?" in message


def test_unknown_table_in_file(tmp_path: Path) -> None:
    message, _ = file_error(tmp_path, "[scheduler]\nparallelism = 4\n")
    assert "unknown setting 'scheduler'" in message


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    message, path = file_error(tmp_path, "parallelism = 4\nlog_level info\n")
    assert path in message
    assert "not valid TOML" in message
    assert "line 2" in message


def test_file_that_is_not_utf8(tmp_path: Path) -> None:
    config = tmp_path / "latin1.toml"
    config.write_bytes('default_timezone = "Zürich"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(config_file=config, environ={})


def test_missing_config_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as info:
        load_settings(config_file=missing, environ={})
    assert f"cannot read config file {missing} (from --config)" in str(info.value)
    assert "No such file" in str(info.value)
    with pytest.raises(ConfigError) as info:
        load_settings(environ={"ASYNCFLOW_CONFIG": str(missing)})
    assert "environment variable ASYNCFLOW_CONFIG" in str(info.value)


def test_config_file_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*directory"):
        load_settings(config_file=tmp_path, environ={})


@pytest.mark.parametrize(
    ("variable", "value", "fragments"),
    [
        ("ASYNCFLOW_PARALLELISM", "abc", ["parallelism", "'abc'", "an integer >= 1"]),
        ("ASYNCFLOW_PARALLELISM", "0", ["parallelism", "'0'", "an integer >= 1"]),
        ("ASYNCFLOW_DRAIN_TIMEOUT", "soon", ["drain_timeout", "'soon'", "seconds >= 0"]),
        ("ASYNCFLOW_DRAIN_TIMEOUT", "nan", ["drain_timeout", "'nan'", "seconds >= 0"]),
        ("ASYNCFLOW_CATCHUP_BY_DEFAULT", "maybe", ["catchup_by_default", "'maybe'", "yes/no"]),
        ("ASYNCFLOW_DURABILITY", "fast", ["durability", "'fast'", "'normal', 'full'"]),
        ("ASYNCFLOW_DEFAULT_TIMEZONE", "utc+2", ["default_timezone", "'utc+2'", "IANA"]),
        ("ASYNCFLOW_POOLS", "api", ["pools", "'api'", "name=slots pairs"]),
        ("ASYNCFLOW_POOLS", "api=1,api=2", ["pools", "'api' repeats"]),
        ("ASYNCFLOW_POOLS", "api=x", ["pools.api", "'x'", "an integer >= 1"]),
        ("ASYNCFLOW_POOLS", "api=0", ["pools.api", "'0'", "an integer >= 1"]),
    ],
)
def test_environment_errors(variable: str, value: str, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={variable: value})
    message = str(info.value)
    assert f"from environment variable {variable}" in message
    for fragment in fragments:
        assert fragment in message


@pytest.mark.parametrize(
    ("name", "value", "flag", "allowed"),
    [
        ("parallelism", 0, "--parallelism", "an integer >= 1"),
        ("parallelism", "many", "--parallelism", "an integer >= 1"),
        ("dag_dir_list_interval", 0, "--dag-dir-list-interval", "> 0"),
        ("log_level", "loud", "--log-level", "'debug', 'info', 'warning', 'error'"),
    ],
)
def test_flag_errors(name: str, value: object, flag: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, flags={name: value})
    message = str(info.value)
    assert f"invalid {name} = {value!r} from flag {flag}" in message
    assert allowed in message


def test_unknown_flag() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'paralelism' in flags: did you mean"):
        load_settings(environ={}, flags={"paralelism": 3})


def test_an_overridden_bad_value_is_still_an_error(tmp_path: Path) -> None:
    config = write(tmp_path / "af.toml", "parallelism = 0\n")
    with pytest.raises(ConfigError, match="parallelism"):
        load_settings(config_file=config, environ={}, flags={"parallelism": 4})


def test_config_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        load_settings(environ={"ASYNCFLOW_PARALLELISM": "x"})


def test_direct_construction_has_static_defaults() -> None:
    assert Settings().home == Path(".asyncflow")
    assert Settings().database == ".asyncflow/asyncflow.db"


def test_max_xcom_bytes_is_a_setting_that_reaches_the_engine() -> None:
    from asyncflow.service.daemon import engine_options

    assert load_settings(environ={}).max_xcom_bytes == 1 << 20
    settings = load_settings(environ={"ASYNCFLOW_MAX_XCOM_BYTES": "4096"})
    assert engine_options(settings)["max_xcom_bytes"] == 4096
    with pytest.raises(ConfigError, match="ASYNCFLOW_MAX_XCOM_BYTES"):
        load_settings(environ={"ASYNCFLOW_MAX_XCOM_BYTES": "0"})
