"""Restore what commands run in this process change (see `restore_process_state`)."""

from tests.daemon.helpers import restore_process_state

__all__ = ["restore_process_state"]
