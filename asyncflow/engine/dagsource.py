"""Where an engine's DAGs come from, and whether each may run: DAGs given in code, the DAG
folder (a DagBag, refreshed while running), and the checks a DAG must pass against this engine
(pools it names exist, a scheduled DAG's params all have defaults). A DAG given in code that
fails is the caller's error at once; a folder DAG that fails becomes its file's import error,
so that one bad file never keeps the others from running."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from asyncflow.exceptions import DagDefinitionError, ParamValidationError, UnknownPoolError
from asyncflow.loading.dagbag import load_dags
from asyncflow.logs import get_logger
from asyncflow.models.dag import DAG
from asyncflow.models.param import resolve_params
from asyncflow.records import ImportErrorRecord

log = get_logger("asyncflow.engine")


def check_dag(dag: DAG, pools: Mapping[str, int]) -> None:
    """Validate `dag` (cycles...) and check it against this engine's pools."""
    if not dag.frozen:
        dag.validate()
    for task in dag.tasks:
        if task.pool is not None and task.pool not in pools:
            raise UnknownPoolError(
                f"pool {task.pool!r} is not declared: add it to the config's [pools] or "
                f"Engine(pools=[Pool({task.pool!r}, slots=N)]); known: {sorted(pools)}",
                dag_id=dag.dag_id,
                fileloc=dag.fileloc,
                task_id=task.task_id,
            )
    if dag.timetable.can_be_scheduled:
        try:
            resolve_params(dag.params, None, dag_id=dag.dag_id)
        except ParamValidationError as exc:
            raise DagDefinitionError(
                f"{exc}; a scheduled DAG needs a default for every param",
                dag_id=dag.dag_id,
                fileloc=dag.fileloc,
            ) from None


@dataclass
class Refresh:
    """What a re-scan of the folder found: DAGs to (re)schedule, and the bag's changes."""

    fresh: dict[str, DAG]
    changes: Any  # dagbag.BagChanges
    errors_changed: bool


class DagSource:
    def __init__(self, given: list[DAG], folder: Path | None, import_timeout: float) -> None:
        self.given = given
        self.folder = folder
        self.import_timeout = import_timeout
        self.dagbag: Any = None  # loading.dagbag.DagBag, loaded on first use
        self._rejected: dict[str, str] = {}  # file -> why its DAG loaded but cannot run

    async def load(self) -> list[DAG]:
        dags = list(self.given)
        if self.folder is not None:
            self.dagbag = await load_dags(self.folder, import_timeout=self.import_timeout)
            dags.extend(self.dagbag.dags.values())
            for fileloc, error in self.dagbag.import_errors.items():
                log.error("DAG file failed to import", file=fileloc, error=str(error))
        seen: dict[str, DAG] = {}
        for dag in dags:
            if dag.dag_id in seen and seen[dag.dag_id] is not dag:
                raise DagDefinitionError(
                    f"dag_id is used by two DAGs (also in {seen[dag.dag_id].fileloc}): "
                    "give each DAG a unique dag_id",
                    dag_id=dag.dag_id,
                    fileloc=dag.fileloc,
                )
            seen[dag.dag_id] = dag
        return list(seen.values())

    def admit(self, dags: list[DAG], pools: Mapping[str, int]) -> list[DAG]:
        """The DAGs that may run; a folder DAG that may not is set aside as an import error."""
        from_folder = set(self.dagbag.dags) if self.dagbag is not None else set()
        admitted = []
        for dag in dags:
            try:
                check_dag(dag, pools)
            except DagDefinitionError as exc:
                if dag.dag_id not in from_folder:
                    raise  # a DAG given in code: the caller's error, at once
                self._reject(dag, exc)
                continue
            admitted.append(dag)
        return admitted

    def _reject(self, dag: DAG, exc: DagDefinitionError) -> None:
        log.error("DAG cannot be scheduled", dag_id=dag.dag_id, error=str(exc))
        self._rejected[dag.fileloc or dag.dag_id] = str(exc)

    async def refresh(self, pools: Mapping[str, int]) -> Refresh | None:
        """Re-scan the folder (in a worker thread); None without a folder."""
        if self.dagbag is None:
            return None
        changes = await anyio.to_thread.run_sync(self.dagbag.refresh)
        rejected_before = dict(self._rejected)
        fresh: dict[str, DAG] = {}
        for dag_id in [*changes.added, *changes.changed]:
            dag = self.dagbag.dags[dag_id]
            self._rejected.pop(dag.fileloc or dag_id, None)
            try:
                check_dag(dag, pools)
            except DagDefinitionError as exc:
                self._reject(dag, exc)
                continue
            fresh[dag_id] = dag
        errors_changed = changes.errors_changed or self._rejected != rejected_before
        return Refresh(fresh, changes, errors_changed)

    def import_errors(self) -> dict[str, str]:
        """File -> why it has no DAG running: failed imports, and DAGs that may not run."""
        errors = self.dagbag.import_errors if self.dagbag is not None else {}
        found = {f: str(e) for f, e in errors.items()}
        for fileloc, message in self._rejected.items():
            found.setdefault(fileloc, message)
        return found

    def error_records(self, now: datetime) -> list[ImportErrorRecord]:
        traces = self.dagbag.import_errors if self.dagbag is not None else {}
        return [
            ImportErrorRecord(f, message, getattr(traces.get(f), "stacktrace", ""), now)
            for f, message in self.import_errors().items()
        ]
