"""`asyncflow assets list` / `asyncflow assets events [--asset URI]`: the assets the loaded DAGs
name and their events, read from the database."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from asyncflow.cli.context import Cli

if TYPE_CHECKING:
    from asyncflow.store.base import AssetEventRow, AssetRow

ASSET_COLUMNS = ("name", "uri", "group", "extra", "updated_at")
EVENT_COLUMNS = ("id", "uri", "name", "timestamp", "source_dag_id", "source_run_id",
                 "source_task_id", "source_aliases", "extra")  # fmt: skip


def list_assets(cli: Cli) -> int:
    none: list[AssetRow] = []
    rows = cli.read_store(lambda store: store.get_assets(), none)
    shown = [{**row._asdict(), "extra": json.loads(row.extra)} for row in rows]
    cli.out.rows(shown, ASSET_COLUMNS, empty="no assets")
    return 0


def list_events(cli: Cli) -> int:
    none: list[AssetEventRow] = []
    uri, limit = cli.args.asset, cli.args.limit
    rows = cli.read_store(lambda store: store.get_asset_events(uri=uri, limit=limit), none)
    shown: list[dict[str, Any]] = [
        {**row._asdict(), "extra": json.loads(row.extra),
         "source_aliases": json.loads(row.source_aliases)}
        for row in rows
    ]  # fmt: skip
    cli.out.rows(shown, EVENT_COLUMNS, empty="no asset events")
    return 0
