"""`asyncflow dags show | state | details`: what a DAG is and where its runs are."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING

from asyncflow.cli.context import Cli
from asyncflow.cli.output import CommandError
from asyncflow.cli.render import in_order, run_dict
from asyncflow.exitcodes import EX_UNAVAILABLE, EX_USAGE

if TYPE_CHECKING:
    from asyncflow.models.dag import DAG


# -- show -----------------------------------------------------------------------------------------


def tree(dag: DAG) -> str:
    """The DAG as indented text, roots first, each task under each of its upstream; a task
    already drawn above is named again with "(see above)" instead of repeating its subtree."""
    lines = [f"{dag.dag_id}"]
    drawn: set[str] = set()
    order = {task_id: i for i, task_id in enumerate(in_order(dag))}

    def draw(task_id: str, prefix: str, last: bool) -> None:
        task = dag.get_task(task_id)
        mark = "└── " if last else "├── "
        label = f"{task_id} ({type(task).__name__})"
        children = sorted(task.downstream_task_ids, key=order.__getitem__)
        if task_id in drawn and children:
            lines.append(f"{prefix}{mark}{label} (see above)")
            return
        lines.append(f"{prefix}{mark}{label}")
        drawn.add(task_id)
        for i, child in enumerate(children):
            draw(child, prefix + ("    " if last else "│   "), i == len(children) - 1)

    roots = [t for t in in_order(dag) if not dag.get_task(t).upstream_task_ids]
    for i, root in enumerate(roots):
        draw(root, "", i == len(roots) - 1)
    return "\n".join(lines)


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dot(dag: DAG) -> str:
    """Graphviz DOT: one node per task (its operator as a second line), one edge per
    dependency, left to right."""
    lines = [
        f"digraph {_quoted(dag.dag_id)} {{",
        "  rankdir=LR;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f0f0f0", fontsize=11];',
    ]
    for task_id in in_order(dag):
        task = dag.get_task(task_id)
        label = f"{task_id}\\n{type(task).__name__}"
        lines.append(f'  {_quoted(task_id)} [label="{label}"];')
    for task_id in in_order(dag):
        for down in sorted(dag.get_task(task_id).downstream_task_ids):
            lines.append(f"  {_quoted(task_id)} -> {_quoted(down)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def show(cli: Cli) -> int:
    dag = cli.get_dag(cli.args.dag_id)
    save = cli.args.save
    if save is None:
        print(dot(dag) if cli.args.dot else tree(dag), end="\n" if not cli.args.dot else "")
        return 0
    path = Path(save)
    suffix = path.suffix.lower().lstrip(".")
    if suffix == "dot":
        path.write_text(dot(dag))
    elif suffix in ("svg", "png", "pdf"):
        program = shutil.which("dot")
        if program is None:
            raise CommandError(
                f"cannot write {save}: Graphviz's `dot` program is not installed (e.g. `apt "
                "install graphviz`); `--save FILE.dot` or `--dot` give the DOT text without it",
                EX_UNAVAILABLE,
            )
        done = subprocess.run([program, f"-T{suffix}", "-o", str(path)], input=dot(dag),
                              text=True, capture_output=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise CommandError(f"`dot` could not write {save}: {done.stderr.strip()}")
    else:
        raise CommandError(f"--save {save}: the file name must end in .dot, .svg, .png or "
                           ".pdf", EX_USAGE)  # fmt: skip
    cli.out.note(f"wrote {save}")
    return 0


# -- state, details -------------------------------------------------------------------------------


def state(cli: Cli) -> int:
    """Airflow prints the state alone; `-o json|yaml` gives the run's record."""
    dag = cli.get_dag(cli.args.dag_id)
    run = cli.find_run(dag.dag_id, cli.args.run)
    cli.out.text(run.state.value, run_dict(run))
    return 0


def _param_default(param: object) -> object:
    from asyncflow.models.param import NOTSET

    default = getattr(param, "default", None)
    return None if default is NOTSET else default


def details(cli: Cli) -> int:
    dag = cli.get_dag(cli.args.dag_id)
    paused = cli.is_paused(dag)
    row = {
        "dag_id": dag.dag_id,
        "description": dag.description,
        "fileloc": dag.fileloc,
        "schedule": dag.timetable.summary,
        "timetable": type(dag.timetable).__name__,
        "start_date": dag.start_date,
        "end_date": dag.end_date,
        "catchup": dag.catchup,
        "timezone": str(dag.timezone),
        "is_paused": paused,
        "max_active_runs": dag.max_active_runs,
        "max_active_tasks": dag.max_active_tasks,
        "dagrun_timeout": None if dag.dagrun_timeout is None else str(dag.dagrun_timeout),
        "tags": sorted(dag.tags),
        "owner": sorted({task.owner for task in dag.tasks}),
        "params": {key: _param_default(p) for key, p in dag.params.items()},
        "tasks": len(dag.task_dict),
    }
    cli.out.record(row, list(row))
    return 0
