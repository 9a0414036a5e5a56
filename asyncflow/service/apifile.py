"""Where a running daemon's API answers: `<database>.api.json`, beside the lock file.

The daemon writes it (mode 0600) once its web server listens, and removes it when it stops:
`{"url": "http://127.0.0.1:8793" or "unix:/path", "pid": ..., "token_file": ...}`. The CLI
names the daemon by the database, as the lock does, so it finds it whatever home either was
started with. A file left by a daemon that died (kill -9) is recognised: its pid is not the
lock holder's, or is not alive.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from asyncflow.privatefiles import create_private_file

__all__ = ["ApiAddress", "api_file", "read_api_file", "remove_api_file", "write_api_file"]


@dataclass(frozen=True, slots=True)
class ApiAddress:
    url: str
    pid: int
    token_file: Path


def api_file(database: str | os.PathLike[str]) -> Path | None:
    """The address file of `database`, or None for an in-memory database."""
    text = os.fspath(database)
    if text == ":memory:" or not text:
        return None
    return Path(text + ".api.json")


def write_api_file(database: str, url: str, token_file: Path) -> Path | None:
    path = api_file(database)
    if path is None:
        return None
    data = json.dumps({"url": url, "pid": os.getpid(), "token_file": str(token_file)})
    fd = create_private_file(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(fd, "w") as file:
        file.write(data + "\n")
    return path


def remove_api_file(database: str) -> None:
    path = api_file(database)
    if path is not None:
        with contextlib.suppress(FileNotFoundError):
            if read_api_file(database, pid=os.getpid()) is not None:  # ours, not a successor's
                path.unlink()


def read_api_file(database: str, *, pid: int | None) -> ApiAddress | None:
    """The address written by the daemon `pid` (the lock's holder); None when there is no
    file, or it was written by another process (a daemon that died without removing it)."""
    path = api_file(database)
    if path is None or pid is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        address = ApiAddress(str(data["url"]), int(data["pid"]), Path(data["token_file"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return address if address.pid == pid else None
