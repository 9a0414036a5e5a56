"""`@asset`: a function that materializes an asset, as a DAG of one task whose outlet is the
asset (Airflow 3's asset decorator).

    @asset(uri="s3://bucket/raw", schedule="@daily")
    def raw():                       # DAG "raw", task "raw", outlets=[Asset("raw", "s3://...")]
        ...

    @asset(schedule=raw)             # runs when `raw` is updated
    def cleaned(self, context, raw): # self: this asset; raw: the asset named "raw" (an inlet)
        ...

The function's parameters are filled as Airflow fills them: `self` is the asset being made,
`context` the task's context, `outlet_events` its accessor, a parameter with a default keeps it,
and any other name is the asset of that name (an inlet of the task).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from asyncflow.models.asset import Asset, AssetWatcher

_RESERVED = ("self", "context", "outlet_events")
#: assets made with @asset in this process, by name: what a parameter of that name receives
_DEFINED: dict[str, Asset] = {}


def _check_signature(f: Callable[..., Any]) -> list[str]:
    inlets = []
    for name, param in inspect.signature(f).parameters.items():
        if param.kind is param.VAR_POSITIONAL or param.kind is param.VAR_KEYWORD:
            raise TypeError(f"@asset {f.__name__}(): '*{name}' / '**{name}' is not supported")
        if param.kind is param.POSITIONAL_ONLY and param.default is param.empty:
            raise TypeError(
                f"@asset {f.__name__}(): positional-only argument {name!r} needs a default"
            )
        if name not in _RESERVED and param.default is param.empty:
            inlets.append(name)
    return inlets


def _asset_named(name: str) -> Asset:
    return _DEFINED.get(name) or Asset(name=name)


class AssetDefinition(Asset):
    """The asset an `@asset` function makes; its `dag` is the DAG that makes it."""

    def __init__(self, *, function: Callable[..., Any], source: asset, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.function = function
        _DEFINED[self.name] = self
        self.dag = source.create_dag(self, function)


class asset:
    """`@asset(schedule=..., name=..., uri=..., group=..., extra=..., watchers=...)`; DAG
    options: dag_id, description, params, tags, is_paused_upon_creation, callbacks."""

    def __init__(
        self,
        *,
        schedule: object,
        name: str | None = None,
        uri: str | None = None,
        group: str = Asset.asset_type,
        extra: Mapping[str, Any] | None = None,
        watchers: Iterable[AssetWatcher] = (),
        dag_id: str | None = None,
        **dag_options: Any,
    ) -> None:
        self.schedule = schedule
        self.name, self.uri, self.group = name, uri, group
        self.extra = dict(extra or {})
        self.watchers = list(watchers)
        self.dag_id = dag_id
        self.dag_options = dag_options

    def __call__(self, f: Callable[..., Any]) -> AssetDefinition:
        if f.__name__ != f.__qualname__:
            raise ValueError(f"@asset {f.__qualname__}: define the function at module level")
        name = self.name or f.__name__
        return AssetDefinition(
            name=name, uri=name if self.uri is None else str(self.uri), group=self.group,
            extra=self.extra, watchers=self.watchers, function=f, source=self,
        )  # fmt: skip

    def create_dag(self, definition: AssetDefinition, f: Callable[..., Any]) -> Any:
        from asyncflow.models.dag import DAG
        from asyncflow.operators.python import PythonOperator

        inlets = _check_signature(f)
        options = {"catchup": False, **self.dag_options}
        with DAG(dag_id=self.dag_id or definition.name, schedule=self.schedule,
                 **options) as dag:  # fmt: skip

            def arguments(context: dict[str, Any]) -> dict[str, Any]:
                kwargs: dict[str, Any] = {}
                for key, param in inspect.signature(f).parameters.items():
                    if param.default is not param.empty:
                        continue
                    if key == "self":
                        kwargs[key] = definition
                    elif key == "context":
                        kwargs[key] = context
                    elif key == "outlet_events":
                        kwargs[key] = context.get("outlet_events")
                    else:
                        kwargs[key] = _asset_named(key)
                return kwargs

            materialize: Callable[..., Any]
            if inspect.iscoroutinefunction(f):

                async def materialize(**context: Any) -> Any:
                    return await f(**arguments(context))
            else:

                def materialize(**context: Any) -> Any:
                    return f(**arguments(context))

            PythonOperator(
                task_id=f.__name__, python_callable=materialize, outlets=[definition],
                inlets=[_asset_named(n) for n in inlets],
            )  # fmt: skip
        return dag
