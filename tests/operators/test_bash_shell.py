"""The shell promise, as a table of positions by payloads: a value from `dag_run.conf` reaches
bash only as data. Either the DAG is refused at load time with an error naming the task, the
position and the fix, or the task runs, the payload's file never appears and the value is
printed literally."""

from __future__ import annotations

from pathlib import Path

import pytest

from asyncflow import DAG
from asyncflow.exceptions import DagDefinitionError
from asyncflow.operators import BashOperator
from tests.engine.support import run_dag

pytestmark = pytest.mark.anyio

X = '{{ dag_run.conf["x"] }}'

#: payloads: each would create the file F if bash read it as code
PAYLOADS = {
    "subscript": "x[$(touch {F})]",
    "semicolon": "1; touch {F}",
    "substitution": "$(touch {F})",
    "backticks": "`touch {F}`",
    "single_quote": "'; touch {F}; '",
    "double_quote": '"; touch {F}; "',
    "newline": "1\ntouch {F}",
}

#: positions where the value is data: (command, what the last line prints; {x} is the value)
DATA_POSITIONS = {
    "bare": (f"echo {X}", "{x}"),
    "double": (f'echo "<{X}>"', "<{x}>"),
    "single": (f"echo '<{X}>'", "<{x}>"),
    "ansi_c": (f"echo $'<{X}>'", "<{x}>"),
    "inside_quoted_substitution": (f'echo "$(echo {X})"', "{x}"),
    "inside_substitution": (f"printf '%s\\n' $(printf '%s' {X} | wc -c)", "{n}"),
    "backticks": (f'echo "`echo {X}`"', "{x}"),
    "after_apostrophe_comment": (f"echo hi # don't\necho {X}", "{x}"),
    "heredoc": (f"cat <<EOF\n<{X}>\nEOF", "<{x}>"),
    "heredoc_quoted": (f"cat <<'EOF'\n<{X}>\nEOF", "<{x}>"),
    "heredoc_into_cat_then_echo": (f"cat <<EOF\n$(echo {X})\nEOF", "{x}"),
    "bash_c_argument": (f"bash -c 'echo \"$1\"' _ {X}", "{x}"),
    "param_default": (f'echo "${{UNSET_VAR:-{X}}}"', "{x}"),
    "test_builtin": (f'[ "{X}" = never ] || echo "{X}"', "{x}"),
    "case_word": (f"case {X} in never) ;; *) echo {X} ;; esac", "{x}"),
    "export": (f'export V={X}; echo "$V"', "{x}"),
    "for_list": (f'for v in {X}; do echo "$v"; done', "{x}"),
    "redirect_target": (f"echo {X} > /dev/null; echo {X}", "{x}"),
}

#: positions bash evaluates again: refused at load time, whatever the value will be
REFUSED_POSITIONS = {
    "arith_expansion": (f"echo $(( {X} + 1 ))", "arithmetic $(( ))"),
    "arith_command": (f"(( {X} > 3 )) && echo big", "arithmetic (( ))"),
    "double_brackets": (f"[[ {X} -gt 3 ]] && echo big", "[[ ]]"),
    "double_brackets_quoted": (f'[[ "{X}" -gt 3 ]] && echo big', "[[ ]]"),
    "let": (f"let n={X}+1", "let"),
    "array_subscript": (f"a=(1 2); echo ${{a[{X}]}}", "array subscript"),
    "assignment_subscript": (f"a[{X}]=1", "subscript"),
    "substring_offset": (f"v=abc; echo ${{v:{X}}}", "substring offset"),
    "declare_integer": (f"declare -i n={X}", "declare"),
    "read_name": (f"read {X} < /dev/null", "read"),
    "eval": (f"eval echo {X}", "eval"),
    "eval_substitution": (f'eval "$(echo {X})"', "eval"),
    "bash_c_single": (f"bash -c 'echo {X}'", "bash -c"),
    "bash_c_double": (f'bash -c "echo {X}"', "bash -c"),
    "sh_c_behind_sudo": (f"sudo -u nobody sh -c 'echo {X}'", "sh -c"),
    "find_exec_sh_c": (f"find . -maxdepth 0 -exec sh -c 'echo {X}' \\;", "sh -c"),
    "heredoc_into_bash": (f"bash <<EOF\necho {X}\nEOF", "fed to bash"),
    "herestring_into_bash": (f'bash <<< "echo {X}"', "fed to bash"),
    "pipe_into_sh": (f"echo {X} | sh", "piped into sh"),
    "xargs_sh_c": (f"echo {X} | xargs -I{{}} sh -c 'echo {{}}'", "xargs sh"),
    "source_process_substitution": (f"source <(echo {X})", "source"),
    "command_name": (X, "command name"),
    "trap": (f"trap 'echo {X}' EXIT", "trap"),
    "after_backslash": (f"echo \\{X}", "backslash"),
}


@pytest.mark.parametrize("payload_name", list(PAYLOADS))
async def test_values_in_data_positions_are_printed_literally_and_never_run(
    tmp_path: Path, payload_name: str
) -> None:
    marker = tmp_path / "F"
    payload = PAYLOADS[payload_name].format(F=marker)
    work = tmp_path / "work"
    work.mkdir()
    with DAG(f"shell_data_{payload_name}", schedule=None) as dag:
        for name, (command, _) in DATA_POSITIONS.items():
            BashOperator(task_id=name, bash_command=command, cwd=str(work))
    result = await run_dag(dag, conf={"x": payload}, timeout=30)
    assert not marker.exists()
    assert list(work.iterdir()) == []
    for name, (_, expected) in DATA_POSITIONS.items():
        assert result.states[name] == "success", (name, result.tis[name].error)
        want = expected.format(x=payload, n=len(payload.encode())).splitlines()[-1]
        assert result.xcoms[name] == want, name


@pytest.mark.parametrize("position", list(REFUSED_POSITIONS))
def test_values_where_bash_evaluates_again_refuse_the_dag_at_load(position: str) -> None:
    command, where = REFUSED_POSITIONS[position]
    with DAG("shell_refused", schedule=None), pytest.raises(DagDefinitionError) as caught:
        BashOperator(task_id=f"t_{position}", bash_command=command)
    message = str(caught.value)
    assert "'shell_refused'" in message and f"t_{position}" in message  # the DAG, the task
    assert where in message  # the position
    assert 'dag_run.conf["x"]' in message  # the expression
    assert "env=" in message and '"$VALUE"' in message and "shell_raw" in message  # the fix


async def test_a_value_marked_shell_raw_is_trusted_in_any_position() -> None:
    with DAG("shell_trusted", schedule=None, params={"n": 41}) as dag:
        BashOperator(task_id="arith", bash_command="echo $(( {{ params.n | shell_raw }} + 1 ))")
        BashOperator(task_id="dates", bash_command="bash -c 'echo {{ ds_nodash }}'")
    outcome = await run_dag(dag)
    assert outcome.xcoms["arith"] == "42"
    assert str(outcome.xcoms["dates"]).isdigit()


def test_the_danger_of_a_refused_position_is_real(tmp_path: Path) -> None:
    """Without the refusal, the same value pasted into `$(( ))` runs: the table is not empty."""
    import subprocess

    marker = tmp_path / "F"
    value = f"x[$(touch {marker})]"
    subprocess.run(
        ["bash", "-c", 'echo $(( V + 1 )) >/dev/null 2>&1; echo "$(( $V ))" >/dev/null 2>&1'],
        env={"V": value, "PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert marker.exists()
