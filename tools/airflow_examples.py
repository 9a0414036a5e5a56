"""Airflow's own example DAGs, loaded and run by asyncflow, against the states Airflow gives them.

    python -m tools.airflow_examples [--cache DIR] [--timeout SECONDS] [--only SUBSTRING]

1. `pip download --no-deps` the two wheels (apache-airflow-core, apache-airflow-providers-standard)
   into a cache folder outside the repository (default ~/.cache/asyncflow-airflow-examples) and
   extracts their ``example_dags`` folders there. Nothing of Airflow's enters the repository.
2. Loads each folder with asyncflow's DAG loader (`DagBag`), whose Airflow import hook serves
   ``airflow.*`` with asyncflow's objects: the files are loaded unchanged.
3. Runs every loaded DAG once, as `asyncflow dags test` does: a manual run each, all at once,
   each DAG in an in-memory engine of its own (DAGs that trigger or sense one another share
   one). Each engine's clock is real but hurried: any wait longer than a moment (a
   retry_delay, a poke_interval, a TimeSensor's target) is cut short by moving the clock
   forward, so a DAG ends in seconds in the state it would reach in real time.
4. Prints one row per file (loads?, its DAGs, each DAG's run state and task states, the error),
   then compares each DAG with the states real Airflow ends it in (`EXPECTED`, from Airflow's
   documented semantics of each example; DAGs not listed there are counted as unverified).
"""

from __future__ import annotations

import argparse
import contextlib
import fnmatch
import logging
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from asyncflow import DAG, Engine
from asyncflow.loading.dagbag import DagBag
from asyncflow.loading.parsing import PRELOAD, ParseServer
from asyncflow.models.current import current_context
from tools import example_dags_package

CORE = "apache-airflow-core==3.3.2"
STANDARD = "apache-airflow-providers-standard"
FOLDERS = ("airflow/example_dags", "airflow/providers/standard/example_dags")
DEFAULT_CACHE = Path.home() / ".cache" / "asyncflow-airflow-examples"

S, F, K, U = "success", "failed", "skipped", "upstream_failed"

Expectation = tuple[str, dict[str, str]]

#: file name or dag_id -> the service it needs that asyncflow will never have: such files and
#: DAGs are shown and counted apart, not judged
NEEDS: dict[str, str] = {
    "example_kubernetes_executor.py": "kubernetes",
    "example_local_kubernetes_executor.py": "kubernetes",
    "tutorial_objectstorage.py": "cloud object storage",
    "example_hitl_operator.py": "human-in-the-loop UI",
    # its first task asks an internet service for this host's address
    "example_dag_decorator": "network (httpbin.org)",
    # its task asks api.example.com (through `requests`) for data: no network, no such host
    "example_retry_policy": "network (api.example.com)",
}


#: dag_id -> the conf its manual run is triggered with: what Airflow's trigger form makes the
#: user fill in (a param without a default is required; Airflow refuses the run without it)
CONF: dict[str, dict[str, object]] = {
    "example_params_ui_tutorial": {"required_field": "some text to pass"},
}


def _random_branches(*groups: tuple[str, ...]) -> Callable[[DagOutcome], Expectation]:
    """A DAG whose branch operators pick a random option: for each group of task-id prefixes
    (the branch's followers first), the option whose first follower ran is the chosen one and
    every other option's tasks are skipped; no follower or several running is wrong."""

    def expect(outcome: DagOutcome) -> Expectation:
        rules: dict[str, str] = {}
        for prefixes in groups:
            options = [t[len(prefixes[0]) :] for t in outcome.tasks if t.startswith(prefixes[0])]
            chosen = [o for o in options if outcome.tasks.get(prefixes[0] + o) == S]
            for option in options:
                if len(chosen) != 1 or option != chosen[0]:
                    rules.update({prefix + option: K for prefix in prefixes})
        return S, rules

    return expect


def _weekday_branch(logical: datetime) -> Expectation:
    # BranchDayOfWeekOperator looks at the wall clock (use_task_logical_date=False)
    today = datetime.now(UTC).weekday()
    if today == 0:  # Monday
        return F_, {"branch_false": K, "make_weekend_choice": K, "branch_weekend": K,
                    "branch_mid_week": K}  # fmt: skip
    weekend = today >= 5
    return F_, {"branch_true": K, "branch_weekend" if not weekend else "branch_mid_week": K}


def _time_branch(logical: datetime) -> Expectation:
    # target_lower 15:00 > target_upper 00:00: Airflow moves the upper bound to the next day
    inside = datetime.now(UTC).hour >= 15
    return F_, {"date_outside_range" if inside else "date_in_range": K}


def _minute_branch(logical: datetime) -> Expectation:
    return F_, {"empty_task_2" if logical.minute % 2 == 0 else "empty_task_1": K}


F_ = S  # run state: success
_ASSET_DAGS = (  # one manual run each: every task succeeds in Airflow too
    "asset_s3_bucket_producer", "asset_alias_example_alias_producer", "asset_s3_bucket_consumer",
    "asset_alias_example_alias_consumer", "asset_s3_bucket_producer_with_no_taskflow",
    "asset_alias_example_alias_producer_with_no_taskflow",
    "asset_s3_bucket_consumer_with_no_taskflow",
    "asset_alias_example_alias_consumer_with_no_taskflow", "asset1_producer", "asset2_producer",
    "consumes_asset_decorator", "example_asset_with_watchers", "asset_produces_1",
    "asset_produces_2", "asset_consumes_1", "asset_consumes_1_and_2",
    "asset_consumes_1_never_scheduled", "asset_consumes_unknown_never_scheduled",
    "consume_1_and_2_with_asset_expressions", "consume_1_or_2_with_asset_expressions",
    "consume_1_or_both_2_and_3_with_asset_expressions",
    "conditional_asset_and_time_based_timetable", "read_asset_event",
    "asset_with_extra_by_yield", "asset_with_extra_by_context",
    "asset_with_extra_from_classic_operator", "read_asset_event_from_classic",
    "team_analytics_producer", "team_ml_consumer",
    "example_asset_state_store_producer", "example_asset_state_store_consumer",
)  # fmt: skip
_ALL_SUCCESS = (
    *_ASSET_DAGS,
    "child_dag", "example_branch_labels",
    "example_complex", "example_custom_weight", "example_display_name",
    "example_task_mapping_second_order", "example_task_group_mapping",
    "example_dynamic_task_mapping", "example_dynamic_task_mapping_with_no_taskflow_operators",
    "example_params_trigger_ui", "example_params_ui_tutorial",
 "example_python_decorator",
    "example_setup_teardown", "example_setup_teardown_taskflow", "example_simplest_dag",
    "example_task_group", "example_task_group_decorator", "example_trigger_target_dag",
    "example_task_state_store", "example_task_state_store_async",
    "example_task_state_store_mapped",
    "example_xcom", "example_xcom_args", "example_xcom_args_with_operators", "latest_only",
    "latest_only_with_trigger", "tutorial", "tutorial_dag", "tutorial_taskflow_api",
    "example_workday_timetable",
    "tutorial_taskflow_templates", "example_sensor_decorator", "tutorial_taskflow_api_virtualenv",
    "example_python_operator", "example_time_delta_sensor_async", "example_external_task",
    "example_external_task_marker_parent", "example_trigger_controller_dag",
    "example_measurement_correction_decorator", "example_measurement_correction_operator",
)  # fmt: skip

#: dag_id -> the logical date -> (run state, {task_id glob: final state}); tasks no glob
#: matches end in `success`. What real Airflow gives a manual run (`airflow dags test`) of each
#: example, from the operators' documented semantics and the example's own comments.
EXPECTED: dict[str, Callable[[datetime], Expectation]] = {
    **{dag_id: (lambda logical: (S, {})) for dag_id in _ALL_SUCCESS},
    "example_failed_dag": lambda logical: (F, {"fail_task": F}),
    # ALL_SUCCESS after a skip is skipped, ONE_SUCCESS runs
    "example_skip_dag": lambda logical: (S, {"skip_operator_*": K, "all_success": K, "final_1": K}),
    "example_nested_branch_dag": lambda logical: (
        S,
        {"false_1": K, "branch_2": K, "true_2": K, "false_2": K, "join_2": K, "false_3": K},
    ),
    "example_branch_dop_operator_v3": _minute_branch,
    # ignore_downstream_trigger_rules=True skips everything below; False only the direct
    # downstream (task_4), after which task_6 (all_success) skips and task_7 (all_done) runs
    **{
        dag_id: (lambda logical: (S, {"false_*": K, "task_4": K, "task_6": K}))
        for dag_id in ("example_short_circuit_operator", "example_short_circuit_decorator")
    },
    # 2020 ranges: now and the logical date are outside
    "example_branch_datetime_operator": lambda logical: (S, {"date_in_range": K}),
    "example_branch_datetime_operator_3": lambda logical: (S, {"date_in_range": K}),
    "example_branch_datetime_operator_2": _time_branch,
    "example_weekday_branch_operator": _weekday_branch,
    # `{{ params.foo }}` with no param foo: Airflow's DAGs render with jinja2's StrictUndefined
    # (DAG.template_undefined), so rendering also_run_this's env fails the task and the run
    "example_passing_params_via_test_command": lambda logical: (F, {"also_run_this": F}),
    # child_task2 senses a task group the parent does not have: no task instance ever matches,
    # so it pokes until its timeout (600 s) and fails; child_task3 (all_success) below it
    "example_external_task_marker_child": lambda logical: (
        F,
        {"child_task2": F, "child_task3": U},
    ),
    # the sensors with soft_fail and a timeout they cannot meet skip; the deferrable TimeSensor
    # an hour ahead waits that hour (Airflow defers it without a timeout) and succeeds; the
    # DayOfWeekSensor waits for a Monday, on the wall clock
    "example_sensors": lambda logical: (
        S,
        {
            "timeout_after_second_date_in_the_future": K,
            "Sensor_fails_after_3_seconds": K,
            "failure_timeout_sensor_python": K,
            **(
                {}
                if datetime.now(UTC).weekday() == 0
                else {"week_day_sensor_failing_on_timeout": K}
            ),
        },
    ),
    # `exit 99` skips; run_this_last (all_success) below it skips too
    "example_bash_operator": lambda logical: (S, {"this_will_skip": K, "run_this_last": K}),
    # sleep_in skips on weekdays of its logical date (its template); run_this_last is all_done
    "example_bash_decorator": lambda logical: (
        S,
        {"this_will_skip": K, **({"sleep_in": K} if logical.weekday() < 5 else {})},
    ),
}


@dataclass
class DagOutcome:
    dag_id: str
    run_state: str = "not run"
    logical_date: datetime | None = None
    tasks: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class FileOutcome:
    path: str
    loads: bool
    error: str | None = None
    dags: list[DagOutcome] = field(default_factory=list)


class HurriedClock:
    """The wall clock plus an offset that grows while nothing really works: when every running
    task instance waits on this clock (a sensor between pokes) and someone waits for a deadline
    more than `longest` seconds away (a retry_delay, a trigger's moment, the next poke), the
    clock jumps to `longest` before it. While a task works (a `sleep 3` in bash, a thread),
    time runs at its real pace, so no `dagrun_timeout` or `execution_timeout` fires early."""

    def __init__(self, longest: float = 0.2) -> None:
        self.offset = timedelta()
        self.longest = timedelta(seconds=longest)
        self.running: Callable[[], int] = lambda: 0  # the engine's running attempts
        self.sleeping = 0  # of them, those waiting on this clock

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset

    async def wait(self, event: anyio.Event, deadline: datetime | None) -> None:
        if deadline is None:
            await event.wait()
            return
        in_task = current_context.get() is not None
        self.sleeping += in_task
        try:
            while not event.is_set():
                delay = deadline - self.now()
                if delay <= timedelta():
                    return
                if delay > self.longest and self.running() <= self.sleeping:
                    self.offset += delay - self.longest
                    delay = self.longest
                with anyio.move_on_after(min(delay, self.longest).total_seconds()):
                    await event.wait()
        finally:
            self.sleeping -= in_task


def fetch(cache: Path) -> list[Path]:
    """The two wheels' example folders, downloaded and extracted once into `cache`."""
    wheels = cache / "wheels"
    if not list(wheels.glob("apache_airflow_core-*.whl")):
        wheels.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet"]
        subprocess.run([*command, "-d", str(wheels), CORE, STANDARD], check=True)
    tree = cache / "tree"
    if not tree.exists():
        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as archive:
                members = [m for m in archive.namelist() if "/example_dags/" in m]
                archive.extractall(tree, members)
    return [tree / folder for folder in FOLDERS]


def load(folder: Path, parser: ParseServer) -> tuple[DagBag, list[Path]]:
    bag = DagBag(folder, import_timeout=60.0, parser=parser)
    bag.collect()
    files = sorted(p for p in folder.glob("*.py") if p.name != "__init__.py")
    return bag, files


def short(message: str, limit: int = 240) -> str:
    """An import error without the loader's location prefix, cut to `limit` characters."""
    message = re.sub(r"^line \d+( \(in [^)]*\))?: ", "", message)
    return message if len(message) <= limit else message[: limit - 3] + "..."


def first_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else text


def _uris(assets: list[object]) -> set[str]:
    return {uri for asset in assets if isinstance(uri := getattr(asset, "uri", None), str)}


def feeders(dags: list[DAG]) -> dict[str, set[str]]:
    """dag_id -> the other DAGs whose tasks' outlets update an asset this DAG's tasks read as
    `inlets` (`inlet_events[asset]`): in a deployment those producers have run before (an
    example reading `inlet_events[asset][-1]` is written for that), so here they run first."""
    made = {dag.dag_id: _uris([a for t in dag.tasks for a in t.outlets]) for dag in dags}
    found: dict[str, set[str]] = {}
    for dag in dags:
        read = _uris([a for t in dag.tasks for a in t.inlets])
        producers = {other for other, uris in made.items() if other != dag.dag_id and uris & read}
        if producers:
            found[dag.dag_id] = producers
    return found


def linked(dags: list[DAG]) -> list[list[DAG]]:
    """The DAGs in groups that must share an engine: a task naming another DAG (a
    TriggerDagRunOperator's `trigger_dag_id`, an ExternalTaskSensor's `external_dag_id`), or
    reading through `inlets` an asset another DAG updates, puts both in one group; every other
    DAG is a group of its own, so that its clock is hurried only by its own waits (a wait of
    another DAG must not push it past its `dagrun_timeout`)."""
    by_id = {dag.dag_id: dag for dag in dags}
    parent = {dag_id: dag_id for dag_id in by_id}

    def root(dag_id: str) -> str:
        while parent[dag_id] != dag_id:
            dag_id = parent[dag_id]
        return dag_id

    for dag in dags:
        for task in dag.tasks:
            for attr in ("trigger_dag_id", "external_dag_id"):
                other = getattr(task, attr, None)
                if isinstance(other, str) and other in by_id:
                    parent[root(other)] = root(dag.dag_id)
    for reader, producers in feeders(dags).items():
        for producer in producers:
            parent[root(producer)] = root(reader)
    groups: dict[str, list[DAG]] = {}
    for dag in dags:
        groups.setdefault(root(dag.dag_id), []).append(dag)
    return list(groups.values())


async def run_group(dags: list[DAG], seconds: float, outcomes: dict[str, DagOutcome]) -> None:
    """One engine with its own hurried clock runs a manual run of each DAG of the group."""
    clock = HurriedClock()
    async with Engine(
        dags=dags, database=":memory:", run_schedules=False, clock=clock, parallelism=64
    ) as engine:
        clock.running = lambda: int(engine.statistics()["running"])
        runs: dict[str, str] = {}
        # one logical date for every run of the group, as DAGs sharing a schedule have: an
        # ExternalTaskSensor looks for the other DAG's run at its own logical date
        logical_date = clock.now()

        async def trigger(dag: DAG) -> None:
            try:
                run = await engine.trigger_dag(
                    dag.dag_id, logical_date=logical_date, conf=CONF.get(dag.dag_id)
                )
                runs[dag.dag_id] = run.run_id
            except Exception as exc:
                outcomes[dag.dag_id].error = f"trigger: {type(exc).__name__}: {exc}"

        async def wait(dag_id: str, run_id: str) -> None:
            with anyio.move_on_after(seconds):
                await engine.wait_for_run(dag_id, run_id)

        readers = feeders(dags)
        for dag in dags:  # the producers of what a reader reads end before it starts
            if dag.dag_id not in readers:
                await trigger(dag)
        async with anyio.create_task_group() as tg:
            for producer in set().union(*readers.values()) & set(runs):
                tg.start_soon(wait, producer, runs[producer])
        for dag in dags:
            if dag.dag_id in readers:
                await trigger(dag)
        async with anyio.create_task_group() as tg:
            for dag_id, run_id in runs.items():
                tg.start_soon(wait, dag_id, run_id)
        for dag_id, run_id in runs.items():
            run = await engine.get_dag_run(dag_id, run_id)
            outcome = outcomes[dag_id]
            outcome.run_state = str(run.state.value)
            outcome.logical_date = run.logical_date
            errors = []
            for ti in await engine.get_task_instances(dag_id, run_id):
                name = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
                outcome.tasks[name] = str(ti.state.value)
                if ti.error and ti.state.value in ("failed", "up_for_retry"):
                    errors.append(f"{name}: {first_line(ti.error)}")
            if errors:
                outcome.error = "; ".join(errors)


async def run_all(dags: list[DAG], seconds: float) -> dict[str, DagOutcome]:
    outcomes = {dag.dag_id: DagOutcome(dag.dag_id) for dag in dags}
    async with anyio.create_task_group() as tg:
        for group in linked(dags):
            tg.start_soon(run_group, group, seconds, outcomes)
    return outcomes


#: dag_id -> the DAG's outcome -> its expectation: for DAGs whose branches are chosen at random
EXPECTED_FROM_OUTCOME: dict[str, Callable[[DagOutcome], Expectation]] = {
    "example_branch_operator": _random_branches(("branch_", "follow_"), ("ext_py_",), ("venv_",)),
    "example_branch_python_operator_decorator": _random_branches(
        ("branch_", "follow_"), ("ext_py_",), ("venv_",)
    ),
}


def verdict(outcome: DagOutcome) -> str:
    """'ok', 'WRONG: ...', 'needs: ...' or 'unverified'."""
    if outcome.dag_id in NEEDS:
        return f"needs: {NEEDS[outcome.dag_id]}"
    by_outcome = EXPECTED_FROM_OUTCOME.get(outcome.dag_id)
    expected = EXPECTED.get(outcome.dag_id)
    if by_outcome is not None:
        run_state, rules = by_outcome(outcome)
    elif expected is not None:
        run_state, rules = expected(outcome.logical_date or datetime.now(UTC))
    else:
        return "unverified"
    wrong = []
    if outcome.run_state != run_state:
        wrong.append(f"run {outcome.run_state} (Airflow: {run_state})")
    for task, state in outcome.tasks.items():
        want = next((s for pattern, s in rules.items() if fnmatch.fnmatchcase(task, pattern)), S)
        if state != want:
            wrong.append(f"{task} {state} (Airflow: {want})")
    return "ok" if not wrong else "WRONG: " + ", ".join(wrong)


def summarize_tasks(tasks: Mapping[str, str]) -> str:
    by_state: dict[str, list[str]] = {}
    for task, state in tasks.items():
        by_state.setdefault(state, []).append(task)
    parts = []
    for state, names in sorted(by_state.items()):
        shown = names if state != "success" else []
        parts.append(f"{len(names)} {state}" + (f" ({', '.join(shown)})" if shown else ""))
    return "; ".join(parts)


def quiet() -> None:
    """The loader's and the engine's log lines say what the table says: keep errors only."""
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per DAG run")
    parser.add_argument("--only", default="", help="only files whose name contains this")
    parser.add_argument("--verbose", action="store_true", help="every task's state")
    args = parser.parse_args(argv)
    quiet()
    files: list[FileOutcome] = []
    dags: list[DAG] = []
    folders = fetch(args.cache)
    example_dags_package.install(folders[0])  # `airflow.example_dags`: the core examples
    parser = ParseServer(preload=(*PRELOAD, example_dags_package.__name__))
    with contextlib.closing(parser):
        loaded = [load(folder, parser) for folder in folders]
    for bag, paths in loaded:
        errors = bag.import_errors
        owned = bag.dag_files
        for path in paths:
            if args.only not in path.name:
                continue
            rel = path.relative_to(args.cache / "tree").as_posix()
            error = errors.get(str(path))
            if error is not None:
                message = str(error).removeprefix(f"{path}: ")
                files.append(FileOutcome(rel, False, short(message)))
                continue
            outcome = FileOutcome(rel, True)
            for dag_id in owned.get(str(path), []):
                dags.append(bag.get_dag(dag_id))
                outcome.dags.append(DagOutcome(dag_id))
            files.append(outcome)
    with contextlib.redirect_stdout(sys.stderr):  # what the tasks print
        results = anyio.run(run_all, dags, args.timeout) if dags else {}
    ok = unverified = needy_dags = 0
    print(f"{'file':58} {'loads':5} {'needs':22} DAG: run state, tasks, verdict / error")
    for file in files:
        needs = NEEDS.get(Path(file.path).name, "")
        loads = "yes" if file.loads else "NO"
        print(f"{file.path:58} {loads:5} {needs:22} {file.error or ''}")
        for i, placeholder in enumerate(file.dags):
            result = file.dags[i] = results.get(placeholder.dag_id, placeholder)
            judged = verdict(result)
            ok += judged == "ok"
            unverified += judged == "unverified"
            needy_dags += judged.startswith("needs:") or bool(needs)
            tasks = (
                ", ".join(f"{t}={s}" for t, s in result.tasks.items())
                if args.verbose
                else summarize_tasks(result.tasks)
            )
            print(f"    {result.dag_id}: {result.run_state}; {tasks}; {judged}")
            if result.error and judged != "ok":
                print(f"        error: {result.error[:300]}")
    needy = [f for f in files if Path(f.path).name in NEEDS]
    judged_files = [f for f in files if f not in needy]
    loaded = sum(f.loads for f in judged_files)
    total_dags = sum(len(f.dags) for f in files) - needy_dags
    print(
        f"\n{loaded} of {len(judged_files)} files load; {ok} of {total_dags} DAGs end in "
        f"Airflow's states ({unverified} not verified: no expectation encoded); apart: "
        f"{len(needy)} files and {needy_dags} DAGs need a service asyncflow will never have"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
