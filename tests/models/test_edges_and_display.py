"""Edge labels link like `>>`; display-only arguments are accepted and kept; e-mail arguments
that would send mail in Airflow warn by name; Param's form keywords are accepted."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow import DAG, DagDefinitionError, Param, ParamValidationError
from asyncflow.models.docs import EmailNotSentWarning
from asyncflow.models.edges import Label, edge_info
from asyncflow.models.taskgroup import TaskGroup
from asyncflow.operators import EmptyOperator


def test_label_links_both_ways_and_records_the_label() -> None:
    with DAG("labels", schedule=None) as dag:
        a, b, c = (EmptyOperator(task_id=n) for n in "abc")
        a >> Label("small") >> b
        late = Label("late")
        late >> c
        [a, b] >> late
    assert sorted(dag.get_task("b").upstream_task_ids) == ["a"]
    assert sorted(dag.get_task("c").upstream_task_ids) == ["a", "b"]
    assert edge_info(dag)[("a", "b")] == {"label": "small"}
    assert edge_info(dag)[("b", "c")] == {"label": "late"}


def test_label_between_task_groups() -> None:
    with DAG("label_groups", schedule=None) as dag:
        with TaskGroup("g1") as g1:
            EmptyOperator(task_id="x")
        with TaskGroup("g2") as g2:
            EmptyOperator(task_id="y")
        g1 >> Label("then") >> g2
    assert dag.get_task("g2.y").upstream_task_ids == {"g1.x"}
    assert edge_info(dag) == {("g1.x", "g2.y"): {"label": "then"}}


def test_display_arguments_are_kept_and_doc_md_reads_a_markdown_file(tmp_path: Path) -> None:
    doc = tmp_path / "README.md"
    doc.write_text("# Orders\nloads the orders", encoding="utf-8")
    dag_file = tmp_path / "orders.py"
    with DAG(
        "display",
        schedule=None,
        dag_display_name="Orders (daily)",
        owner_links={"data": "https://example.com/team", "ops": "mailto:ops@example.com"},
        doc_md="README.md",
        fileloc=str(dag_file),
    ) as dag:
        task = EmptyOperator(task_id="t", task_display_name="Load ✓", doc_md=str(doc))
        with TaskGroup("g", tooltip="a group", doc_md="no-such-file.md") as group:
            pass
    assert dag.dag_display_name == "Orders (daily)"
    assert dag.doc_md == "# Orders\nloads the orders"
    assert dag.owner_links["ops"] == "mailto:ops@example.com"
    assert task.task_display_name == "Load ✓" and task.doc_md == dag.doc_md
    assert group.tooltip == "a group" and group.doc_md == "no-such-file.md"


def test_an_owner_link_that_is_not_a_link_is_an_error_naming_it() -> None:
    with pytest.raises(DagDefinitionError, match=r"owner_links\['data'\] = 'nope'"):
        DAG("links", schedule=None, owner_links={"data": "nope"})


def test_email_on_failure_with_an_address_warns_naming_the_arguments() -> None:
    with DAG("mail", schedule=None, default_args={"email": "ops@example.com"}):
        with pytest.warns(EmailNotSentWarning, match="email_on_failure=True and email_on_retry"):
            EmptyOperator(task_id="loud")
        with pytest.warns(EmailNotSentWarning, match="task 'retry_only'.*email_on_retry=True"):
            EmptyOperator(task_id="retry_only", email_on_failure=False)


def test_email_arguments_that_send_nothing_in_airflow_do_not_warn(
    recwarn: pytest.WarningsRecorder,
) -> None:
    with DAG("quiet", schedule=None):
        EmptyOperator(task_id="no_address", email_on_failure=True)
        EmptyOperator(
            task_id="off", email="ops@example.com", email_on_failure=False, email_on_retry=False
        )
    assert not [w for w in recwarn if issubclass(w.category, EmailNotSentWarning)]


def test_param_form_keywords_are_accepted_and_string_checks_enforced() -> None:
    param = Param(
        "2024-01-01",
        type="string",
        title="Day",
        description_md="the **day**",
        section="When",
        format="date",
        minLength=10,
    )
    assert param.resolve("day") == "2024-01-01"
    assert param.schema["title"] == "Day"
    with pytest.raises(ParamValidationError, match="is not a 'date'"):
        param.resolve("day", "2024-13-01")
    with pytest.raises(ParamValidationError, match="does not match"):
        Param("x", pattern="^[0-9]+$").resolve("n")
    choice = Param("a", enum=["a", "b"], values_display={"a": "Alpha", "b": "Beta"})
    assert choice.resolve("c", "b") == "b"


def test_a_param_keyword_no_schema_knows_is_named_in_a_warning() -> None:
    with pytest.warns(UserWarning, match=r"\['minimun'\] are neither JSON Schema"):
        Param(1, type="integer", minimun=3)


@pytest.mark.parametrize("text", ["PT15M", "P1D", "PT2H", "P1Y2M3W4DT5H6M7.5S", "pt1s"])
def test_a_duration_param_accepts_iso_8601_durations(text: str) -> None:
    from asyncflow import Param

    assert Param(text, type="string", format="duration").resolve("d") == text


@pytest.mark.parametrize("text", ["P", "PT", "15M", "P1H", "PT1D", "1 day"])
def test_a_duration_param_refuses_what_is_not_one(text: str) -> None:
    from asyncflow import Param, ParamValidationError

    with pytest.raises(ParamValidationError, match="is not a 'duration'"):
        Param("PT1M", type="string", format="duration").resolve("d", text)
