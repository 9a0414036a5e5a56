"""Where `Variable` and `Connection` values come from, and which of them are masked in logs.

Lookup order, as Airflow's secrets backends: the environment first (``ASYNCFLOW_VAR_<KEY>`` /
``ASYNCFLOW_CONN_<CONN_ID>``, and Airflow's ``AIRFLOW_VAR_`` / ``AIRFLOW_CONN_`` for ported
setups; the name upper-cased), then the engine's database. The engine installs its store as the
`SecretsBackend` of the context its tasks run in (`current_backend`); outside an engine (a DAG
file's top level while it loads, a plain script) only the environment answers.

Masking: a value read from a variable or a connection field whose name looks secret (Airflow's
sensitive names: ``password``, ``secret``, ``token``, ``api_key``...), and every connection
password, is registered with `mask_secret`; `redact` replaces each registered value with
``***`` in whatever it is given (the engine passes every line of a task's log through it).
"""

from __future__ import annotations

import os
import re
import threading
from contextvars import ContextVar
from typing import Any, Protocol

__all__ = [
    "SENSITIVE_NAMES",
    "SecretsBackend",
    "current_backend",
    "env_connection",
    "env_variable",
    "is_sensitive",
    "mask_secret",
    "redact",
]

#: a key containing one of these (any case) names a secret (Airflow's sensitive field names)
SENSITIVE_NAMES = frozenset(
    {
        "access_token", "api_key", "apikey", "authorization", "passphrase", "passwd",
        "password", "private_key", "secret", "token", "keyfile_dict", "service_account",
    }
)  # fmt: skip

ENV_PREFIXES = ("ASYNCFLOW_", "AIRFLOW_")


class SecretsBackend(Protocol):
    """What `Variable` and `Connection` read and write through (the engine's store). Each
    method blocks briefly and may be called from any thread."""

    def get_variable(self, key: str) -> str | None: ...

    def set_variable(self, key: str, value: str, description: str) -> None: ...

    def delete_variable(self, key: str) -> bool: ...

    def get_connection(self, conn_id: str) -> dict[str, Any] | None:
        """The connection's fields (conn_type, host, schema, login, password, port, extra,
        description), or None."""
        ...


#: the backend of the engine whose task is running (set by the engine for its tasks)
current_backend: ContextVar[SecretsBackend | None] = ContextVar(
    "asyncflow_secrets_backend", default=None
)


def _env(kind: str, name: str) -> str | None:
    for prefix in ENV_PREFIXES:
        value = os.environ.get(f"{prefix}{kind}_{name.upper()}")
        if value is not None:
            return value
    return None


def env_variable(key: str) -> str | None:
    """``ASYNCFLOW_VAR_<KEY>`` (or ``AIRFLOW_VAR_<KEY>``), if set."""
    return _env("VAR", key)


def env_connection(conn_id: str) -> str | None:
    """``ASYNCFLOW_CONN_<CONN_ID>`` (or ``AIRFLOW_CONN_<CONN_ID>``): a URI or JSON, if set."""
    return _env("CONN", conn_id)


def is_sensitive(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_NAMES)


_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None


def mask_secret(value: Any, name: str | None = None) -> None:
    """Mask `value` in task logs from now on (strings of 3+ characters; a dict or list: each
    value whose key is sensitive, or every string when `name` is sensitive)."""
    global _pattern
    if isinstance(value, dict):
        for key, item in value.items():
            if is_sensitive(str(key)) or (name is not None and is_sensitive(name)):
                mask_secret(item)
            elif isinstance(item, dict | list):
                mask_secret(item, name)
        return
    if isinstance(value, list | tuple):
        for item in value:
            mask_secret(item, name)
        return
    if value is None or isinstance(value, bool):
        return
    text = str(value)
    if len(text) < 3 or text in _secrets:
        return
    with _lock:
        _secrets.add(text)
        longest_first = sorted(_secrets, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(s) for s in longest_first))


def redact(text: str) -> str:
    """`text` with every registered secret replaced by ``***``."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub("***", text)
