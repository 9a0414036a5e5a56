"""When DAGs run: Airflow 2's timetables, computed in a time zone, returned in UTC.

`create_timetable()` turns a DAG's `schedule=` into a `Timetable`; the engine then asks it
`next_dagrun_info()` for scheduled runs and `infer_manual_data_interval()` for triggered ones.
"""

from asyncflow.timetables.base import DagRunInfo, DataInterval, TimeRestriction, Timetable
from asyncflow.timetables.interval import CronDataIntervalTimetable, DeltaDataIntervalTimetable
from asyncflow.timetables.schedule import PRESETS, create_timetable
from asyncflow.timetables.simple import NullTimetable, OnceTimetable
from asyncflow.timetables.trigger import CronTriggerTimetable, DeltaTriggerTimetable

__all__ = [
    "PRESETS",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DagRunInfo",
    "DataInterval",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "NullTimetable",
    "OnceTimetable",
    "TimeRestriction",
    "Timetable",
    "create_timetable",
]
