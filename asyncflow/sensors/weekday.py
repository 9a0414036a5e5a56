"""`DayOfWeekSensor`: waits until it is one of the given week days (in the DAG's timezone, on
the engine's clock), or checks the run's logical date with `use_task_logical_date=True`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from asyncflow.models.baseoperator import Context
from asyncflow.operators.datetime import compared_moment
from asyncflow.sensors.base import BaseSensorOperator
from asyncflow.weekday import WeekDay


class DayOfWeekSensor(BaseSensorOperator):
    def __init__(
        self,
        *,
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: Context) -> bool:
        moment = compared_moment(context, self.use_task_logical_date)
        if not self.use_task_logical_date and self.dag is not None:
            moment = moment.astimezone(self.dag.timezone)
        return moment.isoweekday() in self._week_day_num
