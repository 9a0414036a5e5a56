"""`PythonSensor`: a callable (sync or async) decides when the condition holds. Its arguments may
be XComArgs (`@task.sensor` passes them), resolved at each poke."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from asyncflow.models.baseoperator import Context, RunsIn
from asyncflow.models.xcom_arg import resolve_references
from asyncflow.operators.python import call_callable
from asyncflow.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = dict(templates_dict) if templates_dict is not None else None

    @property
    def runs_in(self) -> RunsIn:
        return "loop" if inspect.iscoroutinefunction(self.python_callable) else "thread"

    async def poke(self, context: Context) -> Any:
        if self.templates_dict is not None:
            context["templates_dict"] = self.templates_dict
        args = resolve_references(self.op_args, context)
        kwargs = resolve_references(self.op_kwargs, context)
        result = await call_callable(self.python_callable, args, kwargs, context)
        return result if isinstance(result, PokeReturnValue) else bool(result)
