"""Human-readable output shared by every command: one escaping function for values from the data,
and layouts that stay legible at 80 columns and when piped.

Values that come from the input (code systems, codes, file names, group labels, messages) are
untrusted: `validate` runs on exports from elsewhere. `clean` makes every control character
visible (an escape sequence cannot clear the screen, move the cursor or plant a hyperlink, a
newline cannot add a fake report line) and the helpers below never let rich read markup in them.

Layout: identifying values (check names, group labels, paths, codes) go on `whole_line`s, which are
never wrapped nor cut (a narrow terminal wraps them itself, a pipe keeps them on one line, so they
can be searched for); prose goes in `prose`, wrapped at word boundaries under its record. Print
with `show`, which does not crop lines to the console width.
"""

from __future__ import annotations

import re
import sys
import textwrap
from typing import IO, Any

from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape as escape_markup
from rich.text import Text

# C0 controls, DEL, C1 controls; line/paragraph separators; bidirectional overrides and isolates
# (which reorder what is shown); zero-width characters that hide text.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200b-\u200f\u061c\ufeff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

Part = Any  # a value, or (value, style)


def clean(value: object) -> str:
    """The value as printable text: every control or invisible formatting character is shown as
    an escape (\\x1b, \\n, \\u202e). Rich markup is not touched here: use `safe_markup` to embed a
    value in a markup string, or `plain` / `whole_line` / `prose`, which never parse markup."""
    text = "" if value is None else str(value)
    return _UNSAFE.sub(_visible, text)


def _visible(match: re.Match) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def safe_markup(value: object) -> str:
    """`clean` plus rich markup escaped, for a data value inside a markup string."""
    return escape_markup(clean(value))


def plain(value: object, style: str | None = None) -> Text:
    """A data value as a rich Text (markup is not parsed), e.g. for a table cell."""
    return Text(clean(value), style=style or "")


def whole_line(*parts: Part, indent: int = 0) -> Text:
    """One line that is never wrapped nor cut: for identifying values. Parts are values or
    (value, style) pairs, joined as given."""
    text = Text(" " * indent, no_wrap=True, overflow="ignore")
    for part in parts:
        value, style = part if isinstance(part, tuple) else (part, None)
        text.append(clean(value), style=style)
    return text


class items_line:  # noqa: N801
    """Identifying values packed on a line while they fit the width; an item that does not fit
    starts a new line, indented by `continuation`. Each item stays whole either way."""

    def __init__(self, *items: Part, indent: int = 0, continuation: int = 4, sep: str = "  ") -> None:
        self.items = [item for item in items if item not in (None, "")]
        self.indent, self.continuation, self.sep = indent, continuation, sep

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        line = whole_line(indent=self.indent)
        for number, item in enumerate(self.items):
            text = whole_line(item)
            if number and line.cell_len + len(self.sep) + text.cell_len > options.max_width:
                yield line
                line = whole_line(indent=self.indent + self.continuation)
            elif number:
                line.append(self.sep)
            line.append(text)
        yield line


class prose:  # noqa: N801 - used like the functions beside it
    """Free text on its own lines, indented under its record and wrapped at spaces only: a word,
    URL or code longer than the line stays whole (no trailing spaces, nothing cut)."""

    def __init__(self, value: object, indent: int = 4, style: str | None = None) -> None:
        self.text, self.indent, self.style = clean(value), indent, style or ""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(options.max_width - self.indent, 20)
        for line in textwrap.wrap(self.text, width, break_long_words=False, break_on_hyphens=False) or [""]:
            yield Text(" " * self.indent + line, style=self.style, no_wrap=True, overflow="ignore", end="\n")


def console(file: IO[str] | None = None, stderr: bool = False, width: int | None = None) -> Console:
    """The console for human-readable output: no emoji codes and no automatic highlighting of the
    data; its width follows the terminal (80 when piped, or $COLUMNS)."""
    return Console(file=file, stderr=stderr, width=width, emoji=False, highlight=False)


def show(renderable: RenderableType, out: Console | None = None) -> None:
    """Print without cropping lines to the console width (whole_lines stay whole)."""
    (out or console()).print(renderable, crop=False)


def is_terminal(stream: IO[str] = sys.stderr) -> bool:
    """Whether a person is watching `stream` (a progress bar is drawn only then)."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
