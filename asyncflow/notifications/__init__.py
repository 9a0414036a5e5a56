"""Notifiers: objects given as callbacks (`on_failure_callback=[EmailNotifier(...)]`) that tell
someone about a task or a run."""

from asyncflow.notifications.base import BaseNotifier
from asyncflow.notifications.smtp import EmailNotifier, SmtpSettings, send_email

__all__ = ["BaseNotifier", "EmailNotifier", "SmtpSettings", "send_email"]
