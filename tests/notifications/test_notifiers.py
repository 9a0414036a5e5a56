"""Notifiers as callbacks: a BaseNotifier subclass renders its template fields and is called
from on_failure_callback=[...]; EmailNotifier / send_email deliver to an SMTP server (a local
aiosmtpd server in a thread)."""

from __future__ import annotations

import email
import socket
from collections.abc import Iterator
from email.message import Message
from typing import Any, ClassVar

import anyio
import pytest

from asyncflow import DAG, AsyncflowError, Engine, task
from asyncflow.notifications import BaseNotifier, EmailNotifier, SmtpSettings, send_email
from tests.engine.support import finish

pytestmark = pytest.mark.anyio


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, SmtpSettings]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:  # a free port (the controller checks it by connecting)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield box, SmtpSettings(host="127.0.0.1", port=port, mail_from="flow@example.org")
    finally:
        controller.stop()


async def until(condition: Any) -> None:
    """Callbacks run after the commit that records the failure: wait for them, bounded."""
    with anyio.fail_after(10):
        while not condition():
            await anyio.sleep(0.01)


def html_of(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return payload.decode()
    raise AssertionError("no HTML part")


class Recorder(BaseNotifier):
    template_fields: ClassVar[tuple[str, ...]] = ("message",)
    calls: ClassVar[list[str]] = []

    def __init__(self, message: str) -> None:
        self.message = message

    def notify(self, context: dict[str, Any]) -> None:
        Recorder.calls.append(self.message)


async def test_a_notifier_in_a_callback_list_is_rendered_per_call() -> None:
    Recorder.calls.clear()
    shared = Recorder("{{ ti.task_id }} failed in {{ dag.dag_id }}")
    with DAG("notified", schedule=None, on_failure_callback=[Recorder("run {{ run_id }}")]) as dag:
        for name in ("a", "b"):

            @task(task_id=name, on_failure_callback=[shared])
            def broken() -> None:
                raise RuntimeError("no")

            broken()
    async with Engine(dags=[dag], database=":memory:") as engine:
        result = await finish(engine, "notified", run_id="r1")
        await until(lambda: len(Recorder.calls) == 3)
    assert result.states == {"a": "failed", "b": "failed"}
    assert sorted(Recorder.calls) == ["a failed in notified", "b failed in notified", "run r1"]
    assert shared.message == "{{ ti.task_id }} failed in {{ dag.dag_id }}"  # a copy rendered


def test_send_email_delivers_html_to_every_recipient(
    smtp: tuple[Mailbox, SmtpSettings],
) -> None:
    box, settings = smtp
    send_email("a@x.org, b@x.org", "hello", "<b>hi</b>", cc=["c@x.org"], settings=settings)
    [(recipients, message)] = box.messages
    assert recipients == ["a@x.org", "b@x.org", "c@x.org"]
    assert message["Subject"] == "hello" and message["From"] == "flow@example.org"
    assert html_of(message).strip() == "<b>hi</b>"


def test_settings_come_from_the_environment_with_airflows_names_too() -> None:
    settings = SmtpSettings.from_environment(
        {"ASYNCFLOW_SMTP_HOST": "mail", "AIRFLOW__SMTP__SMTP_PORT": "2525",
         "AIRFLOW__SMTP__SMTP_MAIL_FROM": "af@x", "ASYNCFLOW_SMTP_STARTTLS": "true"}
    )  # fmt: skip
    assert (settings.host, settings.port, settings.mail_from, settings.starttls) == (
        "mail", 2525, "af@x", True,
    )  # fmt: skip
    with pytest.raises(AsyncflowError, match="not a number"):
        SmtpSettings.from_environment({"ASYNCFLOW_SMTP_PORT": "abc"})


def test_an_unreachable_server_is_an_error_naming_it() -> None:
    settings = SmtpSettings(host="127.0.0.1", port=1, timeout=2)
    with pytest.raises(AsyncflowError, match=r"127\.0\.0\.1:1"):
        send_email("a@x.org", "s", "b", settings=settings)


async def test_email_notifier_on_failure_mails_the_task_and_its_error(
    smtp: tuple[Mailbox, SmtpSettings],
) -> None:
    box, settings = smtp
    with DAG("mailed", schedule=None) as dag:

        @task(on_failure_callback=[EmailNotifier(to="ops@x.org", smtp=settings)])
        def broken() -> None:
            raise RuntimeError("disk full")

        broken()
    async with Engine(dags=[dag], database=":memory:") as engine:
        await finish(engine, "mailed", run_id="r1")
        await until(lambda: box.messages)
    [(recipients, message)] = box.messages
    assert recipients == ["ops@x.org"]
    assert message["Subject"] == "asyncflow alert: DAG mailed, task broken"
    body = html_of(message)
    assert "r1" in body and "disk full" in body
