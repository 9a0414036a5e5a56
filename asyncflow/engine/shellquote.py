"""Where, in the shell syntax of a command template, each `{{ ... }}` stands.

The template's literal text is scanned as bash would read it (quotes, backslashes, here-
documents) to tell, for each expression, which of five places it is in: `bare`, inside
`single` or `double` quotes, in a `heredoc` whose delimiter is unquoted (expansions happen
there, as in double quotes) or in a `heredoc_raw` (quoted delimiter: nothing is expanded).
The templating module then hands each value to the shell in the way that keeps it data there.
"""

from __future__ import annotations

import re

_HEREDOC = re.compile(r"<<(-?)[ \t]*(?:'([^']*)'|\"([^\"]*)\"|\\?([A-Za-z0-9_.-]+))")


class ShellScanner:
    """Feed literal text with `feed()`; `place` is where the next expression stands."""

    def __init__(self) -> None:
        self.mode = "bare"  # bare | single | double | heredoc | heredoc_raw
        self._pending: list[tuple[str, bool, bool]] = []  # (delimiter, raw, strip_tabs)
        self._heredoc: tuple[str, bool, bool] | None = None
        self._line = ""  # the current line inside a here-document

    @property
    def place(self) -> str:
        return self.mode

    def feed(self, text: str) -> None:
        i, n = 0, len(text)
        while i < n:
            char = text[i]
            mode = self.mode
            if mode in ("heredoc", "heredoc_raw"):
                if char == "\n":
                    self._end_of_heredoc_line()
                else:
                    self._line += char
            elif mode == "single":
                if char == "'":
                    self.mode = "bare"
            elif char == "\\":
                i += 1
            elif mode == "double":
                if char == '"':
                    self.mode = "bare"
            elif char == "'":
                self.mode = "single"
            elif char == '"':
                self.mode = "double"
            elif char == "<" and text.startswith("<<", i) and not text.startswith("<<<", i):
                match = _HEREDOC.match(text, i)
                if match:
                    strip, single, double, word = match.groups()
                    raw = (
                        single is not None
                        or double is not None
                        or text[i + 2 :].lstrip(" \t-").startswith("\\")
                    )
                    delimiter = next(d for d in (single, double, word) if d is not None)
                    self._pending.append((delimiter, raw, bool(strip)))
                    i = match.end()
                    continue
            elif char == "\n" and self._pending:
                self._start_heredoc(self._pending.pop(0))
            i += 1

    def value_inside(self) -> None:
        """An expression's value is part of the current here-document line."""
        if self.mode in ("heredoc", "heredoc_raw"):
            self._line += "\0"  # a value never makes a line equal to the delimiter

    def _start_heredoc(self, spec: tuple[str, bool, bool]) -> None:
        self._heredoc = spec
        self.mode = "heredoc_raw" if spec[1] else "heredoc"
        self._line = ""

    def _end_of_heredoc_line(self) -> None:
        assert self._heredoc is not None
        delimiter, _, strip_tabs = self._heredoc
        line = self._line.lstrip("\t") if strip_tabs else self._line
        self._line = ""
        if line == delimiter:
            self._heredoc = None
            self.mode = "bare"
            if self._pending:
                self._start_heredoc(self._pending.pop(0))

    @property
    def heredoc_delimiter(self) -> str | None:
        return self._heredoc[0] if self._heredoc else None
