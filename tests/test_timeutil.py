"""Durations from DAG files are checked and clamped, and the scheduler's `now + delta` never
raises OverflowError (`add_clamped`)."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from asyncflow.timeutil import FAR_FUTURE, FAR_PAST, MAX_DURATION, add_clamped, as_timedelta


def test_add_clamped_adds_normally() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert add_clamped(now, timedelta(hours=1)) == datetime(2026, 1, 1, 1, tzinfo=UTC)
    assert add_clamped(now, -timedelta(days=1)) == datetime(2025, 12, 31, tzinfo=UTC)


def test_add_clamped_gives_a_far_sentinel_instead_of_overflowing() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(OverflowError):
        now + timedelta.max  # what the scheduler did with dagrun_timeout=timedelta.max
    assert add_clamped(now, timedelta.max) == FAR_FUTURE
    assert add_clamped(now, timedelta.min) == FAR_PAST
    assert add_clamped(datetime(9998, 12, 31, tzinfo=UTC), timedelta(days=5)) == FAR_FUTURE
    assert FAR_FUTURE.astimezone(datetime.now().astimezone().tzinfo)  # shown in any zone


def test_as_timedelta_checks_and_clamps() -> None:
    assert as_timedelta(2.5) == timedelta(seconds=2.5)
    assert as_timedelta(timedelta.max) == MAX_DURATION
    assert as_timedelta(math.inf) == MAX_DURATION
    assert as_timedelta(1e300) == MAX_DURATION
    for bad in (math.nan, -1, timedelta(seconds=-1)):
        with pytest.raises(ValueError):
            as_timedelta(bad)
    for wrong in ("5", True, None, [1]):
        with pytest.raises(TypeError):
            as_timedelta(wrong)
