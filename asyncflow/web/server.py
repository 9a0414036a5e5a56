"""The daemon's web server: uvicorn on the daemon's own event loop, in its task group.

`start_web(tg, engine, settings)` binds `web_listen` at once (a taken port fails the start
with a message that names the setting), then serves until `WebServer.stop()`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import anyio
import uvicorn

from asyncflow.engine.engine import Engine
from asyncflow.exceptions import ConfigError
from asyncflow.logs import get_logger
from asyncflow.web.app import create_app
from asyncflow.web.auth import TokenFile
from asyncflow.web.stream import EventHub

log = get_logger("asyncflow.web")

TOKEN_FILE = "api-token"


class _Server(uvicorn.Server):
    """uvicorn without its signal handlers: the daemon owns SIGTERM and SIGINT."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(listen: str) -> socket.socket:
    """A listening socket for `host:port` or `unix:PATH`."""
    try:
        if listen.startswith("unix:"):
            path = Path(listen.removeprefix("unix:"))
            path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(FileNotFoundError):
                if path.is_socket():
                    path.unlink()  # left by a daemon that died; the database lock is ours
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.bind(str(path))
            os.chmod(path, 0o600)
        else:
            host, _, port = listen.rpartition(":")
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, int(port)))
        sock.listen(128)
        sock.setblocking(False)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on web_listen = {listen!r}: {exc.strerror or exc}; choose another "
            "address, stop what holds it, or set web_listen = 'off'"
        ) from None
    return sock


def address(sock: socket.socket) -> str:
    name = sock.getsockname()
    if isinstance(name, str):
        return f"unix:{name}"
    host, port = name[0], name[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def loopback(listen: str) -> bool:
    if listen.startswith("unix:"):
        return True
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class WebServer:
    def __init__(
        self, server: _Server, sock: socket.socket, hub: EventHub, token_file: Path
    ) -> None:
        self.server = server
        self.token_file = token_file
        self.hub = hub
        self.sock = sock
        self.done = anyio.Event()
        self.url = address(sock)

    async def run(self) -> None:
        try:
            await self.server.serve(sockets=[self.sock])
        finally:
            self.sock.close()
            self.done.set()

    async def stop(self) -> None:
        """Close every event stream, finish the requests in flight (2 s at most), stop."""
        self.hub.close()
        self.server.should_exit = True
        with anyio.move_on_after(5):
            await self.done.wait()


async def start_web(
    tg: anyio.abc.TaskGroup, engine: Engine, *, listen: str, home: Path
) -> WebServer | None:
    """Serve the API and dashboard on `listen` (None when it is 'off')."""
    if listen == "off":
        return None
    token = TokenFile.create(home / TOKEN_FILE)
    token()  # an unreadable or empty token file fails the start, not the first request
    app = create_app(engine, token=token)
    sock = bind(listen)
    config = uvicorn.Config(
        app, lifespan="on", log_config=None, access_log=False, timeout_graceful_shutdown=2,
        proxy_headers=False, server_header=False,
    )  # fmt: skip
    server = _Server(config)
    web = WebServer(server, sock, app.state.hub, token.path)
    tg.start_soon(web.run)
    if not loopback(listen):
        log.warning("the web server listens beyond this host without TLS: put a reverse proxy "
                    "with TLS in front of it, or listen on 127.0.0.1", listen=listen)  # fmt: skip
    log.info("web server listening", url=web.url, token_file=str(token.path))
    return web
