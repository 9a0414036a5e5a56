"""`Variable`: a named setting kept in the engine's database, as Airflow's.

``Variable.get("key")`` looks in the environment (``ASYNCFLOW_VAR_KEY`` / ``AIRFLOW_VAR_KEY``),
then in the database of the engine running the task (see `asyncflow.models.secrets`). Values are
strings; ``Variable.set(key, value, serialize_json=True)`` stores JSON and
``Variable.get(key, deserialize_json=True)`` reads it back. A task calls these without awaiting,
from a sync task's thread or an async task on the loop: each is one indexed SQLite query.
Manage variables with ``asyncflow variables list/get/set/delete/import/export``.
"""

from __future__ import annotations

import json
from typing import Any

from asyncflow.exceptions import AsyncflowError
from asyncflow.models.secrets import (
    SecretsBackend,
    current_backend,
    env_variable,
    is_sensitive,
    mask_secret,
)

__all__ = ["Variable", "VariableAccessor", "VariableNotFound"]

_MISSING: Any = object()


class VariableNotFound(AsyncflowError, KeyError):
    def __init__(self, key: str, engine: bool) -> None:
        self.key = key
        where = "the environment and the engine's database" if engine else "the environment"
        advice = (
            f"set it with `asyncflow variables set {key} VALUE`, or export "
            f"ASYNCFLOW_VAR_{key.upper()}; or pass default_var="
        )
        if not engine:
            advice += (
                " (outside a running task - a DAG file's top level - only environment "
                "variables are seen)"
            )
        super().__init__(f"Variable {key!r} does not exist in {where}: {advice}")

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Variable:
    """Airflow's Variable, as class methods."""

    @classmethod
    def get(cls, key: str, default_var: Any = _MISSING, deserialize_json: bool = False) -> Any:
        text = env_variable(key)
        backend = current_backend.get()
        if text is None and backend is not None:
            text = backend.get_variable(key)
        if text is None:
            if default_var is not _MISSING:
                return default_var
            raise VariableNotFound(key, backend is not None)
        if deserialize_json:
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise AsyncflowError(
                    f"Variable {key!r} is not JSON ({exc}): read it without "
                    "deserialize_json=True, or store it with serialize_json=True"
                ) from None
        else:
            value = text
        if is_sensitive(key):
            mask_secret(value, key)
        return value

    @classmethod
    def set(
        cls,
        key: str,
        value: Any,
        description: str | None = None,
        serialize_json: bool = False,
    ) -> None:
        backend = _backend("Variable.set")
        text = json.dumps(value, indent=2) if serialize_json else str(value)
        backend.set_variable(key, text, description or "")

    @classmethod
    def delete(cls, key: str) -> bool:
        return _backend("Variable.delete").delete_variable(key)

    @classmethod
    def setdefault(cls, key: str, default: Any, deserialize_json: bool = False) -> Any:
        value = cls.get(key, None, deserialize_json)
        if value is None:
            cls.set(key, default, serialize_json=deserialize_json)
            return default
        return value


def _backend(what: str) -> SecretsBackend:
    backend = current_backend.get()
    if backend is None:
        raise AsyncflowError(
            f"{what} needs the engine's database, and no engine is running this code: call "
            "it from a task, or use `asyncflow variables set` from a shell"
        )
    return backend


class _Variables:
    """`{{ var.value.key }}` / `{{ var.json.key }}` in templates (and `.get(key, default)`)."""

    def __init__(self, deserialize_json: bool) -> None:
        self._json = deserialize_json

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__"):
            raise AttributeError(key)
        return Variable.get(key, deserialize_json=self._json)

    def __getitem__(self, key: str) -> Any:
        return Variable.get(key, deserialize_json=self._json)

    def get(self, key: str, default_var: Any = _MISSING) -> Any:
        return Variable.get(key, default_var, deserialize_json=self._json)


class VariableAccessor:
    """The template context's `var`."""

    value = _Variables(deserialize_json=False)
    json = _Variables(deserialize_json=True)

    def __repr__(self) -> str:
        return "<var: .value.KEY, .json.KEY>"
