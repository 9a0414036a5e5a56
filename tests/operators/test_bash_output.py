"""Bounded output: stdout is split into lines in linear time and bounded memory, and a return
value or last line above `max_xcom_bytes` fails the attempt with an error naming the task and
the size."""

from __future__ import annotations

import time

import pytest

from asyncflow import DAG, task
from asyncflow.engine.context import DEFAULT_MAX_XCOM_BYTES
from asyncflow.operators import BashOperator, PythonOperator
from asyncflow.operators.bash import LineReader
from tests.engine.support import run_dag


def test_the_line_reader_is_linear_and_keeps_a_bounded_head() -> None:
    reader = LineReader(keep=1000)
    chunk = b"x" * 65536
    started = time.perf_counter()
    for _ in range(1600):  # one 100 MiB line, in the chunks a pipe gives
        assert reader.feed(chunk) == []
        assert reader._kept <= 1000  # memory stays bounded while the line grows
    line = reader.end()
    elapsed = time.perf_counter() - started
    assert line is not None
    assert (len(line.head), line.size) == (1000, 1600 * 65536)
    assert elapsed < 2.0  # the quadratic scan took 89 s on 100 MB; this is ~0.05 s


def test_the_line_reader_splits_lines_across_chunks() -> None:
    reader = LineReader(keep=5)
    lines = [*reader.feed(b"ab"), *reader.feed(b"c\nlong line\n\nta"), *reader.feed(b"il")]
    end = reader.end()
    assert [(x.head, x.size) for x in lines] == [(b"abc", 3), (b"long ", 9), (b"", 0)]
    assert end is not None and (end.head, end.size) == (b"tail", 4)
    assert lines[1].text("utf-8") == "long  [... line of 9 bytes cut at 5]"


@pytest.mark.anyio
async def test_a_last_line_above_max_xcom_bytes_fails_the_task_naming_it_and_the_size() -> None:
    with DAG("big_line", schedule=None, max_xcom_bytes=1000) as dag:
        BashOperator(task_id="huge", bash_command="head -c 3000000 /dev/zero | tr '\\0' x")
        BashOperator(task_id="fits", bash_command="head -c 900 /dev/zero | tr '\\0' x")
    result = await run_dag(dag)
    assert result.states == {"huge": "failed", "fits": "success"}
    error = result.tis["huge"].error or ""
    assert "'huge'" in error and "3,000,000 bytes" in error and "max_xcom_bytes" in error
    assert result.xcoms["fits"] == "x" * 900


@pytest.mark.anyio
async def test_a_return_value_above_the_engine_limit_fails_the_task() -> None:
    with DAG("big_return", schedule=None) as dag:
        PythonOperator(task_id="big", python_callable=lambda: "y" * 5000)

        @task
        def small() -> str:
            return "ok"

        small()
    result = await run_dag(dag, max_xcom_bytes=4096)
    assert result.states == {"big": "failed", "small": "success"}
    assert "'big'" in (result.tis["big"].error or "")
    assert "5,002 bytes" in (result.tis["big"].error or "")  # its JSON text, quotes included


@pytest.mark.anyio
async def test_the_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_XCOM_BYTES == 1 << 20
    with DAG("default_limit", schedule=None) as dag:
        PythonOperator(task_id="over", python_callable=lambda: "z" * (1 << 20))
        PythonOperator(task_id="under", python_callable=lambda: "z" * 1000)
    result = await run_dag(dag)
    assert result.states == {"over": "failed", "under": "success"}
