"""The README's embedding example is a whole program that does what it says."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def embedding_example() -> str:
    section = README.read_text().split("## Embedding", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "the Embedding section has a python example"
    return match.group(1)


def test_the_embedding_example_runs_one_run_and_nothing_else(tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(embedding_example())
    done = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith(" success"), done.stdout


def test_the_settings_table_lists_every_setting() -> None:
    import dataclasses

    from asyncflow.service.config import Settings

    table = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`") for line in table.splitlines()
            if line.startswith("| `")}  # fmt: skip
    assert {f.name for f in dataclasses.fields(Settings)} <= rows
