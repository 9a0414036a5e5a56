"""Files: `FileTrigger` fires once a path (a glob pattern) exists, `FileDeleteTrigger` once it
exists and has been deleted by the trigger. Inside the engine every waiting file trigger is
woken by one shared watcher when a folder it waits in changes (triggers/filewatch.py: inotify
on Linux; a poll every `poke_interval` seconds only where the kernel cannot tell)."""

from __future__ import annotations

import glob
import os
from collections.abc import AsyncIterator
from typing import Any

from asyncflow.triggers.base import (
    BaseEventTrigger,
    BaseTrigger,
    TriggerEvent,
    classpath_of,
    runtime,
)


def matches(pattern: str, recursive: bool) -> list[str]:
    """Paths matching `pattern` that count as present: files, and non-empty folders."""
    if not glob.has_magic(pattern):  # one stat, not a directory listing
        paths = [pattern] if os.path.exists(pattern) else []
    else:
        paths = glob.glob(pattern, recursive=recursive)
    found = []
    for path in paths:
        if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
            found.append(path)
    return found


class FileTrigger(BaseTrigger):
    """Fires once `filepath` (a glob pattern; `**` with `recursive`) matches a file or a
    non-empty folder; the payload is the first match. Woken by the kernel when a folder on the
    way changes; `poke_interval` is how often it polls where the kernel cannot tell."""

    def __init__(self, filepath: str, recursive: bool = False, poke_interval: float = 5.0,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__()
        self.filepath = filepath
        self.recursive = recursive
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(FileTrigger), {
            "filepath": self.filepath, "recursive": self.recursive,
            "poke_interval": self.poke_interval,
        }  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        found = await runtime().wait_for_path(
            self.filepath, recursive=self.recursive, exists=True, interval=self.poke_interval
        )
        self.log.info("found %s", found[0])
        yield TriggerEvent(found[0])


class FileDeleteTrigger(BaseEventTrigger):
    """Waits for `filepath` to exist, deletes it, and fires with the path as its payload (it
    can watch an asset: `AssetWatcher(name, trigger=FileDeleteTrigger(...))`)."""

    def __init__(self, filepath: str, poke_interval: float = 5.0, **kwargs: Any) -> None:
        super().__init__()
        self.filepath = filepath
        self.poke_interval = float(poke_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(FileDeleteTrigger), {
            "filepath": self.filepath, "poke_interval": self.poke_interval,
        }  # fmt: skip

    async def run(self) -> AsyncIterator[TriggerEvent]:
        rt = runtime()
        while True:
            found = await rt.wait_for_path(
                self.filepath, recursive=False, exists=True, interval=self.poke_interval
            )
            try:
                os.remove(found[0])
            except FileNotFoundError:  # someone else took it first: wait again
                continue
            self.log.info("found and deleted %s", found[0])
            yield TriggerEvent(found[0])
            return


class DirectoryFileDeleteTrigger(FileDeleteTrigger):
    """`FileDeleteTrigger` on `filename` inside `directory`."""

    def __init__(self, directory: str, filename: str, poke_interval: float = 5.0,
                 **kwargs: Any) -> None:  # fmt: skip
        super().__init__(os.path.join(directory, filename), poke_interval)
        self.directory, self.filename = directory, filename

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return classpath_of(DirectoryFileDeleteTrigger), {
            "directory": self.directory, "filename": self.filename,
            "poke_interval": self.poke_interval,
        }  # fmt: skip
