"""Who may call the API: a bearer token, or the session cookie a browser gets by signing in
with that token; and a same-origin check on every state-changing request a browser sends.

The daemon keeps its token in `<home>/api-token` (mode 0600), created at first start. Rotate it
by writing a new token into that file: it is re-read when it changes, and the old token and
every session cookie made from it stop working at once (the cookie is an HMAC of the token).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from starlette.requests import HTTPConnection

COOKIE = "asyncflow_session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

TokenSource = Callable[[], str]


class TokenFile:
    """The token kept in a file; read again whenever the file's mtime or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    @classmethod
    def create(cls, path: Path) -> TokenFile:
        """The token file at `path`, written with a fresh random token (mode 0600) if absent."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as file:
                file.write(secrets.token_urlsafe(32) + "\n")
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, 0o600)  # a token others can read is no secret
        return cls(path)

    def __call__(self) -> str:
        st = self.path.stat()
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp != self._stamp:
            token = self.path.read_text(encoding="utf-8").strip()
            if not token:
                raise ValueError(f"the API token file {self.path} is empty: write a token into it")
            self._token, self._stamp = token, stamp
        return self._token


def session_value(token: str) -> str:
    """The cookie a browser holds after signing in: derived from the token, so it ends with it."""
    return hmac.new(token.encode(), b"asyncflow-session", hashlib.sha256).hexdigest()


def bearer(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def same_origin(conn: HTTPConnection) -> bool:
    """Whether a browser request comes from a page of this server (its `Origin` header, else
    `Sec-Fetch-Site`). A request with neither is not from a current browser's page."""
    origin = conn.headers.get("origin")
    if origin is not None:
        host = conn.headers.get("host", "")
        return origin in (f"http://{host}", f"https://{host}")
    return conn.headers.get("sec-fetch-site") == "same-origin"


class Auth:
    """Checks one request against the current token (None: the embedding app authenticates)."""

    def __init__(self, token: str | TokenSource | None) -> None:
        if isinstance(token, str):
            if not token.strip():
                raise ValueError("the API token must not be empty")
            fixed = token.strip()
            self._source: TokenSource | None = lambda: fixed
        else:
            self._source = token

    @property
    def enabled(self) -> bool:
        return self._source is not None

    def token(self) -> str:
        assert self._source is not None
        return self._source()

    def check_token(self, presented: str) -> bool:
        return self._source is None or hmac.compare_digest(presented, self.token())

    def identify(self, conn: HTTPConnection) -> str | None:
        """'bearer', 'cookie' or 'open' (auth disabled) for an allowed caller, else None."""
        if self._source is None:
            return "open"
        token = self.token()
        presented = bearer(conn)
        if presented is not None:
            return "bearer" if hmac.compare_digest(presented, token) else None
        cookie = conn.cookies.get(COOKIE)
        if cookie is not None and hmac.compare_digest(cookie, session_value(token)):
            return "cookie"
        return None
