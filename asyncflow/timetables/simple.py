"""The two timetables that are not periodic: `schedule=None` and `schedule="@once"`."""

from __future__ import annotations

from asyncflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable, resolve


class NullTimetable(Timetable):
    """`schedule=None`: never scheduled; the DAG runs only when triggered."""

    can_be_scheduled = False
    description = "never, only when triggered"

    @property
    def summary(self) -> str:
        return "None"

    def __repr__(self) -> str:
        return "NullTimetable()"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NullTimetable):
            return NotImplemented
        return True

    def __hash__(self) -> int:
        return hash(NullTimetable)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        return None


class OnceTimetable(Timetable):
    """`schedule="@once"`: one run, at the start date, with an empty data interval."""

    periodic = False
    description = "once, at the start date"

    @property
    def summary(self) -> str:
        return "@once"

    def __repr__(self) -> str:
        return "OnceTimetable()"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OnceTimetable):
            return NotImplemented
        return True

    def __hash__(self) -> int:
        return hash(OnceTimetable)

    def next_dagrun_info(
        self,
        *,
        last_automated_data_interval: DataInterval | None,
        restriction: TimeRestriction,
    ) -> DagRunInfo | None:
        if last_automated_data_interval is not None:
            return None  # it already ran
        restriction, _ = resolve(restriction)
        if restriction.earliest is None:
            return None
        if restriction.latest is not None and restriction.earliest > restriction.latest:
            return None
        return DagRunInfo.exact(restriction.earliest)
