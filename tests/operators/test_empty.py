"""`EmptyOperator`: succeeds without doing anything, and without a worker."""

from __future__ import annotations

import pytest

from asyncflow import DAG
from asyncflow.operators import EmptyOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


async def test_empty_operators_succeed_and_let_downstream_run() -> None:
    with DAG("empty", schedule=None) as dag:
        EmptyOperator(task_id="start") >> EmptyOperator(task_id="end")
    result = await run_dag(dag)
    assert result.run.state == "success"
    assert result.states == {"start": "success", "end": "success"}
    assert result.xcoms == {"start": None, "end": None}
    assert result.tis["start"].try_number == 0  # done by the scheduler, no attempt started
    assert result.tis["start"].duration == 0.0
