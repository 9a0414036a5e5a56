"""Imports go one way: what users write (models) -> DAG loading (loading) -> the engine -> the
store below it; service and CLI on top. Checked on every `import` statement of the package, also
those inside functions and under TYPE_CHECKING, and the CLI's modules import one another
without a cycle and each one alone."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import asyncflow

PACKAGE = Path(asyncflow.__file__).parent

#: layer -> the layers it must never import
FORBIDDEN = {
    "models": {"loading", "engine", "store", "service", "cli"},
    "triggers": {"loading", "engine", "store", "service", "cli"},
    "sensors": {"loading", "engine", "store", "service", "cli"},
    "loading": {"engine", "store", "service", "cli"},
    "store": {"models", "loading", "engine", "service", "cli"},
    "engine": {"service", "cli"},
    "service": {"cli"},
}


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path


def imported(path: Path, name: str) -> set[str]:
    """Every asyncflow module `path` imports, wherever the statement stands."""
    found = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1],
                                 *([base] if base else [])])  # fmt: skip
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in found if m == "asyncflow" or m.startswith("asyncflow.")}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and (PACKAGE / parts[1]).is_dir() else None


def test_imports_go_one_way() -> None:
    wrong = []
    for name, path in modules():
        own = layer(name)
        for target in imported(path, name):
            if layer(target) in FORBIDDEN.get(own or "", set()):
                wrong.append(f"{name} imports {target}")
    assert wrong == []


def test_the_dag_loader_is_a_layer_of_its_own() -> None:
    assert (PACKAGE / "loading" / "dagbag.py").exists()
    assert not (PACKAGE / "service" / "dagbag.py").exists()


def cli_graph() -> dict[str, set[str]]:
    names = {name: path for name, path in modules() if name.startswith("asyncflow.cli.")}
    return {name: {t for t in imported(path, name) if t in names} for name, path in names.items()}


def test_the_cli_modules_import_one_another_without_a_cycle() -> None:
    graph = cli_graph()
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(name):], name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, [*path, name])
        done.add(name)

    for name in sorted(graph):
        visit(name, [])


@pytest.mark.parametrize("module", sorted(cli_graph()))
def test_each_cli_module_imports_alone(module: str) -> None:
    result = subprocess.run([sys.executable, "-c", f"import {module}"], capture_output=True,
                            text=True, timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr

