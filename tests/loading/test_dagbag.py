"""DagBag: discovery, ignore files, isolated imports with errors and timeouts, refresh."""

from __future__ import annotations

import os
import sys
import textwrap
import time
from pathlib import Path

import pytest

from asyncflow.exceptions import DagFileError, DagNotFound
from asyncflow.loading.dagbag import BagChanges, DagBag, load_dags

HEADER = """\
from asyncflow.models.dag import DAG
from asyncflow.models.baseoperator import BaseOperator
"""


def dag_source(*dag_ids: str, body: str = "") -> str:
    """A DAG file defining each dag_id in a `with DAG(...) as dag:` block."""
    blocks = "".join(
        f"with DAG({dag_id!r}, schedule=None) as dag:\n    BaseOperator(task_id='t')\n"
        for dag_id in dag_ids
    )
    return HEADER + textwrap.dedent(body) + blocks


def write(path: Path, text: str) -> Path:
    """Write a file; on a rewrite, move its mtime on so that a refresh must see the change."""
    path.parent.mkdir(parents=True, exist_ok=True)
    before = path.stat().st_mtime_ns if path.exists() else None
    path.write_text(text)
    if before is not None:
        later = max(before, path.stat().st_mtime_ns) + 1_000_000_000
        os.utime(path, ns=(later, later))
    return path


def load(folder: Path, **kwargs: float | bool) -> DagBag:
    bag = DagBag(folder, **kwargs)  # type: ignore[arg-type]
    bag.collect()
    return bag


def modules_of(path: Path) -> list[str]:
    return [n for n, m in list(sys.modules.items()) if getattr(m, "__file__", None) == str(path)]


def error_of(bag: DagBag, path: Path) -> DagFileError:
    assert str(path) in bag.import_errors, bag.import_errors
    return bag.import_errors[str(path)]


# -- discovery ---------------------------------------------------------------------------------
def test_finds_dag_files_recursively_in_sorted_order(tmp_path: Path) -> None:
    write(tmp_path / "b.py", dag_source("b"))
    write(tmp_path / "a.py", dag_source("a"))
    write(tmp_path / "sub" / "deeper" / "c.py", dag_source("c"))
    write(tmp_path / "sub" / "notes.txt", dag_source("not_python"))

    bag = load(tmp_path)

    assert set(bag.dags) == {"a", "b", "c"}
    assert list(bag.dag_files) == [
        str(tmp_path / "a.py"),
        str(tmp_path / "b.py"),
        str(tmp_path / "sub" / "deeper" / "c.py"),
    ]
    assert bag.dag_files[str(tmp_path / "sub" / "deeper" / "c.py")] == ["c"]
    assert bag.import_errors == {}


def test_safe_mode_skips_files_without_the_words(tmp_path: Path) -> None:
    helper = write(tmp_path / "helper.py", "raise RuntimeError('helpers are not imported')\n")
    write(tmp_path / "real.py", dag_source("real"))

    bag = load(tmp_path)
    assert set(bag.dags) == {"real"}
    assert bag.import_errors == {}
    assert str(helper) not in bag.dag_files

    unsafe = load(tmp_path, safe_mode=False)
    assert "helpers are not imported" in str(error_of(unsafe, helper))


def test_asyncflowignore_in_root_and_in_subfolder(tmp_path: Path) -> None:
    write(tmp_path / ".asyncflowignore", "# scratch files\nscratch_*.py\n\nvendor/\n")
    write(tmp_path / "sub" / ".asyncflowignore", "local.py\ndeep/**\n")
    write(tmp_path / "scratch_1.py", dag_source("scratch"))
    write(tmp_path / "sub" / "scratch_2.py", dag_source("scratch_in_sub"))
    write(tmp_path / "vendor" / "v.py", dag_source("vendored"))
    write(tmp_path / "sub" / "local.py", dag_source("sub_local"))
    write(tmp_path / "sub" / "deep" / "x" / "y.py", dag_source("deep"))
    write(tmp_path / "local.py", dag_source("root_local"))  # sub's pattern does not reach up
    write(tmp_path / "sub" / "kept.py", dag_source("kept"))
    write(tmp_path / "sub" / "x" / "deep" / "z.py", dag_source("sub_x_deep"))  # anchored at sub/

    bag = load(tmp_path)

    assert set(bag.dags) == {"root_local", "kept", "sub_x_deep"}
    assert bag.import_errors == {}


def test_unassigned_dags_are_found(tmp_path: Path) -> None:
    write(
        tmp_path / "anonymous.py",
        HEADER
        + "with DAG('anonymous', schedule=None):\n    BaseOperator(task_id='t')\n"
        + "def build():\n    with DAG('built', schedule=None):\n"
        + "        BaseOperator(task_id='t')\nbuild()\n",
    )
    write(
        tmp_path / "decorated.py",
        "from asyncflow.models.taskflow import dag\n"
        "from asyncflow.models.baseoperator import BaseOperator\n"
        "@dag(schedule=None)\ndef decorated():\n    BaseOperator(task_id='t')\n"
        "decorated()\n",
    )

    bag = load(tmp_path)

    assert set(bag.dags) == {"anonymous", "built", "decorated"}
    assert bag.dag_files[str(tmp_path / "anonymous.py")] == ["anonymous", "built"]
    assert all(dag.frozen for dag in bag.dags.values())


def test_dag_in_a_module_global_is_found_when_not_collected(tmp_path: Path) -> None:
    # Built in another thread, so the import's collection (thread-local) does not see it.
    write(
        tmp_path / "threaded.py",
        HEADER
        + "import threading\nbox = []\n"
        + "worker = threading.Thread(target=lambda: box.append(DAG('threaded', schedule=None)))\n"
        + "worker.start()\nworker.join()\nthe_dag = box[0]\n",
    )

    assert set(load(tmp_path).dags) == {"threaded"}


def test_public_import_path(tmp_path: Path) -> None:
    try:
        from asyncflow import DAG  # noqa: F401
    except ImportError:
        pytest.skip("asyncflow does not re-export DAG yet")
    write(
        tmp_path / "public.py",
        "from asyncflow import DAG\nwith DAG('public', schedule=None):\n    pass\n",
    )
    assert set(load(tmp_path).dags) == {"public"}


def test_dag_file_sees_its_folder_and_its_own_module(tmp_path: Path) -> None:
    write(tmp_path / "sub" / "helper.py", "SUFFIX = '_from_helper'\n")
    write(
        tmp_path / "sub" / "uses.py",
        "from __future__ import annotations\n"
        + HEADER
        + "import dataclasses\nfrom helper import SUFFIX\n"
        + "@dataclasses.dataclass\nclass Spec:\n    name: str\n"
        + "with DAG(Spec('uses').name + SUFFIX, schedule=None):\n    BaseOperator(task_id='t')\n",
    )

    bag = load(tmp_path)

    assert set(bag.dags) == {"uses_from_helper"}, bag.import_errors


# -- import errors -----------------------------------------------------------------------------
def test_syntax_error_names_file_and_line_and_others_still_load(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", HEADER + "def broken(:\n    pass\n")
    write(tmp_path / "good.py", dag_source("good"))

    bag = load(tmp_path)

    error = error_of(bag, broken)
    assert str(broken) in str(error)
    assert "line 3" in str(error)
    assert "SyntaxError" in str(error)
    assert "SyntaxError" in error.stacktrace
    assert set(bag.dags) == {"good"}
    assert str(broken) not in bag.dag_files


def test_exception_at_import_keeps_the_users_frames_only(tmp_path: Path) -> None:
    broken = write(tmp_path / "broken.py", dag_source("never", body="x = 1\nprint(undefined)\n"))

    bag = load(tmp_path)

    error = error_of(bag, broken)
    assert error.fileloc == str(broken)
    assert "line 4: NameError: name 'undefined' is not defined" in str(error)
    assert f'File "{broken}", line 4' in error.stacktrace
    assert "dagbag.py" not in error.stacktrace
    assert "importlib" not in error.stacktrace
    assert bag.dags == {}
    assert modules_of(broken) == []


def test_cycle_is_an_import_error_of_its_file(tmp_path: Path) -> None:
    cyclic = write(
        tmp_path / "cyclic.py",
        HEADER
        + "with DAG('cyclic', schedule=None):\n"
        + "    a = BaseOperator(task_id='a')\n    b = BaseOperator(task_id='b')\n    a >> b >> a\n",
    )
    write(tmp_path / "fine.py", dag_source("fine"))

    bag = load(tmp_path)

    assert "cycle" in str(error_of(bag, cyclic))
    assert set(bag.dags) == {"fine"}


def test_import_that_hangs_is_reported_within_the_timeout(tmp_path: Path) -> None:
    hung = write(tmp_path / "hung.py", dag_source("hung", body="import time\ntime.sleep(30)\n"))
    write(tmp_path / "fine.py", dag_source("fine"))

    started = time.monotonic()
    bag = load(tmp_path, import_timeout=0.5)
    elapsed = time.monotonic() - started

    assert elapsed < 5
    message = str(error_of(bag, hung))
    assert "did not finish importing within 0.5 s" in message
    assert "it was stopped; look for work at import time" in message
    assert set(bag.dags) == {"fine"}


def test_duplicate_dag_id_across_files_is_an_error_of_the_second(tmp_path: Path) -> None:
    first = write(tmp_path / "a.py", dag_source("x"))
    second = write(tmp_path / "b.py", dag_source("x", "y"))

    bag = load(tmp_path)

    assert bag.dags["x"].fileloc == str(first)
    assert "y" not in bag.dags
    message = str(error_of(bag, second))
    assert "DAG 'x' is defined in a.py and again in b.py: dag_ids must be unique" in message
    assert str(first) not in bag.import_errors


def test_duplicate_dag_id_within_one_file(tmp_path: Path) -> None:
    twice = write(tmp_path / "twice.py", dag_source("x", "x"))

    bag = load(tmp_path)

    assert "'x' is defined twice" in str(error_of(bag, twice))
    assert bag.dags == {}


def test_get_dag(tmp_path: Path) -> None:
    write(tmp_path / "a.py", dag_source("a"))
    bag = load(tmp_path)
    assert bag.get_dag("a") is bag.dags["a"]
    with pytest.raises(DagNotFound, match="'missing'"):
        bag.get_dag("missing")


# -- refresh -----------------------------------------------------------------------------------
def test_refresh_without_changes_keeps_everything(tmp_path: Path) -> None:
    write(tmp_path / "a.py", dag_source("a"))
    bag = load(tmp_path)
    before = bag.dags["a"]

    assert bag.refresh() == BagChanges(added=[], changed=[], removed=[], errors_changed=False)
    assert bag.dags["a"] is before


def test_refresh_adds_new_and_replaces_changed_files_only(tmp_path: Path) -> None:
    changing = write(tmp_path / "changing.py", dag_source("changing"))
    write(tmp_path / "stable.py", dag_source("stable"))
    bag = load(tmp_path)
    old_changing, old_stable = bag.dags["changing"], bag.dags["stable"]

    write(changing, dag_source("changing", body="# edited\n"))
    write(tmp_path / "new.py", dag_source("new"))
    changes = bag.refresh()

    assert changes == BagChanges(
        added=["new"], changed=["changing"], removed=[], errors_changed=False
    )
    assert bag.dags["changing"] is not old_changing
    assert bag.dags["stable"] is old_stable


def test_refresh_drops_dags_of_deleted_files(tmp_path: Path) -> None:
    doomed = write(tmp_path / "doomed.py", dag_source("doomed"))
    write(tmp_path / "stays.py", dag_source("stays"))
    bag = load(tmp_path)

    assert len(modules_of(doomed)) == 1
    doomed.unlink()
    changes = bag.refresh()

    assert changes.removed == ["doomed"]
    assert set(bag.dags) == {"stays"}
    assert str(doomed) not in bag.dag_files
    assert modules_of(doomed) == []
    assert len(modules_of(tmp_path / "stays.py")) == 1  # kept registered while loaded


def test_file_that_breaks_loses_its_dags_until_fixed(tmp_path: Path) -> None:
    path = write(tmp_path / "flaky.py", dag_source("flaky"))
    bag = load(tmp_path)

    write(path, dag_source("flaky", body="raise RuntimeError('broken on purpose')\n"))
    broke = bag.refresh()

    assert broke == BagChanges(added=[], changed=[], removed=["flaky"], errors_changed=True)
    assert "flaky" not in bag.dags
    assert "broken on purpose" in str(error_of(bag, path))

    write(path, dag_source("flaky", body="# fixed\n"))
    fixed = bag.refresh()

    assert fixed == BagChanges(added=["flaky"], changed=[], removed=[], errors_changed=True)
    assert bag.import_errors == {}


def test_removing_the_first_definition_releases_the_duplicate(tmp_path: Path) -> None:
    first = write(tmp_path / "a.py", dag_source("x"))
    second = write(tmp_path / "b.py", dag_source("x"))
    bag = load(tmp_path)
    assert str(second) in bag.import_errors

    first.unlink()
    changes = bag.refresh()

    assert changes == BagChanges(added=[], changed=["x"], removed=[], errors_changed=True)
    assert bag.dags["x"].fileloc == str(second)
    assert bag.import_errors == {}


@pytest.mark.anyio
async def test_load_dags_runs_collect(tmp_path: Path) -> None:
    write(tmp_path / "a.py", dag_source("a"))
    bag = await load_dags(tmp_path, import_timeout=5)
    assert set(bag.dags) == {"a"}
