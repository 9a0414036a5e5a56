"""Sensors: tasks that wait for something to become true."""

from asyncflow.sensors.base import BaseSensorOperator, PokeReturnValue
from asyncflow.sensors.bash import BashSensor
from asyncflow.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor
from asyncflow.sensors.filesystem import FileSensor
from asyncflow.sensors.python import PythonSensor
from asyncflow.sensors.time import DateTimeSensor, TimeDeltaSensor, TimeSensor
from asyncflow.sensors.weekday import DayOfWeekSensor

__all__ = [
    "BaseSensorOperator",
    "BashSensor",
    "DateTimeSensor",
    "DayOfWeekSensor",
    "ExternalTaskMarker",
    "ExternalTaskSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "TimeDeltaSensor",
    "TimeSensor",
]
