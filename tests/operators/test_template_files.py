"""Template files: a template field's value ending with the operator's template_ext (BashOperator
`.sh`, `templates_exts=` on PythonOperator / @task) is read from the DAG file's folder or the
DAG's template_searchpath and rendered; `task.render_template()` renders in the DAG's
environment."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from asyncflow import DAG, get_current_context, task
from asyncflow.operators import BashOperator, PythonOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio


async def test_sql_and_sh_files_are_read_and_rendered(tmp_path: Path) -> None:
    (tmp_path / "sql").mkdir()
    (tmp_path / "sql" / "q.sql").write_text("select '{{ params.table }}' -- {{ run_id }}")
    (tmp_path / "hello.sh").write_text("echo from-script {{ params.table }}\n")
    seen: dict[str, object] = {}
    options = {"template_searchpath": str(tmp_path), "user_defined_macros": {"who": "me"}}
    start = datetime(2024, 1, 1)
    with DAG("files", schedule=None, start_date=start, params={"table": "t1"}, **options) as dag:

        @task(templates_exts=[".sql"])
        def taskflow(sql: str, plain: str) -> None:
            seen["taskflow"] = sql
            seen["plain"] = plain
            context = get_current_context()
            seen["rendered"] = context["task"].render_template("{{ who }} {{ ds }}", context)

        def show(templates_dict: dict[str, str]) -> None:
            seen["templates_dict"] = templates_dict["query"]

        shell = BashOperator(task_id="shell", bash_command="hello.sh")
        op = PythonOperator(task_id="op", python_callable=show, templates_exts=[".sql"],
                            templates_dict={"query": "sql/q.sql"})  # fmt: skip
        shell >> op >> taskflow("sql/q.sql", "not-a-file.txt")

    outcome = await run_dag(dag)
    assert outcome.run.state == "success", outcome.tis
    expected = f"select 't1' -- {outcome.run.run_id}"
    assert seen["taskflow"] == seen["templates_dict"] == expected
    assert seen["plain"] == "not-a-file.txt"
    assert seen["rendered"] == f"me {outcome.run.logical_date:%Y-%m-%d}"
    assert outcome.xcoms["shell"] == "from-script t1"


async def test_a_missing_template_file_fails_the_task_naming_it(tmp_path: Path) -> None:
    with DAG("missing", schedule=None, start_date=datetime(2024, 1, 1),
             template_searchpath=str(tmp_path)) as dag:  # fmt: skip
        BashOperator(task_id="shell", bash_command="nowhere.sh")

    outcome = await run_dag(dag)
    assert outcome.states == {"shell": "failed"}
    error = outcome.tis["shell"].error or ""
    assert "'nowhere.sh'" in error and "template_searchpath" in error
