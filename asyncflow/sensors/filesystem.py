"""`FileSensor`: waits until a path (a glob pattern is allowed) exists."""

from __future__ import annotations

import glob
import os
from typing import Any

from asyncflow.models.baseoperator import Context
from asyncflow.sensors.base import BaseSensorOperator
from asyncflow.triggers.file import FileTrigger


class FileSensor(BaseSensorOperator):
    template_fields = ("filepath",)

    def __init__(self, *, filepath: str, recursive: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = filepath
        self.recursive = recursive

    def trigger(self, context: Context) -> FileTrigger:
        return FileTrigger(self.filepath, self.recursive, self.poke_interval)

    def poke(self, context: Context) -> bool:
        for path in glob.glob(self.filepath, recursive=self.recursive):
            if os.path.isfile(path) or (os.path.isdir(path) and os.listdir(path)):
                return True
            if os.path.isdir(path):
                return True
        return False
