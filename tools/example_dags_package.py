"""`airflow.example_dags` as the downloaded example folder, for `tools.airflow_examples`.

Two of Airflow's examples import helpers of their own package
(``from airflow.example_dags.plugins.workday import AfterWorkdayTimetable``), which exists in
Airflow because the examples ship inside it. Importing this module (the script does, and so
does its DAG parse server, through its `preload`) adds an import hook for that package name
only, serving the folder named by the environment variable `FOLDER_VARIABLE`. asyncflow's
Airflow import hook leaves to it the `airflow.*` names it does not have itself.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

PACKAGE = "airflow.example_dags"
FOLDER_VARIABLE = "ASYNCFLOW_AIRFLOW_EXAMPLE_DAGS"


class ExampleDagsFinder(importlib.abc.MetaPathFinder):
    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == PACKAGE:
            return importlib.util.spec_from_file_location(
                fullname, self.folder / "__init__.py", submodule_search_locations=[str(self.folder)]
            )
        if fullname.startswith(PACKAGE + "."):
            return importlib.machinery.PathFinder.find_spec(fullname, path)
        return None


def install(folder: Path | None = None) -> None:
    """Serve `airflow.example_dags` from `folder` (else the environment's), once."""
    if folder is not None:
        os.environ[FOLDER_VARIABLE] = str(folder)  # the parse server inherits it
    where = os.environ.get(FOLDER_VARIABLE)
    if where and not any(isinstance(f, ExampleDagsFinder) for f in sys.meta_path):
        sys.meta_path.append(ExampleDagsFinder(Path(where)))


install()
