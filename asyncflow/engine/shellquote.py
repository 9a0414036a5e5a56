"""Where, in the shell syntax of a command template, each `{{ ... }}` stands, and whether bash
would read its value a second time as code.

The template's literal text is scanned as bash reads it: quotes (`'`, `"`, `$'`), backslashes,
comments, command and process substitutions, `${...}`, arithmetic, here-documents, and the
simple commands and pipelines they form. For each expression the scan gives

* its **place**, which decides how the value is referred to: `bare`, inside `single`, `ansi`
  (`$'...'`) or `double` quotes, in `arith`, in a `heredoc` whose delimiter is unquoted
  (expanded like double quotes) or a `heredoc_raw` (quoted delimiter: nothing is expanded);
* its **danger**: the name of the position when bash evaluates the value again however it is
  quoted there: arithmetic (`$(( ))`, `(( ))`, `let`, `[[ ]]`, subscripts, substring offsets,
  `declare -i`), a variable name (`read`, `unset`, `printf -v`, `${!...}`), the command name,
  `eval`'s arguments, the command string of `bash -c`/`sh -c` (also behind `sudo`, `env`,
  `xargs`, `timeout`, `find -exec` ...), `trap`, `ssh`, text fed to a shell on its standard
  input (a pipe, a here-document, a here-string) or read by one as a script (`source <(...)`).

bashlex (0.18) was tried for this and does not serve: it raises on `$(( ))`, `[[ ]]`, array
assignments and `case`, which are the positions that matter here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import NamedTuple

from asyncflow.engine.shellcommands import NESTED, VALUE, Command, Level, first_word, level_danger

_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([A-Za-z0-9_.-]+))")
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


class Site(NamedTuple):
    place: str
    danger: str | None


@dataclass(eq=False)
class _Frame:
    kind: str  # bare | single | ansi | double | heredoc | heredoc_raw | arith | param
    levels: tuple[Level, ...] = ()
    closer: str = ""  # bare: ")" or "`" (nothing at the top); arith: "))", ")" or "]"
    array: bool = False  # a bare frame holding an array's elements: a=( ... )
    # bare frames
    pipeline: list[Command] = field(default_factory=list)
    command: Command | None = None
    word: list[str] | None = None
    role: str = "arg"  # of the current word: arg | redirect | herestring
    next_role: str = "arg"
    parens: int = 0
    cases: int = 0
    comment: bool = False
    pending: list[tuple[str, bool, bool, Command]] = field(default_factory=list)
    # arith, param
    depth: int = 0
    stage: str = "name"  # param: name | word | offset
    base: str = "bare"  # param, heredoc: the quoting its words have (bare or double)
    # heredoc
    delimiter: str = ""
    strip_tabs: bool = False
    line: str = ""  # heredoc: the current line; param: the name so far


class ShellScanner:
    """Feed the literal text with `feed()`, call `value()` where an expression stands, then
    `finish()` for each expression's place and danger."""

    def __init__(self) -> None:
        self.stack: list[_Frame] = [_Frame("bare")]
        self._values: list[tuple[str, tuple[Level, ...], str | None]] = []
        self._escape = False  # the literal text ended in a backslash that escapes what follows

    # -- the public side --------------------------------------------------------------
    def value(self) -> None:
        top = self.stack[-1]
        preset = "the place right after a backslash" if self._escape else None
        self._escape = False
        if top.kind == "bare" and top.comment:
            self._values.append(("bare", (), None))
            return
        if top.kind == "bare" and top.word is None:
            self._start_word(top)
        self._values.append((self._place(), self._levels(), preset))
        self._append(VALUE)
        if top.kind in ("heredoc", "heredoc_raw"):
            top.line += VALUE

    def finish(self) -> list[Site]:
        sites = []
        for place, levels, danger in self._values:
            for level in levels:
                if danger is not None:
                    break
                danger = level_danger(level)
            sites.append(Site(place, danger))
        return sites

    @property
    def heredoc_delimiter(self) -> str | None:
        top = self.stack[-1]
        return top.delimiter if top.kind in ("heredoc", "heredoc_raw") else None

    # -- where we are -----------------------------------------------------------------
    def _place(self) -> str:
        top = self.stack[-1]
        if top.kind == "param":
            if top.stage == "word":
                return top.base
            return "arith"
        return top.kind

    def _owner(self) -> _Frame | None:
        """The bare frame whose current word the next character belongs to, if any."""
        for frame in reversed(self.stack):
            if frame.kind == "bare":
                return frame
            if frame.kind not in ("single", "double", "ansi"):
                return None
        return None

    def _levels(self) -> tuple[Level, ...]:
        owner = self._owner()
        if owner is not None and owner.command is not None and owner.word is not None:
            if owner.array or owner.role == "redirect":
                level = Level("data")
            elif owner.role == "herestring":
                level = Level("stdin", owner.command)
            else:
                level = Level("word", owner.command, len(owner.command.words) - 1)
            return (level, *owner.levels)
        top = self.stack[-1]
        if top.kind == "param" and top.stage == "name":
            return (Level("eval", what="a parameter name ${...}"), *top.levels)
        if top.kind == "param" and top.stage == "offset":
            return (Level("eval", what="a substring offset ${v:...} (arithmetic)"), *top.levels)
        return top.levels

    def _append(self, char: str) -> None:
        owner = self._owner()
        if owner is not None and owner.word is not None:
            owner.word.append(char)

    def _push(self, frame: _Frame) -> None:
        self._append(NESTED)
        self.stack.append(frame)

    # -- scanning ---------------------------------------------------------------------
    def feed(self, text: str) -> None:
        self._escape = False
        i, n = 0, len(text)
        while i < n:
            top = self.stack[-1]
            step = getattr(self, f"_in_{top.kind}")(text, i, top)
            i += step
        if text:
            self._escape = self._ends_in_escape(text)

    def _ends_in_escape(self, text: str) -> bool:
        top = self.stack[-1]
        if top.kind in ("single", "heredoc_raw") or (top.kind == "bare" and top.comment):
            return False
        run = len(text) - len(text.rstrip("\\"))
        return run % 2 == 1

    def _in_single(self, text: str, i: int, top: _Frame) -> int:
        if text[i] == "'":
            self.stack.pop()
        else:
            self._append(text[i])
        return 1

    def _in_ansi(self, text: str, i: int, top: _Frame) -> int:
        if text[i] == "\\":
            self._append(text[i + 1 : i + 2])
            return 2
        if text[i] == "'":
            self.stack.pop()
        else:
            self._append(text[i])
        return 1

    def _dollar(self, text: str, i: int, top: _Frame, bare: bool) -> int:
        """`$...` at text[i]: push what it opens; 0 when it is a plain `$`."""
        rest = text[i + 1 : i + 3]
        if rest == "((":
            self._push(_Frame("arith", self._arith_levels("$(( ))"), "))"))
            return 3
        if rest[:1] == "(":
            self._push(_Frame("bare", self._levels(), ")"))
            return 2
        if rest[:1] == "[":
            self._push(_Frame("arith", self._arith_levels("$[ ]"), "]"))
            return 2
        if rest[:1] == "{":
            base = "bare" if bare else "double"
            self._push(_Frame("param", self._levels(), base=base))
            return 2
        if bare and rest[:1] == "'":
            self._push(_Frame("ansi"))
            return 2
        if bare and rest[:1] == '"':
            self._push(_Frame("double", self._levels()))
            return 2
        return 0

    def _arith_levels(self, what: str) -> tuple[Level, ...]:
        return (Level("eval", what=f"arithmetic {what}"), *self._levels())

    def _in_double(self, text: str, i: int, top: _Frame) -> int:
        char = text[i]
        if char == "\\":
            self._append(text[i + 1 : i + 2])
            return 2
        if char == '"':
            self.stack.pop()
            return 1
        if char == "`":
            self._push(_Frame("bare", self._levels(), "`"))
            return 1
        if char == "$":
            step = self._dollar(text, i, top, bare=False)
            if step:
                return step
        self._append(char)
        return 1

    def _in_heredoc(self, text: str, i: int, top: _Frame) -> int:
        char = text[i]
        if char == "\n":
            self._end_of_heredoc_line(top)
            return 1
        top.line += char
        if char == "\\":
            top.line += text[i + 1 : i + 2]
            return 2
        if char == "`":
            self.stack.append(_Frame("bare", top.levels, "`"))
        elif char == "$":
            step = self._dollar(text, i, top, bare=False)
            if step:
                top.line += NESTED
                return step
        return 1

    def _in_heredoc_raw(self, text: str, i: int, top: _Frame) -> int:
        if text[i] == "\n":
            self._end_of_heredoc_line(top)
        else:
            top.line += text[i]
        return 1

    def _end_of_heredoc_line(self, top: _Frame) -> None:
        line = top.line.lstrip("\t") if top.strip_tabs else top.line
        top.line = ""
        if line == top.delimiter:
            self.stack.pop()
            self._start_heredoc(self.stack[-1])

    def _start_heredoc(self, frame: _Frame) -> None:
        if frame.kind == "bare" and frame.pending:
            delimiter, raw, strip, command = frame.pending.pop(0)
            kind = "heredoc_raw" if raw else "heredoc"
            levels = (Level("stdin", command), *frame.levels)
            self.stack.append(_Frame(kind, levels, delimiter=delimiter, strip_tabs=strip))

    def _in_arith(self, text: str, i: int, top: _Frame) -> int:
        char = text[i]
        if char == "(":
            top.depth += 1
        elif char == ")" and top.depth > 0:
            top.depth -= 1
        elif char == ")" and top.closer == "))" and text.startswith("))", i):
            self.stack.pop()
            return 2
        elif char == ")" and top.closer == ")":
            self.stack.pop()
        elif char == "]" and top.closer == "]":
            if top.depth == 0:
                self.stack.pop()
            top.depth -= top.depth > 0
        elif char == "[":
            top.depth += top.closer == "]"
        elif char == "\\":
            return 2
        elif char == "`":
            self.stack.append(_Frame("bare", top.levels, "`"))
        elif char == '"':
            self.stack.append(_Frame("double", top.levels))
        elif char == "'":
            self.stack.append(_Frame("single", top.levels))
        elif char == "$":
            return self._dollar(text, i, top, bare=False) or 1
        return 1

    def _in_param(self, text: str, i: int, top: _Frame) -> int:
        char = text[i]
        if char == "}" and top.depth == 0:
            self.stack.pop()
            return 1
        if top.stage == "name":
            if char == "[" and top.line:
                levels = (Level("eval", what="an array subscript (arithmetic)"), *top.levels)
                self.stack.append(_Frame("arith", levels, "]"))
                top.stage = "after"
            elif char in _NAME_CHARS or (not top.line and char in "@*?$-"):
                top.line += char
            elif not top.line and char in "!#":
                pass  # ${!name} (indirect), ${#name} (length)
            else:
                top.stage = "after"
                return 0
            return 1
        if top.stage == "after":
            top.stage = "word"
            if char == ":" and text[i + 1 : i + 2] not in ("-", "=", "?", "+"):
                top.stage = "offset"
            return 1
        if char == "{":
            top.depth += 1
        elif char == "}":
            top.depth -= 1
        elif char == "\\":
            return 2
        elif char == '"':
            self.stack.append(_Frame("double", top.levels))
        elif char == "'" and top.base == "bare" and top.stage == "word":
            self.stack.append(_Frame("single", top.levels))
        elif char == "`":
            self.stack.append(_Frame("bare", top.levels, "`"))
        elif char == "$":
            return self._dollar(text, i, top, bare=top.base == "bare") or 1
        return 1

    # -- bare text: words, commands, pipelines ----------------------------------------
    def _start_word(self, frame: _Frame) -> None:
        if frame.command is None:
            frame.command = Command(frame.pipeline)
            frame.pipeline.append(frame.command)
        frame.word = []
        frame.role, frame.next_role = frame.next_role, "arg"
        if frame.role == "arg":
            frame.command.words.append(frame.word)

    def _end_word(self, frame: _Frame) -> None:
        if frame.word is None or frame.command is None:
            frame.word = None
            return
        word, frame.word = "".join(frame.word), None
        if frame.role != "arg":
            return
        first = first_word(frame.command.texts())
        if first == len(frame.command.words) - 1:
            if word == "case":
                frame.cases += 1
            elif word == "esac":
                frame.cases -= frame.cases > 0

    def _end_command(self, frame: _Frame, pipe: bool = False) -> None:
        self._end_word(frame)
        frame.command = None
        if not pipe:
            frame.pipeline = []

    def _in_condition(self, frame: _Frame) -> bool:
        if frame.command is None:
            return False
        texts = frame.command.texts()
        first = first_word(texts)
        return first < len(texts) and texts[first] == "[[" and "]]" not in texts[first + 1 :]

    def _in_bare(self, text: str, i: int, top: _Frame) -> int:
        char = text[i]
        if top.comment:
            if char == "\n":
                top.comment = False
                return self._newline(top)
            return 1
        if char == top.closer == "`" or (char == ")" and self._closes(top)):
            self._end_command(top)
            self.stack.pop()
            return 1
        if char in " \t":
            self._end_word(top)
            return 1
        if char == "\n":
            return self._newline(top)
        if char == "#" and top.word is None:
            top.comment = True
            return 1
        if char == "\\":
            if text[i + 1 : i + 2] == "\n":
                return 2
            if top.word is None:
                self._start_word(top)
            self._append(text[i + 1 : i + 2])
            return 2
        if char in ";&|<>()" and not self._in_condition(top):
            return self._operator(text, i, top)
        if top.word is None:
            self._start_word(top)
        if char == "'":
            self.stack.append(_Frame("single"))
        elif char == '"':
            self.stack.append(_Frame("double"))
        elif char == "`":
            self._push(_Frame("bare", self._levels(), "`"))
        elif char == "$":
            step = self._dollar(text, i, top, bare=True)
            if step:
                return step
            self._append(char)
        else:
            self._append(char)
        return 1

    def _closes(self, top: _Frame) -> bool:
        return top.closer == ")" and top.parens == 0 and top.cases == 0

    def _newline(self, top: _Frame) -> int:
        self._end_command(top)
        self._start_heredoc(top)
        return 1

    def _operator(self, text: str, i: int, top: _Frame) -> int:
        char, two = text[i], text[i : i + 2]
        if two in ("&&", "||", ";;") or (char in ";&" and two not in ("&>",)):
            self._end_command(top)
            return 2 if two in ("&&", "||", ";;") else 1
        if char == "|":
            self._end_command(top, pipe=True)
            return 2 if two == "|&" else 1
        if char == "(":
            if two == "((" and top.word is None:
                self._push(_Frame("arith", self._arith_levels("(( ))"), "))"))
                return 2
            if top.word is not None and "".join(top.word).endswith("="):
                self._push(_Frame("bare", self._levels(), ")", array=True))
                return 1
            if top.word is not None and text[i + 1 : i + 2] == ")":  # f() { ...; }
                self._end_command(top)
                return 2
            self._end_command(top)
            top.parens += 1
            return 1
        if char == ")":
            self._end_command(top)
            top.parens -= top.parens > 0
            return 1
        return self._redirect(text, i, top)

    def _redirect(self, text: str, i: int, top: _Frame) -> int:
        if top.word is not None and all(c.isdigit() for c in top.word) and top.command:
            if top.role == "arg" and top.command.words and top.command.words[-1] is top.word:
                top.command.words.pop()  # `2>`: a file descriptor, not a word
            top.word = None
        if top.command is None:
            top.command = Command(top.pipeline)
            top.pipeline.append(top.command)
        self._end_word(top)
        if text[i : i + 2] in ("<(", ">("):
            level = Level("file", top.command, len(top.command.words))
            top.command.words.append([NESTED])
            self.stack.append(_Frame("bare", (level, *top.levels), ")"))
            return 2
        if text.startswith("<<<", i):
            top.next_role = "herestring"
            return 3
        if text.startswith("<<", i):
            match = _HEREDOC.match(text, i)
            if match:
                strip, single, double, word = match.groups()
                raw = single is not None or double is not None
                raw = raw or text[i + 2 :].lstrip(" \t-").startswith("\\")
                delimiter = next(d for d in (single, double, word) if d is not None)
                top.pending.append((delimiter, raw, bool(strip), top.command))
                return match.end() - i
        j = i
        while j < len(text) and text[j] in "<>&|":
            j += 1
        top.next_role = "redirect"
        return max(j - i, 1)
