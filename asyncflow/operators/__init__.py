"""The built-in operators."""

from asyncflow.operators.bash import BashOperator
from asyncflow.operators.branch import BaseBranchOperator
from asyncflow.operators.datetime import BranchDateTimeOperator
from asyncflow.operators.empty import EmptyOperator
from asyncflow.operators.latest_only import LatestOnlyOperator
from asyncflow.operators.python import BranchPythonOperator, PythonOperator, ShortCircuitOperator
from asyncflow.operators.python_virtualenv import (
    BranchExternalPythonOperator,
    BranchPythonVirtualenvOperator,
    ExternalPythonOperator,
    PythonVirtualenvOperator,
)
from asyncflow.operators.trigger_dagrun import TriggerDagRunOperator
from asyncflow.operators.weekday import BranchDayOfWeekOperator

__all__ = [
    "BaseBranchOperator",
    "BashOperator",
    "BranchDateTimeOperator",
    "BranchDayOfWeekOperator",
    "BranchExternalPythonOperator",
    "BranchPythonOperator",
    "BranchPythonVirtualenvOperator",
    "EmptyOperator",
    "ExternalPythonOperator",
    "LatestOnlyOperator",
    "PythonOperator",
    "PythonVirtualenvOperator",
    "ShortCircuitOperator",
    "TriggerDagRunOperator",
]
