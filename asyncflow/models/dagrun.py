"""What a DAG run may be called: the rule for a run_id given at trigger time (Airflow's).

A run_id names a folder of attempt logs and appears in URLs and shell commands, so it is checked
where it enters (the CLI, `Engine.trigger_dag`), not where it is first used (a log file path that
fails with ENAMETOOLONG inside a running attempt). The rule is Airflow 3's default
`[scheduler] allowed_run_id_pattern`, its ID length and its ban on ``..``.
"""

from __future__ import annotations

import re

from asyncflow.exceptions import InvalidRunIdError

__all__ = ["RUN_ID_MAX_LENGTH", "RUN_ID_PATTERN", "validate_run_id"]

RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")
"""Letters, digits and `_ . ~ : + -`: Airflow's default allowed_run_id_pattern."""
RUN_ID_MAX_LENGTH = 250
"""Airflow's ID_LEN, the length of its run_id column."""


def validate_run_id(dag_id: str, run_id: str) -> str:
    """`run_id` if it may name a run of `dag_id`; else `InvalidRunIdError` naming both."""
    if not isinstance(run_id, str):
        raise InvalidRunIdError(dag_id, repr(run_id), f"it must be a string, got {type(run_id)}")
    if not run_id:
        raise InvalidRunIdError(dag_id, run_id, "it is empty; leave it out for a generated one")
    if len(run_id) > RUN_ID_MAX_LENGTH:
        raise InvalidRunIdError(
            dag_id, run_id, f"it is {len(run_id)} characters long; the limit is "
            f"{RUN_ID_MAX_LENGTH}",
        )  # fmt: skip
    if not RUN_ID_PATTERN.match(run_id):
        bad = sorted({c for c in run_id if not RUN_ID_PATTERN.match(c)})
        raise InvalidRunIdError(
            dag_id, run_id, f"it may hold only letters, digits and _ . ~ : + - (found "
            f"{''.join(bad)!r})",
        )  # fmt: skip
    if ".." in run_id:
        raise InvalidRunIdError(dag_id, run_id, "'..' is not allowed (it would climb out of "
                                "the run's log folder)")  # fmt: skip
    return run_id
