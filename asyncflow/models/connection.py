"""`Connection` (a URI's worth of credentials, kept in the engine's database) and `BaseHook`.

``Connection.get("my_db")`` / ``BaseHook.get_connection("my_db")`` looks in the environment
(``ASYNCFLOW_CONN_MY_DB`` / ``AIRFLOW_CONN_MY_DB``: a URI such as
``postgres://user:p%40ss@host:5432/db?sslmode=require``, or a JSON object of the fields), then
in the database of the engine running the task. Passwords, and extra fields with secret-looking
names, are masked in task logs once read. Manage connections with
``asyncflow connections list/get/add/delete``.
"""

from __future__ import annotations

import json
import logging
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit

from asyncflow.exceptions import AsyncflowError
from asyncflow.models.secrets import current_backend, env_connection, mask_secret

__all__ = ["BaseHook", "Connection", "ConnectionAccessor", "ConnectionNotFound"]

_FIELDS = ("conn_type", "description", "host", "schema", "login", "password", "port", "extra")


class ConnectionNotFound(AsyncflowError, KeyError):
    def __init__(self, conn_id: str, engine: bool) -> None:
        self.conn_id = conn_id
        where = "the environment and the engine's database" if engine else "the environment"
        super().__init__(
            f"Connection {conn_id!r} does not exist in {where}: add it with "
            f"`asyncflow connections add {conn_id} --conn-uri URI`, or export "
            f"ASYNCFLOW_CONN_{conn_id.upper()}=URI"
        )

    def __str__(self) -> str:
        return str(self.args[0])


class Connection:
    """Airflow's Connection: conn_type, host, schema, login, password, port and JSON extra."""

    def __init__(
        self,
        conn_id: str | None = None,
        conn_type: str | None = None,
        description: str | None = None,
        host: str | None = None,
        login: str | None = None,
        password: str | None = None,
        schema: str | None = None,
        port: int | None = None,
        extra: str | dict[str, Any] | None = None,
        uri: str | None = None,
    ) -> None:
        self.conn_id = conn_id
        self.description = description
        self.conn_type: str | None
        self.host: str | None
        self.login: str | None
        self.password: str | None
        self.schema: str | None
        self.port: int | None
        self.extra: str | None
        if uri is not None:
            if any(v is not None for v in (conn_type, host, login, password, schema, port)):
                raise ValueError(
                    f"Connection {conn_id!r}: give either uri= or the separate fields, not both"
                )
            self._parse(uri)
            if extra is not None:
                self.extra = extra if isinstance(extra, str) else json.dumps(extra)
            return
        self.conn_type = conn_type
        self.host = host
        self.login = login
        self.password = password
        self.schema = schema
        self.port = int(port) if port is not None else None
        self.extra = extra if extra is None or isinstance(extra, str) else json.dumps(extra)

    def __repr__(self) -> str:
        return f"<Connection {self.conn_id!r}: {self.conn_type}://{self.host or ''}>"

    def _parse(self, uri: str) -> None:
        if "://" not in uri:
            raise ValueError(
                f"Connection {self.conn_id!r}: {uri!r} is not a URI: write it as "
                "type://login:password@host:port/schema?extra=value"
            )
        scheme, rest = uri.split("://", 1)
        parts = urlsplit(f"//{rest}")
        conn_type = scheme.replace("-", "_")
        self.conn_type = "postgres" if conn_type == "postgresql" else conn_type
        self.host = unquote(parts.hostname) if parts.hostname else None
        self.schema = unquote(parts.path[1:]) if parts.path[1:] else None
        self.login = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        try:
            self.port = parts.port
        except ValueError as exc:
            raise ValueError(f"Connection {self.conn_id!r}: {exc} in {uri!r}") from None
        self.extra = None
        if parts.query:
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            self.extra = query["__extra__"] if "__extra__" in query else json.dumps(query)

    @property
    def extra_dejson(self) -> dict[str, Any]:
        """`extra` as a dict ({} when empty or not JSON)."""
        if not self.extra:
            return {}
        try:
            value = json.loads(self.extra)
        except json.JSONDecodeError:
            return {}
        return value if isinstance(value, dict) else {}

    def get_uri(self) -> str:
        """The connection as a URI that `Connection(uri=...)` parses back to the same fields."""
        uri = f"{(self.conn_type or '').replace('_', '-')}://"
        if self.login is not None or self.password is not None:
            uri += quote(self.login or "", safe="")
            if self.password is not None:
                uri += ":" + quote(self.password, safe="")
            uri += "@"
        if self.host:
            uri += quote(self.host, safe="")
        if self.port is not None:
            uri += f":{self.port}"
        if self.schema:
            uri += "/" + quote(self.schema, safe="")
        extra = self.extra_dejson
        if self.extra:
            if extra and all(isinstance(v, str) for v in extra.values()):
                query = urlencode(extra)
            else:
                query = urlencode({"__extra__": self.extra})
            uri += ("?" if self.schema else "/?") + query
        return uri

    def to_dict(self) -> dict[str, Any]:
        fields = {name: getattr(self, name) for name in _FIELDS}
        return {"conn_id": self.conn_id, **fields}

    @classmethod
    def from_json(cls, value: str, conn_id: str | None = None) -> Connection:
        try:
            fields = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"Connection {conn_id!r}: not JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise ValueError(f"Connection {conn_id!r}: the JSON must be an object")
        unknown = set(fields) - {*_FIELDS, "conn_id"}
        if unknown:
            raise ValueError(f"Connection {conn_id!r}: unknown fields {sorted(unknown)}")
        fields.setdefault("conn_id", conn_id)
        return cls(**fields)

    @classmethod
    def get(cls, conn_id: str) -> Connection:
        """The connection from the environment, else from the engine's database."""
        text = env_connection(conn_id)
        backend = current_backend.get()
        if text is not None:
            text = text.strip()
            conn = cls.from_json(text, conn_id) if text.startswith("{") else cls(conn_id, uri=text)
        elif backend is not None and (fields := backend.get_connection(conn_id)) is not None:
            conn = cls(conn_id=conn_id, **fields)
        else:
            raise ConnectionNotFound(conn_id, backend is not None)
        mask_secret(conn.password)
        mask_secret(conn.extra_dejson)
        return conn

    get_connection_from_secrets = get


class BaseHook:
    """The base of hooks: `get_connection` and a `log`."""

    def __init__(self, logger_name: str | None = None) -> None:
        self.log = logging.getLogger(logger_name or f"asyncflow.hooks.{type(self).__name__}")

    @classmethod
    def get_connection(cls, conn_id: str) -> Connection:
        return Connection.get(conn_id)


class ConnectionAccessor:
    """The template context's `conn`: `{{ conn.my_db.host }}`, `{{ conn.get('my_db') }}`."""

    def __getattr__(self, conn_id: str) -> Connection:
        if conn_id.startswith("__"):
            raise AttributeError(conn_id)
        return Connection.get(conn_id)

    def __getitem__(self, conn_id: str) -> Connection:
        return Connection.get(conn_id)

    def get(self, conn_id: str, default: Any = None) -> Any:
        try:
            return Connection.get(conn_id)
        except ConnectionNotFound:
            return default

    def __repr__(self) -> str:
        return "<conn: .CONN_ID>"
