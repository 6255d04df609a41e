"""Bytes -> JSON values in bounded memory, recovering what a strict parser would lose whole.

- `BundleScanner` walks a Bundle's top-level object without parsing it and hands out each member
  and each element of `entry` as its own bytes, so a 200 MB single-line Bundle is parsed one entry
  at a time (orjson per entry), one bad entry costs only itself, and an entry larger than the
  resource limit is skipped without being held.
- `lines` splits NDJSON on LF, CRLF or CR with the same per-line limit.
- `parse_json` is orjson, and when orjson refuses the bytes, orjson again on a repaired copy:
  invalid UTF-8 and lone surrogate escapes become U+FFFD; a NUL (\\u0000, which PostgreSQL text
  cannot hold) always does. What is still not JSON (NaN, 1e400, a truncated object) is reported.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

import orjson

BLOCK = 1 << 20
FAST_REACH = 4 << 20  # an array element larger than this is walked step by step (rebuilding the index would cost more)
UTF8_BOM = b"\xef\xbb\xbf"

# From a position outside any string: everything up to and including the next bracket, strings
# skipped whole (one match per bracket instead of one step per byte).
_TO_BRACKET = re.compile(rb'[^"{}\[\]]*(?:"[^"\\]*(?:\\.[^"\\]*)*"[^"{}\[\]]*)*[{}\[\]]', re.S)
_STRUCTURAL = re.compile(rb'[{}\[\]"]')
_IN_STRING = re.compile(rb'["\\]')
_SCALAR_END = re.compile(rb'[,\]}\s]')
_SPACE = re.compile(rb"[ \t\r\n]*")
_EOL = re.compile(rb"\r\n|\r|\n")
_NUL_ESCAPE = b"\\u0000"
_SURROGATES = re.compile(rb"(\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2})|\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class InputLimitExceeded(OSError):
    """A configured input limit was reached (reason: a quarantine reason code)."""

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason


class LimitedReader:
    """A binary stream that refuses to give more than `limit` bytes (a .gz that expands without end)."""

    def __init__(self, raw, limit: int | None):
        self.raw = raw
        self.limit = limit
        self.count = 0
        self.exceeded = False

    def read(self, size: int = -1) -> bytes:
        """Up to the limit, the bytes; then InputLimitExceeded (what came before it is read)."""
        if self.exceeded:
            raise InputLimitExceeded("decompressed_too_large", f"the file expands to more than {self.limit:,} bytes "
                                     "(the limit for decompressed input: --max-decompressed-mb)")
        data = self.raw.read(size)
        if self.limit is not None and self.count + len(data) > self.limit:
            data, self.exceeded = data[: self.limit - self.count], True
            if not data:
                return self.read(size)
        self.count += len(data)
        return data

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.raw.close()


def encoding_problem(head: bytes) -> str | None:
    """A message when the first bytes show an encoding other than UTF-8, else None."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(head) >= 4 and (head[1:4:2] == b"\x00\x00" or head[0:3:2] == b"\x00\x00")):
        return ("the file is UTF-16 or UTF-32 encoded; FHIR JSON is UTF-8: convert it first "
                "(e.g. iconv -f UTF-16 -t UTF-8)")
    return None


def parse_json(raw: bytes) -> tuple[object, bool]:
    """(value, repaired). Raises orjson.JSONDecodeError (with orjson's message) when even the
    repaired bytes are not JSON."""
    repaired = False
    if _NUL_ESCAPE in raw:
        raw, repaired = raw.replace(_NUL_ESCAPE, b"\\ufffd"), True
    try:
        return orjson.loads(raw), repaired
    except orjson.JSONDecodeError as error:
        fixed = _SURROGATES.sub(lambda m: m.group(1) or b"\\ufffd", raw.decode("utf-8", "replace").encode())
        if fixed == raw:
            raise
        try:
            return orjson.loads(fixed), True
        except orjson.JSONDecodeError:
            raise error from None


@dataclass(slots=True)
class Piece:
    """One top-level member (`key`) or one element of `entry` (key None, `index`), as bytes;
    `raw` is None when the piece was larger than the limit (`size` bytes, not kept)."""

    key: str | None
    index: int
    raw: bytes | None
    size: int


class JsonShapeError(ValueError):
    """The bytes are not the JSON object they started as (truncated, extra data, a stray token)."""


class BundleScanner:
    """The pieces of one top-level JSON object, read from `read` a block at a time.

    Memory: one block plus the piece being read, and never more than `max_piece` bytes of it.
    """

    def __init__(self, read: Callable[[int], bytes], max_piece: int, first: bytes = b""):
        self._read = read
        self.max_piece = max_piece
        self.buf = first
        self.pos = 0
        self.offset = 0  # file offset of buf[0]
        self.eof = False
        self._fast = False  # within the entry array: containers found through a _ContainerEnds index
        self._index: _ContainerEnds | None = None

    # -- buffer ------------------------------------------------------------------------------
    def _more(self, keep_from: int | None) -> bool:
        """Read a block; keep buf from `keep_from` (None: from pos). False at the end of input."""
        if self.eof:
            return False
        start = self.pos if keep_from is None else keep_from
        # A piece being kept grows by its own size (up to 8 blocks) each time: fewer copies of it.
        block = self._read(min(max(BLOCK, len(self.buf) - start), 8 * BLOCK))
        self.buf = self.buf[start:] + block
        self.offset += start
        self.pos -= start
        if not block:
            self.eof = True
        return bool(block)

    def _peek(self) -> bytes:
        """The next non-blank byte (b'' at the end), pos on it."""
        while True:
            blank = _SPACE.match(self.buf, self.pos)
            assert blank is not None  # a `*` pattern matches (possibly empty) at any position
            self.pos = blank.end()
            if self.pos < len(self.buf):
                return self.buf[self.pos : self.pos + 1]
            if not self._more(None):
                return b""

    def _expect(self, allowed: bytes, after: str) -> bytes:
        char = self._peek()
        if not char or char not in allowed:
            found = "the end of the input" if not char else repr(char.decode("latin-1"))
            raise JsonShapeError(f"expected one of {allowed.decode()!r} {after}, found {found} at byte {self.offset + self.pos}")
        self.pos += 1
        return char

    # -- pieces ------------------------------------------------------------------------------
    def pieces(self) -> Iterator[Piece]:
        """Members of the top-level object, the elements of its `entry` array one by one. Raises
        JsonShapeError where the bytes stop being that object (the pieces before it are out)."""
        self._expect(b"{", "at the start")
        if self._peek() == b"}":
            self.pos += 1
            return self._end()
        while True:
            if self._peek() != b'"':
                self._expect(b'"', "for a member name")
            key_piece = self._value()
            try:
                key = orjson.loads(key_piece.raw or b'""')
            except orjson.JSONDecodeError:
                raise JsonShapeError(f"a member name is not a JSON string at byte {self.offset + self.pos}") from None
            self._expect(b":", f"after the member name {str(key)[:40]!r}")
            if key == "entry" and self._peek() == b"[":
                self.pos += 1
                yield from self._array()
            else:
                piece = self._value()
                piece.key = key
                yield piece
            if self._expect(b",}", "after a member of the top-level object") == b"}":
                return self._end()

    def _end(self) -> None:
        if self._peek():
            raise JsonShapeError(f"extra data after the top-level object at byte {self.offset + self.pos}")

    def _array(self) -> Iterator[Piece]:
        index = 0
        if self._peek() == b"]":
            self.pos += 1
            return
        self._fast, self._index = True, None
        while True:
            piece = self._value()
            piece.key, piece.index = None, index
            yield piece
            index += 1
            if self._expect(b",]", f"after entry[{index - 1}]") == b"]":
                self._fast, self._index = False, None
                return

    def _fast_end(self) -> int | None:
        """End (exclusive) of the array element at pos, an object or array, from an index of the
        buffer; None when it is not in reach (larger than max_piece, or the input ends first):
        then the step-by-step scan decides."""
        while True:
            index = self._index
            if index is None or index.buf is not self.buf or self.pos < index.anchor:
                index = self._index = _ContainerEnds(self.buf, self.pos)
            end = index.end_after(self.pos)
            if end is not None:
                return end
            if self.eof or len(self.buf) - self.pos > FAST_REACH:
                return None
            self._more(self.pos)

    def _value(self) -> Piece:
        """The bytes of the JSON value at pos (kept only up to max_piece)."""
        first = self._peek()
        if not first:
            raise JsonShapeError(f"the input ends where a value should be, at byte {self.offset + self.pos}")
        if first in b"{[":
            end = self._fast_end() if self._fast else None
            if end is not None:
                start, self.pos = self.pos, end
                return Piece(None, 0, self.buf[start:end] if end - start <= self.max_piece else None, end - start)
            start, dropped, kept = self._skip_container()
        elif first == b'"':
            self.pos += 1
            start, dropped, kept = self._skip_string(self.pos - 1)
        else:
            start, dropped, kept = self._skip_scalar()
        size = dropped + self.pos - start
        kept = kept and size <= self.max_piece
        return Piece(None, 0, self.buf[start : self.pos] if kept else None, size)

    def _state(self, start: int, dropped: int, kept: bool) -> tuple[int, int, bool]:
        """Before a refill: whether the piece so far still fits; if not, forget it."""
        if kept and self.pos - start > self.max_piece:
            kept = False
        if not kept:
            dropped += self.pos - start
            start = self.pos
        return start, dropped, kept

    def _refill(self, start: int, dropped: int, kept: bool) -> tuple[int, int, bool, bool]:
        start, dropped, kept = self._state(start, dropped, kept)
        before = self.pos
        more = self._more(start)
        start -= before - self.pos
        return start, dropped, kept, more

    def _skip_container(self) -> tuple[int, int, bool]:
        """Past the object or array at pos: (start in buf, bytes dropped, whether kept)."""
        start, dropped, kept = self.pos, 0, True
        depth = 0
        slow = False  # the next bracket was not in the buffer: token by token up to it
        while True:
            if not slow:
                match = _TO_BRACKET.match(self.buf, self.pos)
                slow = match is None
            if slow:
                match = _STRUCTURAL.search(self.buf, self.pos)
                if match is None:
                    self.pos = len(self.buf)
                    start, dropped, kept, more = self._refill(start, dropped, kept)
                    if not more:
                        raise JsonShapeError(f"the input ends inside an object or array at byte {self.offset + self.pos}")
                    continue
                if match.group() == b'"':
                    self.pos = match.end()
                    start, dropped, kept = self._skip_string(start, dropped, kept)
                    continue
                slow = False
            assert match is not None  # the fast pattern matched, or the slow search found a bracket
            self.pos = match.end()
            depth += 1 if self.buf[self.pos - 1] in b"{[" else -1
            if depth == 0:
                return start, dropped, kept

    def _skip_string(self, start: int, dropped: int = 0, kept: bool = True) -> tuple[int, int, bool]:
        """Past the string whose opening quote is just before pos."""
        while True:
            match = _IN_STRING.search(self.buf, self.pos)
            if match is None or (match.group() == b"\\" and match.end() >= len(self.buf)):
                self.pos = len(self.buf) if match is None else match.start()
                start, dropped, kept, more = self._refill(start, dropped, kept)
                if not more:
                    raise JsonShapeError(f"the input ends inside a string at byte {self.offset + self.pos}")
                continue
            if match.group() == b"\\":
                self.pos = match.end() + 1
                continue
            self.pos = match.end()
            return start, dropped, kept

    def _skip_scalar(self) -> tuple[int, int, bool]:
        start, dropped, kept = self.pos, 0, True
        while True:
            match = _SCALAR_END.search(self.buf, self.pos)
            if match is not None:
                self.pos = match.start()
                return start, dropped, kept
            self.pos = len(self.buf)
            start, dropped, kept, more = self._refill(start, dropped, kept)
            if not more:
                return start, dropped, kept


class _ContainerEnds:
    """Where the containers that stand side by side from `anchor` on (the elements of one array)
    end, in one buffer. The bytes are classified in bulk with numpy, as the first stage of simdjson
    does: quotes that are not escaped, brackets outside strings, the running depth; an element
    ends where the depth returns to zero. About twenty times the speed of a regex step per bracket."""

    def __init__(self, buf: bytes, anchor: int):
        import numpy as np

        self.buf, self.anchor = buf, anchor
        data = np.frombuffer(buf, dtype=np.uint8)[anchor:]
        quotes = np.flatnonzero(data == 34)
        before = data[np.maximum(quotes - 1, 0)] == 92
        before[:1] &= quotes[:1] > 0
        if before.any():
            # A quote is escaped by an odd run of backslashes before it (runs of more than one are rare).
            escaped = before.copy()
            for at in np.flatnonzero(before & (data[np.maximum(quotes - 2, 0)] == 92)).tolist():
                escaped[at] = _backslashes_before(data, int(quotes[at])) % 2 == 1
            quotes = quotes[~escaped]
        steps = _bracket_steps()[data]  # +1 for { and [, -1 for } and ], 0 for every other byte
        brackets = np.flatnonzero(steps)
        brackets = brackets[(np.searchsorted(quotes, brackets) & 1) == 0]  # an even number of quotes before: outside strings
        depth = np.cumsum(steps[brackets], dtype=np.int64)
        self.ends: list[int] = (brackets[depth == 0] + (anchor + 1)).tolist()

    def end_after(self, pos: int) -> int | None:
        found = bisect.bisect_right(self.ends, pos)
        return self.ends[found] if found < len(self.ends) else None


@cache
def _bracket_steps():
    """+1 for { and [, -1 for } and ], 0 for every other byte value."""
    import numpy as np

    steps = np.zeros(256, dtype=np.int8)
    steps[[ord("{"), ord("[")]] = 1
    steps[[ord("}"), ord("]")]] = -1
    return steps


def _backslashes_before(data, position: int) -> int:
    count = 0
    while position - count - 1 >= 0 and data[position - count - 1] == 92:
        count += 1
    return count


def lines(read: Callable[[int], bytes], max_line: int) -> Iterator[tuple[int, bytes | int]]:
    """(line number, bytes) of each non-blank line; (line number, size) for a line over `max_line`
    bytes, which is not kept. LF, CRLF and a lone CR (old Mac exports) all end a line; a UTF-8
    BOM before the first line is dropped."""
    number = 0
    parts: list[bytes] = []
    size = 0
    held = b""  # a block's last CR: it may be the first half of a CRLF
    while True:
        block = read(BLOCK)
        at_end = not block
        block, held = held + block, b""
        if not at_end and block.endswith(b"\r"):
            block, held = block[:-1], b"\r"
        start = 0
        for match in _EOL.finditer(block):
            piece = block[start : match.start()]
            start = match.end()
            number += 1
            size += len(piece)
            line: bytes | int = size if size > max_line else (b"".join(parts) + piece if parts else piece)
            parts, size = [], 0
            if number == 1 and not isinstance(line, int):
                line = line.removeprefix(UTF8_BOM)
            if isinstance(line, int) or line.strip():
                yield number, line
        rest = block[start:]
        size += len(rest)
        if size <= max_line:
            parts.append(rest)
        else:
            parts = []  # over the limit: count, keep nothing
        if at_end:
            break
    if size:
        number += 1
        line = size if size > max_line else b"".join(parts)
        if number == 1 and not isinstance(line, int):
            line = line.removeprefix(UTF8_BOM)
        if isinstance(line, int) or line.strip():
            yield number, line
