"""E-mail: `send_email(to, subject, html_content)` and `EmailNotifier`, over SMTP.

Settings come from the arguments, else the environment, else the defaults:

    ASYNCFLOW_SMTP_HOST (localhost)   ASYNCFLOW_SMTP_PORT (25; 465 with SSL)
    ASYNCFLOW_SMTP_FROM (asyncflow@<host name>)
    ASYNCFLOW_SMTP_USER / ASYNCFLOW_SMTP_PASSWORD (no login when unset)
    ASYNCFLOW_SMTP_STARTTLS (false)   ASYNCFLOW_SMTP_SSL (false)   ASYNCFLOW_SMTP_TIMEOUT (30)

Airflow's names (``AIRFLOW__SMTP__SMTP_HOST``, ``..._PORT``, ``..._MAIL_FROM``, ``..._USER``,
``..._PASSWORD``, ``..._STARTTLS``, ``..._SSL``, ``..._TIMEOUT``) are read too, so a ported
setup keeps working. Sending blocks: as a callback it runs in a worker thread.
"""

from __future__ import annotations

import os
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from email.message import EmailMessage
from typing import Any, ClassVar

from asyncflow.exceptions import AsyncflowError
from asyncflow.notifications.base import BaseNotifier

__all__ = ["EmailNotifier", "SmtpSettings", "send_email"]

_ENV = {
    "host": ("ASYNCFLOW_SMTP_HOST", "AIRFLOW__SMTP__SMTP_HOST"),
    "port": ("ASYNCFLOW_SMTP_PORT", "AIRFLOW__SMTP__SMTP_PORT"),
    "mail_from": ("ASYNCFLOW_SMTP_FROM", "AIRFLOW__SMTP__SMTP_MAIL_FROM"),
    "user": ("ASYNCFLOW_SMTP_USER", "AIRFLOW__SMTP__SMTP_USER"),
    "password": ("ASYNCFLOW_SMTP_PASSWORD", "AIRFLOW__SMTP__SMTP_PASSWORD"),
    "starttls": ("ASYNCFLOW_SMTP_STARTTLS", "AIRFLOW__SMTP__SMTP_STARTTLS"),
    "ssl": ("ASYNCFLOW_SMTP_SSL", "AIRFLOW__SMTP__SMTP_SSL"),
    "timeout": ("ASYNCFLOW_SMTP_TIMEOUT", "AIRFLOW__SMTP__SMTP_TIMEOUT"),
}


def _flag(name: str, text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise AsyncflowError(f"SMTP setting {name}={text!r} is not true or false")


@dataclass(frozen=True)
class SmtpSettings:
    host: str = "localhost"
    port: int | None = None
    mail_from: str | None = None
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    ssl: bool = False
    timeout: float = 30.0

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SmtpSettings:
        env = os.environ if environ is None else environ
        found: dict[str, str] = {}
        for field, names in _ENV.items():
            for name in names:
                if env.get(name):
                    found[field] = env[name]
                    break
        values: dict[str, Any] = {}
        for field, text in found.items():
            if field == "port":
                if not text.isdigit():
                    raise AsyncflowError(f"SMTP port {text!r} is not a number")
                values["port"] = int(text)
            elif field in ("starttls", "ssl"):
                values[field] = _flag(field, text)
            elif field == "timeout":
                values["timeout"] = float(text)
            else:
                values[field] = text
        return cls(**values)

    def sender(self) -> str:
        return self.mail_from or f"asyncflow@{socket.getfqdn()}"


def _addresses(value: str | Iterable[str] | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [a.strip() for a in value.replace(";", ",").split(",") if a.strip()]
    return [str(a).strip() for a in value if str(a).strip()]


def send_email(
    to: str | Iterable[str],
    subject: str,
    html_content: str,
    *,
    cc: str | Iterable[str] | None = None,
    bcc: str | Iterable[str] | None = None,
    from_email: str | None = None,
    settings: SmtpSettings | None = None,
    **overrides: Any,
) -> None:
    """Send one HTML mail over SMTP (settings: `settings`, else the environment; `overrides`
    such as host=, port= replace single settings)."""
    conf = settings or SmtpSettings.from_environment()
    if overrides:
        conf = replace(conf, **overrides)
    recipients = _addresses(to) + _addresses(cc) + _addresses(bcc)
    if not recipients:
        raise AsyncflowError(f"e-mail {subject!r} has no recipient: give to=")
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = from_email or conf.sender()
    message["To"] = ", ".join(_addresses(to))
    if cc:
        message["Cc"] = ", ".join(_addresses(cc))
    message.set_content("This message is HTML: use a mail reader that shows HTML.")
    message.add_alternative(html_content, subtype="html")
    port = conf.port or (465 if conf.ssl else 25)
    try:
        client: smtplib.SMTP
        if conf.ssl:
            client = smtplib.SMTP_SSL(conf.host, port, timeout=conf.timeout,
                                      context=ssl.create_default_context())  # fmt: skip
        else:
            client = smtplib.SMTP(conf.host, port, timeout=conf.timeout)
        with client:
            if conf.starttls:
                client.starttls(context=ssl.create_default_context())
            if conf.user and conf.password:
                client.login(conf.user, conf.password)
            client.send_message(message, to_addrs=recipients)
    except (OSError, smtplib.SMTPException) as exc:
        raise AsyncflowError(
            f"e-mail {subject!r} to {recipients} could not be sent through SMTP server "
            f"{conf.host}:{port}: {type(exc).__name__}: {exc}; check the ASYNCFLOW_SMTP_* "
            "settings"
        ) from exc


_SUBJECT = (
    "asyncflow alert: DAG {{ dag.dag_id }}{% if ti is defined %}, task {{ ti.task_id }}{% endif %}"
)
_BODY = (
    "<p>DAG <b>{{ dag.dag_id }}</b>, run <b>{{ run_id }}</b>"
    "{% if ti is defined %}, task <b>{{ ti.task_id }}</b>, try {{ ti.try_number }}{% endif %}.</p>"
    "{% if exception is defined and exception %}<pre>{{ exception }}</pre>{% endif %}"
)


class EmailNotifier(BaseNotifier):
    """Mail about a task or a run: `on_failure_callback=[EmailNotifier(to="ops@x")]`.
    `subject` and `html_content` are templates rendered with the callback's context."""

    template_fields: ClassVar[tuple[str, ...]] = ("to", "subject", "html_content", "cc", "bcc")

    def __init__(
        self,
        *,
        to: str | Iterable[str],
        subject: str | None = None,
        html_content: str | None = None,
        from_email: str | None = None,
        cc: str | Iterable[str] | None = None,
        bcc: str | Iterable[str] | None = None,
        smtp: SmtpSettings | None = None,
    ) -> None:
        if not _addresses(to):
            raise AsyncflowError("EmailNotifier needs at least one address in to=")
        self.to = to
        self.subject = subject or _SUBJECT
        self.html_content = html_content or _BODY
        self.from_email = from_email
        self.cc = cc
        self.bcc = bcc
        self.smtp = smtp

    def notify(self, context: dict[str, Any]) -> None:
        send_email(
            self.to, self.subject, self.html_content, cc=self.cc, bcc=self.bcc,
            from_email=self.from_email, settings=self.smtp,
        )  # fmt: skip
