"""One module of exit statuses: `asyncflow.exitcodes`. No other module defines one."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import asyncflow
from asyncflow import exitcodes

PACKAGE = Path(asyncflow.__file__).parent
EXIT_NAME = re.compile(r"^_?EXIT?_[A-Z_]+$")


def test_no_module_but_exitcodes_defines_an_exit_status() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "exitcodes.py":
            continue
        for node in ast.parse(path.read_text()).body:
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                value = node.value  # type: ignore[union-attr]
                if (isinstance(target, ast.Name) and EXIT_NAME.match(target.id)
                        and isinstance(value, ast.Constant) and isinstance(value.value, int)):
                    found.append(f"{path.relative_to(PACKAGE)}: {target.id}")
    assert found == []


def test_the_statuses_are_the_sysexits_ones() -> None:
    assert (exitcodes.EX_UNAVAILABLE, exitcodes.EX_SOFTWARE, exitcodes.EX_IOERR,
            exitcodes.EX_CONFIG) == (69, 70, 74, 78)  # fmt: skip
    values = [getattr(exitcodes, name) for name in exitcodes.__all__]
    assert len(set(values)) == len(values)
