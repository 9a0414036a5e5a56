"""DAG files are parsed in child processes: one that spins or hangs at import is killed (not
abandoned in a thread), files load in parallel, a failing file never runs in this process,
and a command that needs one DAG imports only the files that can define it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from asyncflow.loading.dagbag import DagBag
from asyncflow.loading.parsing import ParseServer
from tests.loading.test_dagbag import HEADER, dag_source, error_of, write

#: a DAG file body that appends "<pid>" to ran.log each time it is imported
RECORD = "import os\nwith open({log!r}, 'a') as f:\n    f.write(f'{{os.getpid()}}\\n')\n"


@pytest.fixture
def parser() -> ParseServer:
    server = ParseServer(processes=4)
    yield server  # type: ignore[misc]
    server.close()


def ran(log: Path) -> list[int]:
    return [int(line) for line in log.read_text().split()] if log.exists() else []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def spinning(tmp_path: Path, name: str) -> Path:
    """A DAG file that records its pid, then spins at import forever."""
    pids = tmp_path / f"{name}.pid"
    body = f"import os\nopen({str(pids)!r}, 'w').write(str(os.getpid()))\nwhile True:\n    pass\n"
    return write(tmp_path / "dags" / f"{name}.py", dag_source(name, body=body))


def test_a_spinning_file_is_killed_not_abandoned(tmp_path: Path, parser: ParseServer) -> None:
    spin = spinning(tmp_path, "spin")
    write(tmp_path / "dags" / "fine.py", dag_source("fine"))
    threads_before = set(threading.enumerate())

    bag = DagBag(tmp_path / "dags", import_timeout=1, parser=parser)
    bag.collect()

    message = str(error_of(bag, spin))
    assert "did not finish importing within 1 s (dagbag_import_timeout): it was stopped" in message
    assert "look for work at import time" in message
    assert set(bag.dags) == {"fine"}
    pid = int((tmp_path / "spin.pid").read_text())
    assert pid != os.getpid()
    assert not alive(pid)  # the process that spun is gone...
    assert set(threading.enumerate()) <= threads_before  # ...and no thread runs it here


def test_files_that_overrun_are_timed_in_parallel(tmp_path: Path, parser: ParseServer) -> None:
    for name in ("spin_a", "spin_b", "spin_c"):
        spinning(tmp_path, name)
    write(tmp_path / "dags" / "fine.py", dag_source("fine"))

    started = time.monotonic()
    bag = DagBag(tmp_path / "dags", import_timeout=1.5, parser=parser)
    bag.collect()
    elapsed = time.monotonic() - started

    assert len(bag.import_errors) == 3
    assert set(bag.dags) == {"fine"}
    assert elapsed < 3.0  # one limit (in parallel), not three one after another


def test_a_file_that_fails_never_runs_in_this_process(
    tmp_path: Path, parser: ParseServer
) -> None:
    log = tmp_path / "ran.log"
    broken = write(
        tmp_path / "dags" / "broken.py",
        dag_source("broken", body=RECORD.format(log=str(log)) + "raise RuntimeError('no')\n"),
    )

    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect()

    assert "line 6: RuntimeError: no" in str(error_of(bag, broken))
    assert len(ran(log)) == 1 and os.getpid() not in ran(log)


def test_a_good_file_is_checked_in_a_child_then_imported_here_once_per_version(
    tmp_path: Path, parser: ParseServer
) -> None:
    log = tmp_path / "ran.log"
    body = RECORD.format(log=str(log))
    path = write(tmp_path / "dags" / "good.py", dag_source("good", body=body))

    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect()
    bag.refresh()  # unchanged: neither parsed nor imported again

    assert set(bag.dags) == {"good"}
    child, here = ran(log)
    assert child != os.getpid() and here == os.getpid()

    write(path, dag_source("good", body=RECORD.format(log=str(log)) + "# edited\n"))
    bag.refresh()
    assert len(ran(log)) == 4


def test_a_file_that_ends_its_process_at_import_says_so(
    tmp_path: Path, parser: ParseServer
) -> None:
    quitter = write(
        tmp_path / "dags" / "quitter.py", dag_source("quitter", body="import os\nos._exit(3)\n")
    )
    write(tmp_path / "dags" / "fine.py", dag_source("fine"))

    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect()

    message = str(error_of(bag, quitter))
    assert "ended its process before it finished: the process exited with status 3" in message
    assert set(bag.dags) == {"fine"}


def test_output_at_import_does_not_confuse_the_parse(tmp_path: Path, parser: ParseServer) -> None:
    body = "import sys\nprint('x' * 200_000)\nsys.stdout.flush()\n"
    write(tmp_path / "dags" / "noisy.py", dag_source("noisy", body=body))

    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect()

    assert set(bag.dags) == {"noisy"}, bag.import_errors


def test_the_parse_server_is_replaced_when_it_dies(tmp_path: Path, parser: ParseServer) -> None:
    write(tmp_path / "dags" / "a.py", dag_source("a"))
    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect()
    assert parser._process is not None
    parser._process.kill()
    parser._process.wait()

    write(tmp_path / "dags" / "b.py", dag_source("b"))
    bag.refresh()

    assert set(bag.dags) == {"a", "b"}


def test_collect_for_imports_only_the_files_that_name_the_dag(
    tmp_path: Path, parser: ParseServer
) -> None:
    spinning(tmp_path, "spin")
    log = tmp_path / "ran.log"
    write(tmp_path / "dags" / "other.py", dag_source("other", body=RECORD.format(log=str(log))))
    write(tmp_path / "dags" / "wanted.py", dag_source("wanted"))

    started = time.monotonic()
    bag = DagBag(tmp_path / "dags", import_timeout=20, parser=parser)
    bag.collect_for("wanted")

    assert time.monotonic() - started < 10  # the spinning file was not waited for
    assert set(bag.dags) == {"wanted"}
    assert ran(log) == []
    assert not (tmp_path / "spin.pid").exists()


def test_collect_for_a_dag_id_built_at_import_loads_the_folder(
    tmp_path: Path, parser: ParseServer
) -> None:
    write(
        tmp_path / "dags" / "built.py",
        HEADER
        + "for name in ('a', 'b'):\n"
        + "    globals()[name] = DAG('etl_' + name, schedule=None)\n",
    )

    bag = DagBag(tmp_path / "dags", import_timeout=5, parser=parser)
    bag.collect_for("etl_b")

    assert set(bag.dags) == {"etl_a", "etl_b"}
