"""Params are checked against their whole JSON schema (the `jsonschema` library), as Airflow
checks them; every failure names the DAG, the param and where inside the value it fails."""

from __future__ import annotations

from typing import Any

import pytest

from asyncflow import DAG, DagDefinitionError, Engine, Param, ParamValidationError
from asyncflow.operators import EmptyOperator

pytestmark = pytest.mark.filterwarnings("error::UserWarning")  # no keyword below is unknown


def fails(param: Param, value: Any) -> str:
    with pytest.raises(ParamValidationError) as caught:
        param.resolve("p", value)
    return str(caught.value)


def test_items_check_every_element_of_an_array() -> None:
    numbers = Param([1, 2.5], type="array", items={"type": "number"})
    assert numbers.resolve("p", [3, 4]) == [3, 4]
    message = fails(numbers, [1, "two"])
    assert "param 'p'" in message and "at p[1]" in message and "'two' is not of type 'number'" in (
        message
    )


def test_properties_and_required_check_objects() -> None:
    people = Param(
        [{"name": "Ada", "age": 36}],
        type="array",
        items={
            "type": "object",
            "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 0}},
            "required": ["name"],
        },
    )
    assert people.resolve("p") == [{"name": "Ada", "age": 36}]
    assert "'name' is a required property" in fails(people, [{"age": 3}])
    assert "at p[0]['age']" in fails(people, [{"name": "Bo", "age": -1}])


def test_one_of_any_of_const_and_null_types() -> None:
    either = Param(1, oneOf=[{"type": "integer"}, {"type": "string", "maxLength": 2}])
    assert either.resolve("p", "ab") == "ab"
    fails(either, "abc")
    some = Param(None, anyOf=[{"type": "null"}, {"type": "number", "minimum": 10}])
    assert some.resolve("p", 11) == 11
    fails(some, 9)
    fixed = Param("constant value", const="constant value")
    assert "was expected" in fails(fixed, "other")
    optional = Param(None, type=["null", "string"], format="multiline")  # a form-only format
    assert optional.resolve("p", "two\nlines") == "two\nlines"


def test_array_keywords_and_a_tuple_default() -> None:
    unique = Param((1, 2), type="array", uniqueItems=True, minItems=1, examples=["1", "2"])
    assert unique.resolve("p") == (1, 2)
    assert "non-unique" in fails(unique, [1, 1])
    assert "should be non-empty" in fails(unique, [])


def test_formats_checked_where_airflow_checks_them() -> None:
    assert "is not a 'date-time'" in fails(Param("2024-01-01T00:00:00Z", format="date-time"), "x")
    assert "is not a 'email'" in fails(Param("a@b.c", format="email"), "nobody")
    assert "is not a 'ipv4'" in fails(Param("10.0.0.1", format="ipv4"), "10.0.0.300")
    assert Param(1, format="date").resolve("p") == 1  # a format says nothing of other types


def test_a_schema_given_whole_and_one_that_is_not_json_schema() -> None:
    assert Param(3, schema={"type": "integer", "maximum": 5}).resolve("p") == 3
    with pytest.raises(ParamValidationError, match=r"not valid JSON Schema: .*'str'"):
        Param("x", type="str")
    with pytest.raises(ParamValidationError, match=r"not valid JSON Schema"):
        Param(1, enum="ab")


def test_a_default_failing_items_is_a_load_error_naming_the_dag_and_param() -> None:
    with pytest.raises(DagDefinitionError) as caught, DAG("bad_items", schedule=None):
        EmptyOperator(task_id="t", params={"xs": Param([1, "a"], items={"type": "integer"})})
    message = str(caught.value)
    for part in ("'bad_items'", "task 't'", "param 'xs'", "at xs[1]", "'a' is not of type"):
        assert part in message, message


@pytest.mark.anyio
async def test_a_run_whose_conf_fails_a_nested_schema_is_refused() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    with DAG("nested", schedule=None, params={"cfg": Param({"n": 1}, **schema)}) as dag:
        EmptyOperator(task_id="t")
    async with Engine(dags=[dag], database=":memory:") as engine:
        with pytest.raises(ParamValidationError, match=r"DAG 'nested'.*'cfg'.*'n' is a required"):
            await engine.trigger_dag("nested", conf={"cfg": {}})
        assert await engine.get_dag_runs("nested") == []
