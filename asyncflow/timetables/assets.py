"""Timetables of DAGs scheduled on assets: `schedule=[Asset(...)]`, `schedule=a | b`, and
`AssetOrTimeSchedule` (assets, or a time-based timetable, whichever comes first).

They schedule nothing on time by themselves: the engine creates an `asset_triggered` run when
the condition holds over the asset events since the DAG's last such run (engine/assets.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from asyncflow.exceptions import InvalidScheduleError
from asyncflow.models.asset import AssetAll, BaseAsset
from asyncflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable


class AssetTriggeredTimetable(Timetable):
    """Runs when the asset condition holds; never on time."""

    periodic = False
    description = "Triggered by assets"

    def __init__(self, assets: BaseAsset) -> None:
        self.asset_condition = assets

    @property
    def summary(self) -> str:
        return "Asset"

    def __repr__(self) -> str:
        return f"AssetTriggeredTimetable({self.asset_condition!r})"

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        return None


class AssetOrTimeSchedule(AssetTriggeredTimetable):
    """Runs when the asset condition holds, and also on `timetable`'s schedule."""

    def __init__(self, *, timetable: Timetable, assets: Collection[BaseAsset] | BaseAsset) -> None:
        condition = assets if isinstance(assets, BaseAsset) else AssetAll(*assets)
        super().__init__(condition)
        self.timetable = timetable
        self.description = f"Triggered by assets or {timetable.description}"
        self.periodic = timetable.periodic
        self.can_be_scheduled = timetable.can_be_scheduled
        self.run_ordering = timetable.run_ordering

    @property
    def summary(self) -> str:
        return f"Asset or {self.timetable.summary}"

    def __repr__(self) -> str:
        return f"AssetOrTimeSchedule(timetable={self.timetable!r}, assets={self.asset_condition!r})"

    def validate(self) -> None:
        if isinstance(self.timetable, AssetTriggeredTimetable):
            raise InvalidScheduleError("AssetOrTimeSchedule cannot take an asset timetable")
        if not isinstance(self.timetable, Timetable):
            raise InvalidScheduleError(
                f"AssetOrTimeSchedule(timetable={self.timetable!r}) is not a Timetable"
            )
        self.timetable.validate()

    def infer_manual_data_interval(self, *, run_after: datetime) -> DataInterval:
        return self.timetable.infer_manual_data_interval(run_after=run_after)

    def next_dagrun_info(
        self, *, last_automated_data_interval: DataInterval | None, restriction: TimeRestriction
    ) -> DagRunInfo | None:
        return self.timetable.next_dagrun_info(
            last_automated_data_interval=last_automated_data_interval, restriction=restriction
        )

    def logical_date_of(self, info: DagRunInfo) -> datetime:
        return self.timetable.logical_date_of(info)
