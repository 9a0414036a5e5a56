"""`BashOperator`: run a bash command in its own session; its last stdout line is its XCom.

Every `{{ ... }}` value rendered into `bash_command` is shell-quoted, so a run's `conf` or `params`
can never become shell syntax. Exit code `skip_on_exit_code` (99) ends the task as skipped.

Every process the command starts ends with the task (`asyncflow.proctree`): also those that left
its process group or session, forked twice, or scrubbed their environment. When the command
ends, on a timeout, a clear or a shutdown, the whole tree gets SIGTERM, then SIGKILL after the
grace period.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import anyio
from anyio.abc import Process

from asyncflow.engine.context import DEFAULT_MAX_XCOM_BYTES
from asyncflow.engine.templating import ShellPositionError, shell_template
from asyncflow.exceptions import (
    AsyncflowError,
    AsyncflowSkipException,
    DagDefinitionError,
    XComTooLarge,
)
from asyncflow.models import checks
from asyncflow.models.baseoperator import BaseOperator, Context, RunsIn
from asyncflow.models.dag import current_dag
from asyncflow.models.xcom_arg import XComArg
from asyncflow.proctree import ATTEMPT_MARKER, ProcessTree, new_attempt_id

#: variables of the daemon's service manager that a task must not inherit
_PRIVATE_ENV = ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID")
#: the daemon's opaque id (asyncflow.service.strays.MARKER; the service layer sits above us)
ENGINE_MARKER = "ASYNCFLOW_ENGINE_ID"


def child_environment(env: Mapping[str, Any] | None, append_env: bool) -> dict[str, str]:
    """The subprocess's environment; values that are not strings (a pulled XCom's number)
    are passed as their text."""
    if env is not None:
        env = {str(k): v if isinstance(v, str) else str(v) for k, v in env.items()}
    if env is None:
        base = dict(os.environ)
    elif append_env:
        base = {**os.environ, **env}
    else:
        base = dict(env)
    for name in _PRIVATE_ENV:
        base.pop(name, None)
    # The daemon's marker (asyncflow.service.strays): finds this process again if the daemon
    # dies without ending it, also when the task passes its own env=.
    marker = os.environ.get(ENGINE_MARKER)
    if marker:
        base[ENGINE_MARKER] = marker
    return base


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name} (exit code {code})"
    return f"exit code {code}"


class BashOperator(BaseOperator):
    template_fields = ("bash_command", "env", "cwd")
    template_shell_fields = ("bash_command",)
    template_ext = (".sh", ".bash")
    ui_color = "#f0ede4"
    runs_in: RunsIn = "process"

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        append_env: bool = False,
        output_encoding: str = "utf-8",
        skip_on_exit_code: int | Sequence[int] | None = 99,
        cwd: str | None = None,
        termination_grace: float = 5.0,
        output_processor: Callable[[str], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        check_shell_command(bash_command, kwargs.get("task_id"), kwargs.get("dag"))
        super().__init__(**kwargs)
        where = self.where()
        if not isinstance(bash_command, str | XComArg) or not str(bash_command).strip():
            raise where.error(
                f"bash_command={checks.show(bash_command)} is not a command: give a non-empty "
                "string (or a task's .output)"
            )
        self.bash_command = bash_command
        self.env = checks.mapping(where, "env", env) if env is not None else None
        self.append_env = bool(append_env)
        self.output_encoding = checks.encoding(where, "output_encoding", output_encoding)
        self.skip_on_exit_code = checks.exit_codes(where, skip_on_exit_code)
        self.cwd = cwd if isinstance(cwd, XComArg) else checks.optional_string(where, "cwd", cwd)
        self.termination_grace = checks.duration(
            where, "termination_grace", termination_grace
        ).total_seconds()
        self.output_processor = checked_processor(where, output_processor)

    #: values of `{{ ... }}` in bash_command, handed to the shell as variables (see templating)
    template_env: Mapping[str, str] = {}

    async def execute(self, context: Context) -> Any:
        output = await run_bash(
            self.bash_command,
            env={**child_environment(self.env, self.append_env), **self.template_env},
            cwd=self.cwd,
            encoding=self.output_encoding,
            skip_on_exit_code=self.skip_on_exit_code,
            grace=self.termination_grace,
            ti=context.get("ti"),
        )
        return process_output(self, output, context)


def checked_processor(where: checks.Where, value: Any) -> Callable[[str], Any] | None:
    if value is not None and not callable(value):
        raise where.error(f"output_processor={checks.show(value)} is not callable")
    return value  # type: ignore[no-any-return]


def process_output(task: BaseOperator, output: str | None, context: Context) -> Any:
    """The last output line through `output_processor` (Airflow's), then, with
    `multiple_outputs`, each key of a dict pushed as its own XCom."""
    processor: Callable[[str], Any] | None = getattr(task, "output_processor", None)
    if processor is None:
        return output
    try:
        result = processor(output if output is not None else "")
    except Exception as exc:
        raise AsyncflowError(
            f"DAG {task.dag_id!r}, task {task.task_id!r}: output_processor raised "
            f"{type(exc).__name__}: {exc} on the output line {output!r:.200}"
        ) from exc
    if task.multiple_outputs and isinstance(result, dict):
        for key, value in result.items():
            context["ti"].xcom_push(key=str(key), value=value)
    return result


def check_shell_command(command: object, task_id: object, dag: Any = None) -> None:
    """Refuse at load time a `bash_command` template whose `{{ ... }}` stands where bash would
    read the value again as code (arithmetic, `eval`, `bash -c '...'` ...; see shellquote)."""
    if not isinstance(command, str) or ("{{" not in command and "{%" not in command):
        return
    try:
        shell_template(command)
    except ShellPositionError as exc:
        dag = dag or current_dag()
        raise DagDefinitionError(
            f"bash_command: {exc}",
            dag_id=getattr(dag, "dag_id", None),
            fileloc=getattr(dag, "fileloc", None),
            task_id=str(task_id),
        ) from None


async def run_bash(
    command: str,
    *,
    env: Mapping[str, str],
    cwd: str | None,
    encoding: str,
    skip_on_exit_code: tuple[int, ...],
    grace: float,
    ti: Any = None,
) -> str | None:
    code, last = await run_command(command, env=env, cwd=cwd, encoding=encoding,
                                   grace=grace, ti=ti)  # fmt: skip
    if code == 0:
        if last is None:
            return None
        limit = getattr(ti, "max_xcom_bytes", DEFAULT_MAX_XCOM_BYTES)
        if last.size > limit:  # the XCom would be its JSON text: at least this many bytes
            raise XComTooLarge(getattr(ti, "task_id", "?"), "return_value", last.size, limit)
        return last.text(encoding)
    if code in skip_on_exit_code:
        raise AsyncflowSkipException(f"bash command exited with {code}: task skipped")
    raise AsyncflowError(f"bash command failed: {describe_exit(code)}")


async def run_command(
    command: str,
    *,
    env: Mapping[str, str],
    cwd: str | None,
    encoding: str,
    grace: float,
    ti: Any = None,
) -> tuple[int, Line | None]:
    """Run `command` with bash in a session of its own, each output line into the attempt's
    log; (exit code, last output line). When it ends, or is cancelled, every process it
    started is ended (`terminate_tree`)."""
    if cwd is not None and not await anyio.Path(cwd).is_dir():
        raise AsyncflowError(f"cwd {cwd!r} is not a directory: create it or fix the path")
    attempt_id = new_attempt_id()
    process = await anyio.open_process(
        ["bash", "-c", command],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env={**env, ATTEMPT_MARKER: attempt_id},
        start_new_session=True,
    )
    tree = ProcessTree(process.pid, attempt_id)
    limit = getattr(ti, "max_xcom_bytes", DEFAULT_MAX_XCOM_BYTES)
    reader = LineReader(keep=max(limit, LOG_LINE_BYTES) + 1)
    last: list[Line] = []
    failed: list[Exception] = []  # raised here, not as an ExceptionGroup of the task group
    read_all = anyio.Event()

    async def read() -> None:
        assert process.stdout is not None
        try:
            async for chunk in process.stdout:
                for line in reader.feed(chunk):
                    last[:] = [line]
                    _emit(ti, line.text(encoding))
            end = reader.end()
            if end is not None:
                last[:] = [end]
                _emit(ti, end.text(encoding))
        except Exception as exc:
            failed.append(exc)
        read_all.set()

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(tree.keep_recording)
            group.start_soon(read)
            code = await process.wait()
            # What the command left running ends with it, and lets go of the output pipe.
            await tree.end(grace)
            with anyio.move_on_after(grace):  # a process we could not find may hold it
                await read_all.wait()
            group.cancel_scope.cancel()
    finally:
        with anyio.CancelScope(shield=True):
            await terminate_tree(process, tree, grace)
    if failed:
        raise failed[0]
    return code, (last[0] if last else None)


#: a log line keeps at least this much of a longer line (the rest is counted, not kept)
LOG_LINE_BYTES = 64 * 1024


class Line(NamedTuple):
    """One line of output: its first bytes (up to the reader's `keep`) and its full size."""

    head: bytes
    size: int

    def text(self, encoding: str) -> str:
        text = self.head.decode(encoding, errors="replace").rstrip("\r")
        if self.size > len(self.head):
            text += f" [... line of {self.size:,} bytes cut at {len(self.head):,}]"
        return text


class LineReader:
    """Splits a byte stream into lines in linear time and bounded memory: each chunk is
    scanned once, and a line keeps at most `keep` bytes (its full size is still counted)."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self._parts: list[bytes] = []
        self._kept = 0
        self._size = 0

    def feed(self, chunk: bytes) -> list[Line]:
        lines: list[Line] = []
        start = 0
        while (newline := chunk.find(b"\n", start)) != -1:
            self._add(chunk, start, newline)
            lines.append(self._take())
            start = newline + 1
        self._add(chunk, start, len(chunk))
        return lines

    def end(self) -> Line | None:
        """The unterminated last line, if any."""
        return self._take() if self._size else None

    def _add(self, chunk: bytes, start: int, stop: int) -> None:
        self._size += stop - start
        room = self.keep - self._kept
        if room > 0 and stop > start:
            part = chunk[start : min(stop, start + room)]
            self._parts.append(part)
            self._kept += len(part)

    def _take(self) -> Line:
        line = Line(b"".join(self._parts), self._size)
        self._parts, self._kept, self._size = [], 0, 0
        return line


def _emit(ti: Any, line: str) -> None:
    if ti is not None and hasattr(ti, "log_line"):
        ti.log_line(line)
    else:  # outside the engine (a test calling execute() directly)
        from asyncflow.logs import get_logger

        get_logger("asyncflow.task").info(line)


async def terminate_tree(process: Process, tree: ProcessTree, grace: float) -> None:
    """End every process of the task (its tree, session, marker: `asyncflow.proctree`):
    SIGTERM, then SIGKILL after `grace` seconds; reaps the first process."""
    if process.returncode is not None and tree.ended:
        return  # it exited and what it left was already looked for and ended
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # at once, before the scan
    await tree.end(grace)
    if process.returncode is None:
        with anyio.move_on_after(grace):
            await process.wait()
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
