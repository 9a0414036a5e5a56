"""Sensors: tasks that wait for something to become true."""

from asyncflow.sensors.base import BaseSensorOperator, PokeReturnValue
from asyncflow.sensors.filesystem import FileSensor
from asyncflow.sensors.python import PythonSensor
from asyncflow.sensors.time import DateTimeSensor, TimeDeltaSensor

__all__ = [
    "BaseSensorOperator",
    "DateTimeSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "TimeDeltaSensor",
]
