"""`asyncflow runs list` (and `dags list-runs`): DAG runs from the database, newest first."""

from __future__ import annotations

from typing import TYPE_CHECKING

from asyncflow.cli.context import Cli
from asyncflow.cli.render import RUN_COLUMNS, run_dict

if TYPE_CHECKING:
    from asyncflow.records import DagRun


def print_runs(cli: Cli, dag_id: str | None) -> int:
    from asyncflow.states import DagRunState

    state = cli.args.state
    states = [DagRunState(state)] if state else None
    none: list[DagRun] = []
    runs = cli.read_store(
        lambda store: store.get_dag_runs(dag_id, states=states, limit=cli.args.limit), none
    )
    cli.out.rows([run_dict(r) for r in runs], RUN_COLUMNS, empty="no runs")
    return 0


def list_runs(cli: Cli) -> int:
    return print_runs(cli, cli.args.dag_id)
