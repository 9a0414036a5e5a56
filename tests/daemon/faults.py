"""`asyncflow` with a fault injected into its store, run as a script by the daemon tests.

    ASYNCFLOW_TEST_FAULT=<kind>:<flag file> python tests/daemon/faults.py serve ...

Once the flag file exists, every `SQLiteStore.write` of this process raises:

* ``crash``: `RuntimeError`, as a bug in the scheduler's commit would: the scheduler dies;
* ``full``: `StoreError`, as a full disk does: the scheduler keeps the burst and retries it.

Only this script reads the variable: the package has no test hook.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from asyncflow.cli.main import main
from asyncflow.exceptions import StoreError
from asyncflow.store.sqlite import SQLiteStore

KIND, _, FLAG = os.environ["ASYNCFLOW_TEST_FAULT"].partition(":")
_real_write = SQLiteStore.write


async def _write(self: SQLiteStore, batch: Any) -> Any:
    if Path(FLAG).exists():
        if KIND == "crash":
            raise RuntimeError("injected fault: a bug in the scheduler's commit")
        raise StoreError("injected fault: database or disk is full")
    return await _real_write(self, batch)


SQLiteStore.write = _write  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
