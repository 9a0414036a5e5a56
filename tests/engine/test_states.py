"""TaskState / DagRunState carry Airflow's values; one table says which transitions are allowed."""

from __future__ import annotations

import pytest

from asyncflow import AsyncflowError, DagRunState, TaskState
from asyncflow.exceptions import InvalidStateTransition
from asyncflow.states import (
    FINISHED,
    RUN_TRANSITIONS,
    TASK_TRANSITIONS,
    UNFINISHED,
    check_run_transition,
    check_task_transition,
)

AIRFLOW_TASK_STATES = {
    "scheduled", "queued", "running", "success", "failed", "skipped", "up_for_retry",
    "up_for_reschedule", "upstream_failed", "removed", "deferred",
}  # fmt: skip
AIRFLOW_RUN_STATES = {"queued", "running", "success", "failed"}


def test_task_states_are_str_enums_with_airflows_values() -> None:
    # Airflow's "no state yet" is None in its database; here it is the explicit "none".
    assert {s.value for s in TaskState} == AIRFLOW_TASK_STATES | {"none"}
    for state in TaskState:
        assert isinstance(state, str)
        assert state == state.value
        assert TaskState(state.value) is state


def test_run_states_are_str_enums_with_airflows_values() -> None:
    assert {s.value for s in DagRunState} == AIRFLOW_RUN_STATES
    assert all(isinstance(s, str) and s == s.value for s in DagRunState)


def test_finished_and_unfinished_split_every_state() -> None:
    assert {"success", "failed", "skipped", "upstream_failed", "removed"} == FINISHED
    assert set(TaskState) == FINISHED | UNFINISHED
    assert not FINISHED & UNFINISHED


def test_the_transition_tables_cover_every_state() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskState)
    assert set(RUN_TRANSITIONS) == set(DagRunState)
    for old, targets in TASK_TRANSITIONS.items():
        assert old not in targets, f"{old} -> {old} is not a transition"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("none", "scheduled"),
        ("scheduled", "queued"),
        ("queued", "running"),
        ("running", "success"),
        ("running", "failed"),
        ("running", "up_for_retry"),
        ("up_for_retry", "scheduled"),
        ("none", "upstream_failed"),
        ("none", "skipped"),
        ("scheduled", "success"),  # an EmptyOperator finishes without a worker
        ("success", "none"),  # cleared
    ],
)
def test_the_life_of_a_task_instance_is_allowed(old: str, new: str) -> None:
    check_task_transition("d.t[r]", TaskState(old), TaskState(new))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("none", "running"),  # must be scheduled and queued first
        ("success", "running"),
        ("failed", "up_for_retry"),
        ("skipped", "running"),
        ("upstream_failed", "scheduled"),
        ("removed", "success"),
    ],
)
def test_transitions_outside_the_table_are_refused(old: str, new: str) -> None:
    with pytest.raises(InvalidStateTransition) as caught:
        check_task_transition("d.t[r]", TaskState(old), TaskState(new))
    assert isinstance(caught.value, AsyncflowError)
    assert isinstance(caught.value, RuntimeError)
    assert f"'{old}' -> '{new}'" in str(caught.value) and "d.t[r]" in str(caught.value)


def test_run_transitions() -> None:
    check_run_transition("d/r", DagRunState.QUEUED, DagRunState.RUNNING)
    check_run_transition("d/r", DagRunState.RUNNING, DagRunState.SUCCESS)
    check_run_transition("d/r", DagRunState.RUNNING, DagRunState.FAILED)
    with pytest.raises(InvalidStateTransition, match="'running' -> 'running'"):
        check_run_transition("d/r", DagRunState.RUNNING, DagRunState.RUNNING)
