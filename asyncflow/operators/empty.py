"""`EmptyOperator`: does nothing; the scheduler marks it done without starting a worker."""

from __future__ import annotations

from typing import Any

from asyncflow.models.baseoperator import BaseOperator, Context


class EmptyOperator(BaseOperator):
    ui_color = "#e8f7e4"

    async def execute(self, context: Context) -> Any:
        return None
