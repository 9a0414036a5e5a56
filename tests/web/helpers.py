"""The daemon with its web server on a free loopback port, and an httpx client for it."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.daemon.helpers import Daemon, daemon, wait_for


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Web:
    daemon: Daemon
    url: str

    @property
    def token_file(self) -> Path:
        return self.daemon.root / "state" / "api-token"

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def client(self, **kwargs: object) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=15, **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def web_daemon(root: Path, dags: dict[str, str], **settings: str) -> Iterator[Web]:
    port = free_port()
    with daemon(root, web_listen=f"127.0.0.1:{port}", **settings) as d:
        for name, source in dags.items():
            d.write_dag(name, source)
        d.start()
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: _answers(url), what="the web server")
        yield Web(d, url)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v2/version", timeout=2).status_code == 200
    except httpx.TransportError:
        return False
