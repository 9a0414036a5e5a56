"""Files and folders asyncflow creates hold other people's secrets (a run's `conf`, XComs, what
tasks print): they are created readable by their owner only (0600 / 0700), whatever the umask.
Files and folders that already exist keep the mode their owner gave them."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def private_folders(path: Path) -> None:
    """Create `path` and any missing parents, each 0700."""
    missing: list[Path] = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            continue
        os.chmod(folder, FOLDER_MODE)


def create_private_file(path: str | os.PathLike[str], flags: int = os.O_RDWR) -> int:
    """Open `path`, creating it 0600 if it does not exist; returns the descriptor."""
    try:
        fd = os.open(path, flags | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, FILE_MODE)
    except FileExistsError:
        return os.open(path, flags | os.O_CLOEXEC)
    os.fchmod(fd, FILE_MODE)  # exactly 0600, also under an odd umask
    return fd


def precreate_private_file(path: str | os.PathLike[str]) -> None:
    """Create an empty `path`, 0600, if nothing is there. Best effort: whoever opens it next
    says why, if it could not be created."""
    if not os.path.lexists(path):
        with contextlib.suppress(OSError):
            os.close(create_private_file(path))
