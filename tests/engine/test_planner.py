"""The pure scheduling decisions: each trigger rule against Airflow's `TriggerRuleDep`, and the
retry delay, without a loop or a database."""

from __future__ import annotations

from datetime import timedelta

import pytest

from asyncflow import DAG, TaskState, TriggerRule
from asyncflow.engine.planner import MAX_RETRY_DELAY, UpstreamCounts, decide, retry_delay
from asyncflow.operators import EmptyOperator

LETTERS = {
    "s": TaskState.SUCCESS,
    "k": TaskState.SKIPPED,
    "f": TaskState.FAILED,
    "u": TaskState.UPSTREAM_FAILED,
    "r": TaskState.REMOVED,
}
RUN, SKIP, UFAIL, WAIT = "scheduled", "skipped", "upstream_failed", None

#: (rule, the finished upstream states as letters, number of upstream tasks, decision).
#: Decisions are those of Airflow's trigger_rule_dep: a task is settled as soon as its rule
#: can no longer be met, without waiting for the rest of its upstream.
CASES: list[tuple[str, str, int, str | None]] = [
    ("all_success", "", 2, WAIT),
    ("all_success", "s", 2, WAIT),
    ("all_success", "ss", 2, RUN),
    ("all_success", "f", 2, UFAIL),
    ("all_success", "u", 2, UFAIL),
    ("all_success", "k", 2, SKIP),
    ("all_success", "kf", 2, UFAIL),  # a failure outranks a skip
    ("all_failed", "f", 2, WAIT),
    ("all_failed", "fu", 2, RUN),
    ("all_failed", "ff", 2, RUN),
    ("all_failed", "s", 2, SKIP),
    ("all_failed", "k", 2, SKIP),
    ("all_done", "sf", 3, WAIT),
    ("all_done", "sfk", 3, RUN),
    ("all_done", "uuu", 3, RUN),
    # a teardown's rule decides like all_done; its setups are checked by the mirror
    ("all_done_setup_success", "sf", 3, WAIT),
    ("all_done_setup_success", "sfk", 3, RUN),
    ("all_done_min_one_success", "s", 2, WAIT),
    ("all_done_min_one_success", "f", 2, WAIT),
    ("all_done_min_one_success", "sf", 2, RUN),
    ("all_done_min_one_success", "su", 2, RUN),
    ("all_done_min_one_success", "fu", 2, UFAIL),
    ("all_done_min_one_success", "ff", 2, UFAIL),
    ("all_done_min_one_success", "sk", 2, SKIP),  # Airflow 3.1: any skip skips it
    ("all_done_min_one_success", "k", 2, SKIP),
    ("all_skipped", "k", 2, WAIT),
    ("all_skipped", "kk", 2, RUN),
    ("all_skipped", "s", 2, SKIP),
    ("all_skipped", "f", 2, SKIP),
    ("all_skipped", "u", 2, SKIP),
    ("one_success", "", 2, WAIT),
    ("one_success", "s", 3, RUN),
    ("one_success", "f", 2, WAIT),
    ("one_success", "fk", 2, UFAIL),
    ("one_success", "ff", 2, UFAIL),
    ("one_success", "kk", 2, SKIP),
    ("one_failed", "f", 3, RUN),
    ("one_failed", "u", 3, RUN),
    ("one_failed", "s", 2, WAIT),
    ("one_failed", "sk", 2, SKIP),
    ("one_done", "s", 3, RUN),
    ("one_done", "f", 3, RUN),
    ("one_done", "k", 2, WAIT),
    ("one_done", "kk", 2, SKIP),
    ("one_done", "u", 3, WAIT),  # upstream_failed is not done work
    ("one_done", "uk", 2, SKIP),
    ("none_failed", "s", 2, WAIT),
    ("none_failed", "sk", 2, RUN),
    ("none_failed", "kk", 2, RUN),
    ("none_failed", "f", 2, UFAIL),
    ("none_failed", "u", 2, UFAIL),
    ("none_failed_min_one_success", "k", 2, WAIT),
    ("none_failed_min_one_success", "sk", 2, RUN),
    ("none_failed_min_one_success", "ss", 2, RUN),
    ("none_failed_min_one_success", "kk", 2, SKIP),
    ("none_failed_min_one_success", "f", 2, UFAIL),
    ("none_failed_min_one_success", "u", 2, UFAIL),
    ("none_skipped", "s", 2, WAIT),
    ("none_skipped", "sf", 2, RUN),
    ("none_skipped", "sfu", 3, RUN),
    ("none_skipped", "k", 2, SKIP),
    ("always", "", 2, RUN),
    ("always", "f", 2, RUN),
]


def counts(letters: str) -> UpstreamCounts:
    up = UpstreamCounts()
    for letter in letters:
        up.add(LETTERS[letter])
    return up


def test_the_table_covers_every_trigger_rule() -> None:
    assert {rule for rule, *_ in CASES} == {r.value for r in TriggerRule}


@pytest.mark.parametrize(("rule", "finished", "total", "expected"), CASES)
def test_trigger_rule_decision(rule: str, finished: str, total: int, expected: str | None) -> None:
    decision = decide(TriggerRule(rule), counts(finished), total)
    assert decision == expected, f"{rule} with upstream {finished!r} of {total}"


@pytest.mark.parametrize("rule", list(TriggerRule))
def test_a_task_without_upstream_runs_whatever_its_rule(rule: TriggerRule) -> None:
    assert decide(rule, UpstreamCounts(), 0) is TaskState.SCHEDULED


def test_upstream_counts_tally_each_finished_state() -> None:
    up = counts("sskfur")
    assert (up.success, up.skipped, up.failed, up.upstream_failed, up.removed) == (2, 1, 1, 1, 1)
    assert up.done == 6
    up.add(TaskState.SUCCESS, -1)
    assert up.success == 1 and up.done == 5


# -- retry delay ----------------------------------------------------------------------------------
def task_with(**kwargs: object) -> EmptyOperator:
    with DAG("retry_delay", schedule=None):
        return EmptyOperator(task_id="t", **kwargs)  # type: ignore[arg-type]


def test_retry_delay_is_constant_by_default() -> None:
    task = task_with(retry_delay=timedelta(seconds=10))
    assert [retry_delay(task, n) for n in (1, 2, 5)] == [timedelta(seconds=10)] * 3


def test_retry_delay_accepts_seconds() -> None:
    assert retry_delay(task_with(retry_delay=2.5), 1) == timedelta(seconds=2.5)


def test_exponential_backoff_doubles_per_try_up_to_max_retry_delay() -> None:
    task = task_with(
        retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=True,
        max_retry_delay=timedelta(seconds=60),
    )
    delays = [retry_delay(task, n).total_seconds() for n in range(1, 7)]
    for n, delay in enumerate(delays, start=1):
        assert min(10 * 2 ** (n - 1), 60) <= delay <= 60, delays
    assert delays[0] < delays[1] < delays[2] < delays[3]
    assert delays[-1] == 60


def test_max_retry_delay_caps_a_constant_delay() -> None:
    task = task_with(retry_delay=timedelta(minutes=10), max_retry_delay=timedelta(minutes=1))
    assert retry_delay(task, 1) == timedelta(minutes=1)


def test_exponential_backoff_never_overflows_and_caps_at_24_hours() -> None:
    task = task_with(retries=100, retry_exponential_backoff=True)
    delays = [retry_delay(task, n) for n in range(1, 101)]
    assert delays[0] == timedelta(minutes=5)
    assert delays[53] == delays[99] == MAX_RETRY_DELAY == timedelta(hours=24)
    assert max(delays) == timedelta(hours=24)
    huge = task_with(retry_delay=timedelta.max, retry_exponential_backoff=True)
    assert retry_delay(huge, 10**6) == timedelta(hours=24)


def test_a_max_retry_delay_above_24_hours_does_not_lift_the_backoff_cap() -> None:
    task = task_with(retry_exponential_backoff=True, max_retry_delay=timedelta(days=30))
    assert retry_delay(task, 60) == timedelta(hours=24)
