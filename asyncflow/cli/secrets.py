"""`asyncflow variables ...` and `asyncflow connections ...`: Airflow's Variables and Connections
in the database. A running daemon's tasks see a change at their next `Variable.get()`.

Values of secret-looking keys (password, token, api_key...) and connection passwords are shown
as ``***`` in `list`; `get` prints them (it is what `get` is for)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from asyncflow.cli.context import Cli
from asyncflow.cli.output import CommandError
from asyncflow.exitcodes import EX_USAGE

_MASK = "***"


# -- variables -----------------------------------------------------------------------------------
def list_variables(cli: Cli) -> int:
    from asyncflow.models.secrets import is_sensitive
    from asyncflow.store.base import VariableRow

    none: list[VariableRow] = []
    rows = cli.read_store(lambda store: store.get_variables(), none)
    shown = [
        {"key": r.key, "value": _MASK if is_sensitive(r.key) else r.value,
         "description": r.description}
        for r in rows
    ]  # fmt: skip
    cli.out.rows(shown, ("key", "value", "description"), empty="no variables")
    return 0


def get_variable(cli: Cli) -> int:
    from asyncflow.models.secrets import env_variable

    key = cli.args.key
    value = env_variable(key)
    if value is None:
        value = cli.read_store(lambda store: _variable(store, key), None)
    if value is None:
        if cli.args.default is None:
            raise CommandError(
                f"Variable {key!r} does not exist: set it with `asyncflow variables set {key} "
                "VALUE` (or pass --default)"
            )
        value = cli.args.default
    if cli.args.json:
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CommandError(f"Variable {key!r} is not JSON: {exc}") from None
        print(json.dumps(parsed, indent=2))
    else:
        cli.out.text(value, {"key": key, "value": value})
    return 0


async def _variable(store: Any, key: str) -> str | None:
    for row in await store.get_variables():
        if row.key == key:
            return str(row.value)
    return None


def set_variable(cli: Cli) -> int:
    from asyncflow.store.base import VariableRow

    key, value = cli.args.key, cli.args.value
    if cli.args.json:
        try:
            value = json.dumps(json.loads(value), indent=2)
        except json.JSONDecodeError as exc:
            raise CommandError(f"--json: {value!r} is not JSON: {exc}", EX_USAGE) from None
    row = VariableRow(key, value, cli.args.description or "")
    cli.with_store(lambda store: store.set_variable(row))
    cli.out.text(f"variable {key} set", {"key": key, "set": True})
    return 0


def delete_variable(cli: Cli) -> int:
    key = cli.args.key
    if not cli.with_store(lambda store: store.delete_variable(key)):
        raise CommandError(f"Variable {key!r} does not exist: see `asyncflow variables list`")
    cli.out.text(f"variable {key} deleted", {"key": key, "deleted": True})
    return 0


def import_variables(cli: Cli) -> int:
    """A JSON object {key: value}; a value that is not a string is stored as JSON."""
    from asyncflow.store.base import VariableRow

    path = Path(cli.args.file)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise CommandError(f"cannot read {path}: {exc}", EX_USAGE) from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"{path} is not JSON: {exc}", EX_USAGE) from None
    if not isinstance(data, dict):
        raise CommandError(f"{path}: expected a JSON object of key: value", EX_USAGE)
    rows = [
        VariableRow(str(k), v if isinstance(v, str) else json.dumps(v, indent=2))
        for k, v in data.items()
    ]

    async def write(store: Any) -> None:
        for row in rows:
            await store.set_variable(row)

    cli.with_store(write)
    cli.out.text(f"{len(rows)} variables imported from {path}", {"imported": len(rows)})
    return 0


def export_variables(cli: Cli) -> int:
    """The variables as one JSON object (JSON values as JSON, others as strings)."""
    from asyncflow.store.base import VariableRow

    none: list[VariableRow] = []
    data: dict[str, Any] = {}
    for row in cli.read_store(lambda store: store.get_variables(), none):
        try:
            data[row.key] = json.loads(row.value)
        except json.JSONDecodeError:
            data[row.key] = row.value
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    if cli.args.file == "-":
        print(text, end="")
        return 0
    Path(cli.args.file).write_text(text, encoding="utf-8")
    cli.out.note(f"{len(data)} variables exported to {cli.args.file}")
    return 0


# -- connections ---------------------------------------------------------------------------------
def list_connections(cli: Cli) -> int:
    from asyncflow.store.base import ConnectionRow

    none: list[ConnectionRow] = []
    rows = [
        {"conn_id": r.conn_id, "conn_type": r.conn_type, "host": r.host, "port": r.port,
         "schema": r.schema, "login": r.login, "description": r.description}
        for r in cli.read_store(lambda store: store.get_connections(), none)
    ]  # fmt: skip
    columns = ("conn_id", "conn_type", "host", "port", "schema", "login", "description")
    cli.out.rows(rows, columns, empty="no connections")
    return 0


def get_connection(cli: Cli) -> int:
    from asyncflow.models.connection import Connection, ConnectionNotFound
    from asyncflow.store.base import ConnectionRow

    conn_id = cli.args.conn_id
    none: list[ConnectionRow] = []
    stored = cli.read_store(lambda store: store.get_connections(), none)
    rows = {r.conn_id: r for r in stored}
    try:
        from asyncflow.models.secrets import env_connection

        if env_connection(conn_id) is None and conn_id in rows:
            fields = rows[conn_id]._asdict()
            conn = Connection(**fields)
        else:
            conn = Connection.get(conn_id)
    except ConnectionNotFound as exc:
        raise CommandError(str(exc)) from None
    data = {**conn.to_dict(), "uri": conn.get_uri()}
    cli.out.record(data, ("conn_id", "conn_type", "host", "port", "schema", "login",
                          "password", "extra", "description", "uri"))  # fmt: skip
    return 0


def add_connection(cli: Cli) -> int:
    from asyncflow.models.connection import Connection
    from asyncflow.store.base import ConnectionRow

    args = cli.args
    fields = {
        "conn_type": args.conn_type, "host": args.conn_host, "login": args.conn_login,
        "password": args.conn_password, "schema": args.conn_schema, "port": args.conn_port,
    }  # fmt: skip
    given = [f"--conn-{k.removeprefix('conn_')}" for k, v in fields.items() if v is not None]
    try:
        if args.conn_uri and args.conn_json:
            raise ValueError("give --conn-uri or --conn-json, not both")
        if (args.conn_uri or args.conn_json) and given:
            raise ValueError(f"give --conn-uri/--conn-json or {', '.join(given)}, not both")
        if args.conn_json:
            conn = Connection.from_json(args.conn_json, args.conn_id)
        elif args.conn_uri:
            conn = Connection(args.conn_id, uri=args.conn_uri, extra=args.conn_extra)
        elif args.conn_type:
            conn = Connection(args.conn_id, extra=args.conn_extra, **fields)
        else:
            raise ValueError("give --conn-uri, --conn-json or at least --conn-type")
        if conn.extra:
            json.loads(conn.extra)
    except (ValueError, TypeError) as exc:
        raise CommandError(f"connection {args.conn_id!r}: {exc}", EX_USAGE) from None
    if args.conn_description:
        conn.description = args.conn_description
    row = ConnectionRow(
        args.conn_id, conn.conn_type or "", conn.description or "", conn.host, conn.schema,
        conn.login, conn.password, conn.port, conn.extra,
    )  # fmt: skip
    cli.with_store(lambda store: store.set_connection(row))
    cli.out.text(f"connection {args.conn_id} added", {"conn_id": args.conn_id, "added": True})
    return 0


def delete_connection(cli: Cli) -> int:
    conn_id = cli.args.conn_id
    if not cli.with_store(lambda store: store.delete_connection(conn_id)):
        raise CommandError(
            f"Connection {conn_id!r} does not exist: see `asyncflow connections list`"
        )
    cli.out.text(f"connection {conn_id} deleted", {"conn_id": conn_id, "deleted": True})
    return 0
