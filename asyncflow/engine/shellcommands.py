"""What the commands a shell template runs do with their words: whether bash, or a program it
starts, reads a word (or its standard input, or a file) again as shell code.

The scanner (shellquote) splits the template into simple commands and pipelines and records,
for each template value, where it ends up as a list of `Level`s from the innermost out; the
rules here name the first level that evaluates its text again, or say there is none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

VALUE, NESTED = "\0", "\1"  # in a scanned word: a template value, a substitution's output
SHELLS = frozenset({"bash", "sh", "dash", "zsh", "ksh", "mksh", "ash", "rbash", "busybox"})
RESERVED = frozenset({"if", "then", "else", "elif", "do", "while", "until", "!", "{", "time"})
DECLARE = frozenset({"declare", "typeset", "local", "export", "readonly"})
NAME_TAKERS = frozenset({"unset", "read", "mapfile", "readarray", "getopts"})
#: commands that run another command: options that take a value, and positional operands
WRAPPERS: dict[str, tuple[frozenset[str], int]] = {
    "sudo": (frozenset({"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"}), 0),
    "doas": (frozenset({"-u", "-C"}), 0),
    "env": (frozenset({"-u", "-C", "-S", "--unset", "--chdir"}), 0),
    "nohup": (frozenset(), 0),
    "exec": (frozenset({"-a"}), 0),
    "command": (frozenset(), 0),
    "builtin": (frozenset(), 0),
    "nice": (frozenset({"-n"}), 0),
    "ionice": (frozenset({"-c", "-n", "-p"}), 0),
    "setsid": (frozenset(), 0),
    "stdbuf": (frozenset({"-i", "-o", "-e"}), 0),
    "timeout": (frozenset({"-s", "-k", "--signal", "--kill-after"}), 1),
    "flock": (frozenset({"-w", "-E", "--timeout"}), 1),
    "chroot": (frozenset(), 1),
    "xargs": (
        frozenset({"-I", "-n", "-P", "-d", "-L", "-s", "-E", "-a", "-i", "--delimiter"}),
        0,
    ),
    "watch": (frozenset({"-n", "-d", "--interval"}), 0),
}
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=")


@dataclass(eq=False)
class Command:
    """One simple command: its words as bash would see them after quote removal, where a
    template value is VALUE and a substitution's output NESTED."""

    pipeline: list[Command]
    words: list[list[str]] = field(default_factory=list)

    def texts(self) -> list[str]:
        return ["".join(w) for w in self.words]


class Level(NamedTuple):
    """Where a value (or the substitution that holds it) ends up, one level of nesting."""

    kind: str  # word | stdin | file | data | eval (an evaluated position, `what` names it)
    command: Command | None = None
    word: int = -1
    what: str = ""


def first_word(texts: list[str]) -> int:
    """Index of the command's first word that is not a reserved word or an assignment."""
    i = 0
    while i < len(texts) and (texts[i] in RESERVED or _ASSIGNMENT.match(texts[i])):
        i += 1
    return i


def _resolve(texts: list[str], start: int) -> tuple[int, bool]:
    """Index of the program a command runs (past assignments, `sudo`, `env`, `xargs` ...)
    and whether `xargs` hands it its standard input as arguments."""
    i, via_xargs = start, False
    while i < len(texts):
        name = texts[i].rsplit("/", 1)[-1]
        if name in RESERVED or _ASSIGNMENT.match(texts[i]):
            i += 1
            continue
        if name not in WRAPPERS:
            break
        takes_value, operands = WRAPPERS[name]
        via_xargs = via_xargs or name == "xargs"
        i += 1
        while i < len(texts) and texts[i].startswith("-") and texts[i] != "-":
            i += 2 if texts[i] in takes_value else 1
            if texts[i - 1] == "--":
                break
        while name == "env" and i < len(texts) and _ASSIGNMENT.match(texts[i]):
            i += 1
        i += operands
    return i, via_xargs


def _shell_code(texts: list[str], at: int) -> tuple[int | None, bool]:
    """For a shell at `at`: the index of its `-c` command string, and whether it reads its
    commands from standard input (no `-c`, no script file, or `-s`)."""
    i, has_c, has_s = at + 1, False, False
    if texts[at].rsplit("/", 1)[-1] == "busybox":
        i += 1
    while i < len(texts):
        word = texts[i]
        if word == "--":
            i += 1
            break
        if word in ("-o", "+o", "-O", "+O", "--rcfile", "--init-file"):
            i += 2
            continue
        if len(word) > 1 and word[0] in "-+":
            if not word.startswith("--"):
                has_c, has_s = has_c or "c" in word[1:], has_s or "s" in word[1:]
            i += 1
            continue
        break
    if has_c:
        return (i if i < len(texts) else None), False
    return None, has_s or i >= len(texts)


def _reads_code(command: Command) -> str | None:
    """The program, when `command` runs what it reads on standard input as shell code."""
    texts = command.texts()
    at, via_xargs = _resolve(texts, first_word(texts))
    if at >= len(texts):
        return None
    name = texts[at].rsplit("/", 1)[-1]
    if name in SHELLS:
        code, stdin = _shell_code(texts, at)
        if stdin or (via_xargs and code is not None):
            return f"xargs {name}" if via_xargs else name
    if name in ("source", ".") and texts[at + 1 : at + 2] in (["/dev/stdin"], ["-"]):
        return name
    if name == "eval" and via_xargs:
        return "xargs eval"
    return None


def _word_danger(command: Command, index: int) -> str | None:
    """Whether bash evaluates word `index` of `command` again (bare quoting cannot help)."""
    texts = command.texts()
    first = first_word(texts)
    word = texts[index]
    if index < first:  # an assignment before the command: NAME[subscript]=value
        return _assignment_danger(word, "an assignment")
    if texts[first] == "[[" and index > first:
        return "a [[ ]] test (bash evaluates its operands as arithmetic)"
    at, _ = _resolve(texts, first)
    if index < at:
        return None
    if index == at:
        return "the command name (the value would choose the program to run)"
    name = texts[at].rsplit("/", 1)[-1]
    args = texts[at + 1 : index]
    if name == "find" and any(a in ("-exec", "-execdir", "-ok", "-okdir") for a in args):
        runs = ("-exec", "-execdir", "-ok", "-okdir")
        start = max(i for i, a in enumerate(texts[:index]) if a in runs)
        inner = Command(command.pipeline, command.words[start + 1 :])
        return _word_danger(inner, index - start - 1) if index > start + 1 else None
    if name in SHELLS:
        code, _ = _shell_code(texts, at)
        if code == index:
            return f"the command string of {name} -c"
    if name == "eval":
        return "an argument of eval"
    if name == "let":
        return "a let expression (arithmetic)"
    if name == "trap" and not any(not a.startswith("-") for a in args):
        return "the command of trap"
    if name in ("ssh", "su", "runuser") and index > at + 1:
        return f"the remote or login command of {name} (a shell reads it again)"
    if name in NAME_TAKERS and not word.startswith("-"):
        return f"a variable name of {name}"
    if name == "printf" and args[-1:] == ["-v"]:
        return "the variable name of printf -v"
    if name in ("[", "test") and args[-1:] == ["-v"]:
        return f"the variable name of {name} -v (subscripts are evaluated)"
    if name in DECLARE:
        if any(a.startswith("-") and ("i" in a or "n" in a) for a in args):
            return f"an integer or reference variable of {name} (arithmetic)"
        return _assignment_danger(word, f"a variable of {name}")
    return None


def _assignment_danger(word: str, what: str) -> str | None:
    name = word.split("=", 1)[0] if "=" in word else word
    if VALUE in name or NESTED in name:
        return f"the name or subscript of {what} (subscripts are arithmetic)"
    return None


def level_danger(level: Level) -> str | None:
    if level.kind == "eval":
        return level.what
    command = level.command
    if command is None:
        return None
    if level.kind == "word":
        danger = _word_danger(command, level.word)
        if danger:
            return danger
    texts = command.texts()
    at, _ = _resolve(texts, first_word(texts))
    name = texts[at].rsplit("/", 1)[-1] if at < len(texts) else ""
    if level.kind == "stdin":
        reader = _reads_code(command)
        if reader:
            return f"a here-document or here-string fed to {reader}"
    if level.kind == "file" and (name in ("source", ".") or _script_reader(texts, at, name)):
        return f"a process substitution read as a script by {name}"
    later = command.pipeline[command.pipeline.index(command) + 1 :]
    for stage in later:
        reader = _reads_code(stage)
        if reader:
            return f"text piped into {reader}"
    return None


def _script_reader(texts: list[str], at: int, name: str) -> bool:
    return name in SHELLS and _shell_code(texts, at)[0] is None
