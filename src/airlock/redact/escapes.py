"""The escape cursor: a window with its JSON ``\\u00XX`` escapes of printable characters read,
and the way back from offsets in the decoded text to offsets in the window.

Where a window holds such escapes (a token with one character or all of them escaped, once or
twice), the engine scans the decoded text and maps each span back, widened to whole escapes.
"""

from __future__ import annotations

import re
from itertools import product

from airlock.redact.table import compile_pattern

ESCAPE = re.compile(
    rb"u00(?<=\\u00)(2[013-9a-fA-F]|[3-46][0-9a-fA-F]|5[0-9abd-fABD-F]|7[0-9a-eA-E])"
)
"""The ``u00XX`` of a JSON ``\\u00XX`` escape (its backslash possibly escaped again) of a
printable ASCII character other than the quote and the backslash, which would change the
string's structure. The pattern starts with a literal, which the scan looks for at C speed;
the escape's backslashes are the run just before it."""

HEX = {
    "".join(digits).encode(): bytes([code])
    for code in range(0x20, 0x7F)
    for digits in product(*((c, c.upper()) for c in f"{code:02x}"))
}
"""The character of each two-digit code, in either case."""


FEW_ESCAPES = 256
"""Up to this many escapes in a window, they are looked for one by one (C searches)."""

_PRINTABLE = {digits: char for digits, char in HEX.items() if char not in b'"\\'}
"""The characters an escape is read as: printable, but not the quote or the backslash."""

_ESCAPE_START = compile_pattern(r"\\u00")
"""The start of an escape, looked for by RE2 (which skips to each backslash with ``memchr``,
without holding the GIL): a window without one costs almost nothing, where ``bytes.find``
would step through it a few bytes at a time."""


def _next_escape(window: bytes, start: int) -> int:
    """Where the next ``\\u00`` starts at or after ``start``, or -1."""
    found = _ESCAPE_START.search(window, start)
    return -1 if found is None else int(found.start())


def split_escapes(window: bytes) -> list[bytes | memoryview] | None:
    """``ESCAPE.split(window)`` with each code read as its character, the stretches between
    escapes as views of the window (not copies); ``None`` past ``FEW_ESCAPES`` escapes (one pass
    of the regular expression is then faster)."""
    parts: list[bytes | memoryview] = []
    view = memoryview(window)
    last = 0
    at = _next_escape(window, 0)
    while at >= 0:
        char = _PRINTABLE.get(window[at + 4 : at + 6])
        if char is None:
            at = _next_escape(window, at + 1)
            continue
        if len(parts) >= 2 * FEW_ESCAPES:
            return None
        parts += (view[last : at + 1], char)
        last = at + 6
        at = _next_escape(window, last)
    parts.append(view[last:])
    return parts


def _before_backslashes(stretch: bytes | memoryview) -> bytes | memoryview:
    """The stretch without the backslashes it ends with (an escape's, once or twice)."""
    end = len(stretch)
    while end and stretch[end - 1] == 0x5C:
        end -= 1
    return stretch[:end]


class Decoded:
    """A window with its ``\\u00XX`` escapes read, and the way back to the window's offsets.

    The window is plain stretches (``parts[2k]``, the same in both) each followed by an escape
    (one character once read, ``parts[2k + 1]``). Offsets are mapped by walking a cursor from
    stretch to stretch, so the cost is paid around hits (few), never per escape of a window.
    """

    __slots__ = ("_k", "_parts", "_text_at", "_window", "_window_at", "text")

    def __init__(self, window: bytes, parts: list[bytes | memoryview]) -> None:
        self._window = window
        self._parts = parts
        self.text = b"".join(parts)
        # The cursor: the start of plain stretch ``_k`` in the text and in the window.
        self._k = 0
        self._text_at = 0
        self._window_at = 0

    @classmethod
    def of(cls, window: bytes) -> Decoded | None:
        """The decoded window, or ``None`` when it holds no escape to read."""
        parts = split_escapes(window)
        if parts is None:  # many escapes: one pass of the regular expression
            pieces = ESCAPE.split(window)
            pieces[1::2] = map(HEX.__getitem__, pieces[1::2])
            parts = list(pieces)
        if len(parts) == 1:
            return None
        parts[0:-1:2] = map(_before_backslashes, parts[0:-1:2])
        return cls(window, parts)

    @property
    def _last(self) -> int:
        return len(self._parts) // 2

    def _plain(self) -> int:
        return len(self._parts[2 * self._k])

    def _escape(self) -> int:
        """The length in the window of the escape after the cursor's stretch."""
        at = self._window_at + self._plain()
        return self._window.index(b"u", at) - at + 5

    def _forward(self) -> bool:
        if self._k >= self._last:
            return False
        escape = self._escape()
        self._text_at += self._plain() + 1
        self._window_at += self._plain() + escape
        self._k += 1
        return True

    def _back(self) -> bool:
        if self._k == 0:
            return False
        self._k -= 1
        self._text_at -= self._plain() + 1
        # The escape before the stretch we left ends where that stretch began: its ``u`` is
        # five bytes before, its backslashes just before that.
        self._window_at -= 5
        while self._window_at > 0 and self._window[self._window_at - 1] == 0x5C:
            self._window_at -= 1
        self._window_at -= self._plain()
        return True

    def _end(self) -> None:
        """Put the cursor on the last plain stretch."""
        self._k = self._last
        self._text_at = len(self.text) - self._plain()
        self._window_at = len(self._window) - self._plain()

    def origin(self, at: int) -> int:
        """The window offset of the boundary ``at`` in ``text``."""
        if at < self._text_at // 2:
            self._k = self._text_at = self._window_at = 0
        while at < self._text_at and self._back():
            pass
        while at >= self._text_at + self._plain() + 1 and self._forward():
            pass
        inside = at - self._text_at
        if inside <= self._plain() or self._k >= self._last:
            return self._window_at + inside
        return self._window_at + self._plain() + self._escape()  # after the escape

    def at(self, origin: int, *, from_end: bool = False) -> int:
        """The first boundary in ``text`` whose window offset is ``origin`` or later."""
        if from_end:
            self._end()
        elif origin < self._window_at // 2:
            self._k = self._text_at = self._window_at = 0
        while origin < self._window_at and self._back():
            pass
        while (
            self._k < self._last and origin >= self._window_at + self._plain() + self._escape()
        ) and self._forward():
            pass
        inside = origin - self._window_at
        if inside <= self._plain() or self._k >= self._last:
            return self._text_at + inside
        return self._text_at + self._plain() + 1  # inside an escape: after it
