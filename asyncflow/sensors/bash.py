"""`BashSensor`: run a bash command at each poke; exit code 0 means the condition holds.

Any other exit code pokes again later, unless `retry_exit_code` is set: then only that code pokes
again and any other one fails the task at once (without retries), as in Airflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asyncflow.exceptions import AsyncflowFailException
from asyncflow.models.baseoperator import Context, RunsIn
from asyncflow.operators.bash import child_environment, describe_exit, run_command
from asyncflow.sensors.base import BaseSensorOperator


class BashSensor(BaseSensorOperator):
    template_fields = ("bash_command", "env", "cwd")
    template_shell_fields = ("bash_command",)
    runs_in: RunsIn = "process"

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        cwd: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = dict(env) if env is not None else None
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code
        self.cwd = cwd

    #: values of `{{ ... }}` in bash_command, handed to the shell as variables (see templating)
    template_env: Mapping[str, str] = {}

    async def poke(self, context: Context) -> bool:
        code, _ = await run_command(
            self.bash_command,
            env={**child_environment(self.env, False), **self.template_env},
            cwd=self.cwd,
            encoding=self.output_encoding,
            grace=5.0,
            ti=context.get("ti"),
        )
        if code == 0:
            return True
        if self.retry_exit_code is not None and code != self.retry_exit_code:
            raise AsyncflowFailException(
                f"BashSensor {self.task_id!r}: command failed with {describe_exit(code)} "
                f"(only {self.retry_exit_code} means 'poke again')"
            )
        return False
