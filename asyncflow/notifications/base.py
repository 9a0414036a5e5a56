"""`BaseNotifier`: a callback object with templated fields, as Airflow's.

Subclass it, list the attributes to render in `template_fields`, and implement
`notify(context)`. An instance is a callback: give it to `on_failure_callback`,
`on_success_callback`, `on_retry_callback` (of a task or a DAG), alone or in a list. When it is
called, each template field is rendered with Jinja against the callback's context (the task's,
or the run's for a DAG callback), on a copy, so one notifier serves every task that lists it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any, ClassVar

__all__ = ["BaseNotifier"]


def _render(value: Any, context: dict[str, Any], env: Any) -> Any:
    if isinstance(value, str):
        if "{{" not in value and "{%" not in value:
            return value
        return env.from_string(value).render(context)
    if isinstance(value, list | tuple | set):
        return type(value)(_render(v, context, env) for v in value)
    if isinstance(value, dict):
        return {k: _render(v, context, env) for k, v in value.items()}
    return value


class BaseNotifier:
    template_fields: ClassVar[Sequence[str]] = ()

    def notify(self, context: dict[str, Any]) -> None:
        """Send the notification; `context` is the callback's context."""
        raise NotImplementedError(f"{type(self).__name__} must implement notify(context)")

    def render_template_fields(self, context: dict[str, Any]) -> BaseNotifier:
        """A copy of this notifier with its template fields rendered against `context`."""
        import jinja2

        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
        rendered = copy.copy(self)
        for name in self.template_fields:
            setattr(rendered, name, _render(getattr(self, name), context, env))
        return rendered

    def __call__(self, context: dict[str, Any]) -> None:
        self.render_template_fields(context).notify(context)
