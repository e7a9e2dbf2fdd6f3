"""The escape cursor: a window with its JSON ``\\u00XX`` escapes of printable characters read,
and the way back from offsets in the decoded text to offsets in the window; and the same for
the escapes of other encodings (XML and HTML character references, quoted-printable, YAML's
and JSON5's ``\\xHH`` and ``\\UHHHHHHHH``).

Where a window holds such escapes (a token with one character or all of them escaped, once or
twice), the engine scans the decoded text and maps each span back, widened to whole escapes.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable
from itertools import accumulate, product, repeat

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
_READ_CODE = r"(?:0[9aAdD]|[2-46][0-9A-Fa-f]|5[0-9a-bA-Bd-fD-F]|7[0-9a-eA-E])"
"""The two hex digits of a character :func:`hex_escapes` reads: printable ASCII but the
backslash, and the white space between a key file's lines."""
_JOINED = r"[ \t]*\r?\n[ \t\r\n]*[A-Za-z0-9_\-+/=.~]"
"""An escaped line break after its backslash, with a token's byte after it: one that could
join a token's pieces, or a name and its value (see :func:`_joins` for the byte before)."""
_WIDE_HEX_ESCAPE = compile_pattern(rf"\\(?:x{_READ_CODE}|U000000{_READ_CODE}|{_JOINED})")
"""A ``\\xHH`` or ``\\UHHHHHHHH`` escape :func:`hex_escapes` reads, or a backslash that ends a
line, looked for by RE2 (which skips to each backslash with ``memchr``)."""
_ANY_ESCAPE_START = compile_pattern(rf"\\(?:u00|x{_READ_CODE}|U000000{_READ_CODE}|{_JOINED})")
"""The start of an escape, or of a ``\\xHH`` or ``\\UHHHHHHHH`` one (:func:`hex_escapes`),
looked for in the same pass (the first ``FEW_ESCAPES`` of those): a window dense with
backslashes (source code in a JSON string) is gone through once for both."""


def _joins(window: bytes, at: int) -> bool:
    """Whether the escape at ``at`` may be read: a ``\\x`` or ``\\U`` one, or an escaped line
    break that may join a token's pieces (a token's byte before it) or a name and its value
    (``key: \\``, ``key = \\``); one after a word and a blank (``cmd --a \\``, ``x + \\``)
    joins neither, and is not read (source code and shell scripts are full of them)."""
    if window[at + 1] in b"xU":
        return True
    if at == 0:
        return False
    if window[at - 1] in _TOKEN_BYTES:
        return True
    return window[max(0, at - 64) : at].rstrip(b" \t")[-1:] in (b"=", b":")


def split_escapes(window: bytes) -> list[bytes | memoryview] | None:
    """``ESCAPE.split(window)`` with each code read as its character, the stretches between
    escapes as views of the window (not copies); ``None`` past ``FEW_ESCAPES`` escapes (one pass
    of the regular expression is then faster)."""
    return _split(window, wide=False)[0]


def _split(window: bytes, *, wide: bool) -> tuple[list[bytes | memoryview] | None, list[int], int]:
    """:func:`split_escapes`; where the window's ``\\x`` and ``\\U`` escapes are, up to
    ``FEW_ESCAPES`` of them; and where to look for more from (past those, or where the split
    stopped), or -1 (the window was looked through). ``wide``: those are looked for too (the
    body readings, :class:`~airlock.redact.engine.Redactor`'s ``body_readings``); else only
    JSON's ``\\u00XX``, and none is found."""
    parts: list[bytes | memoryview] = []
    view = memoryview(window)
    last = 0
    others: list[int] = []
    rest = -1
    start = _ANY_ESCAPE_START if wide else _ESCAPE_START
    found = start.search(window, 0)
    while found is not None:
        at = int(found.start())
        if window[at + 1] != 0x75:  # not a \u: a \x or \U one, or a line break
            if _joins(window, at):
                others.append(at)
            if len(others) >= FEW_ESCAPES:  # the rest are looked for in one pass
                rest, start = at + 1, _ESCAPE_START
            found = start.search(window, at + 1)
            continue
        char = _PRINTABLE.get(window[at + 4 : at + 6])
        if char is None:
            found = start.search(window, at + 1)
            continue
        if len(parts) >= 2 * FEW_ESCAPES:
            return None, others, at if rest < 0 else rest
        parts += (view[last : at + 1], char)
        last = at + 6
        found = start.search(window, last)
    parts.append(view[last:])
    return parts, others, rest


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
        return cls.read(window, wide=False)[0]

    @classmethod
    def read(cls, window: bytes, *, wide: bool = True) -> tuple[Decoded | None, list[int], int]:
        """:meth:`of`, and where the window's ``\\x`` and ``\\U`` escapes are found in the same
        pass, and where to look for more from (-1: nowhere), for :func:`hex_escapes`."""
        parts, others, rest = _split(window, wide=wide)
        if parts is None:  # many escapes: one pass of the regular expression
            pieces = ESCAPE.split(window)
            pieces[1::2] = map(HEX.__getitem__, pieces[1::2])
            parts = list(pieces)
        if len(parts) == 1:
            return None, others, rest
        parts[0:-1:2] = map(_before_backslashes, parts[0:-1:2])
        return cls(window, parts), others, rest

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


class Recoded:
    """A window with the escapes of another encoding read (XML and HTML character references,
    quoted-printable), and the way back to the window's offsets.

    An escape reads as zero or more bytes (a quoted-printable soft line break reads as none).
    Unlike :class:`Decoded`, the window is scanned as it is too: these encodings are read only
    where a window shows them, and the hits of both scans are put together (see the engine).
    """

    __slots__ = ("_text_at", "_text_end", "_window_at", "_window_end", "text")

    def __init__(self, window: bytes, escapes: list[tuple[int, int, bytes]]) -> None:
        pieces: list[bytes] = []
        self._text_at: list[int] = []
        self._text_end: list[int] = []
        self._window_at: list[int] = []
        self._window_end: list[int] = []
        last = length = 0
        for first, end, char in escapes:
            pieces += (window[last:first], char)
            length += first - last
            self._text_at.append(length)
            self._window_at.append(first)
            length += len(char)
            self._text_end.append(length)
            self._window_end.append(end)
            last = end
        pieces.append(window[last:])
        self.text = b"".join(pieces)

    @classmethod
    def of_segments(cls, texts: list[bytes], lengths: list[int]) -> Recoded:
        """The window as segments, plain stretches and escapes in turn (``texts[2k]`` plain,
        ``texts[2k + 1]`` an escape read), each of ``lengths`` bytes in the window: built
        without a step of Python each escape."""
        recoded = cls.__new__(cls)
        ends_in_text = list(accumulate(map(len, texts)))
        ends_in_window = list(accumulate(lengths))
        recoded._text_at = ends_in_text[0:-1:2]
        recoded._text_end = ends_in_text[1::2]
        recoded._window_at = ends_in_window[0:-1:2]
        recoded._window_end = ends_in_window[1::2]
        recoded.text = b"".join(texts)
        return recoded

    def origin(self, at: int, *, end: bool = False) -> int:
        """The window offset of the boundary ``at`` in ``text`` (inside an escape: after it).
        An escape read as nothing (an escaped line break, markup) lies on the boundary: a
        span's ``end`` stops before it, its start begins after it, so a span covers such an
        escape only where it stands inside (a key that ends at a line-ending backslash is
        replaced without the backslash and the next line's indent)."""
        if end:
            first = bisect_left(self._text_at, at)
            if first < len(self._text_at) and self._text_end[first] == at:
                return self._window_at[first]
        index = bisect_right(self._text_at, at) - 1
        if index < 0:
            return at
        if at >= self._text_end[index]:
            return self._window_end[index] + at - self._text_end[index]
        return self._window_at[index] if at == self._text_at[index] else self._window_end[index]

    def at(self, origin: int) -> int:
        """The boundary in ``text`` of the window offset ``origin`` (inside an escape: after
        it)."""
        index = bisect_right(self._window_at, origin) - 1
        if index < 0:
            return origin
        if origin >= self._window_end[index]:
            return self._text_end[index] + origin - self._window_end[index]
        return self._text_at[index] if origin == self._window_at[index] else self._text_end[index]


_REFERENCE_START = compile_pattern(r"&(?:#[0-9]|#[xX][0-9a-fA-F]|quot;|amp;|lt;|gt;|apos;)")
"""The start of an XML or HTML character reference (RE2 skips to each ``&`` with ``memchr``)."""
_REFERENCE = re.compile(rb"&(?:#[xX]0*([0-9a-fA-F]{1,6})|#0*([0-9]{1,7})|(quot|amp|lt|gt|apos));")
_NAMED_REFERENCES = {b"quot": b'"', b"amp": b"&", b"lt": b"<", b"gt": b">", b"apos": b"'"}
_REFERENCE_CODES = frozenset([0x09, 0x0A, 0x0D, *range(0x20, 0x5C), *range(0x5D, 0x7F)])
"""The characters a numeric reference is read as: printable ASCII and the white space between
a key file's lines, but not the backslash, which would begin an escape that is not there."""


def character_references(window: bytes) -> Recoded | None:
    """The window with its XML and HTML character references read (``&#x41;``, ``&#65;``,
    ``&quot;``), or ``None`` when it holds none."""
    if _REFERENCE_START.search(window) is None:
        return None
    escapes: list[tuple[int, int, bytes]] = []
    for found in _REFERENCE.finditer(window):
        hexadecimal, decimal, name = found.groups()
        if name is not None:
            char = _NAMED_REFERENCES[name]
        else:
            code = int(hexadecimal, 16) if hexadecimal is not None else int(decimal)
            if code not in _REFERENCE_CODES:
                continue
            char = bytes([code])
        escapes.append((found.start(), found.end(), char))
    return Recoded(window, escapes) if escapes else None


_QUOTED_PRINTABLE_SIGNS = (compile_pattern(r"=(?i:3D)"), compile_pattern(r"-(?i:printable)"))
"""What shows a window holds quoted-printable text: its escape of ``=`` itself, or the name of
the encoding (a MIME part's ``Content-Transfer-Encoding: quoted-printable``)."""
_QUOTED_PRINTABLE = re.compile(rb"=([0-9A-Fa-f]{2})|=[ \t]*(?:\r?\n|(?:\\+r)?\\+n)")
"""An escaped byte (``=3D``; its hex digits in either case, as Python's ``quopri`` and Go's
``mime/quotedprintable`` read them), or a soft line break, raw or written in a JSON string
(``=\\n``)."""


def quoted_printable(window: bytes) -> Recoded | None:
    """The window read as quoted-printable (``=3D`` as ``=``, soft line breaks as nothing), or
    ``None`` when nothing in it shows that encoding."""
    if all(sign.search(window) is None for sign in _QUOTED_PRINTABLE_SIGNS):
        return None
    escapes = [
        (found.start(), found.end(), bytes([int(found.group(1), 16)]) if found.group(1) else b"")
        for found in _QUOTED_PRINTABLE.finditer(window)
    ]
    return Recoded(window, escapes) if escapes else None


_HEX_READ = re.compile(
    rb"(\\(?:(?<!\\\\)\\*+(?:x|U000000|u00)(" + _READ_CODE.encode() + rb")|[ \t]*\r?\n[ \t\r\n]*))"
)
"""An escape :func:`hex_escapes` reads (:data:`_READ_CODE`), with the run of backslashes
before it (an escape escaped again; matched from the run's first backslash only, so a long
run costs one pass, not one each backslash, and a search goes from backslash to backslash);
or an escaped line break, the backslash that ends a line (blanks after it too, as TOML has
it) and the white space up to the next line's first character (TOML skips blank lines too),
which read as nothing. A stretch split by it gives its plain text, each escape whole and its
code in turn: C work, not a step of Python each escape (a hostile body of nothing but
escapes)."""
_READ = {
    "".join(digits).encode(): bytes([code])
    for code in _REFERENCE_CODES
    for digits in product(*((c, c.upper()) for c in f"{code:02x}"))
}
"""The character of each two-digit code :func:`hex_escapes` reads, in either case."""
HEX_REACH = 8 * 1024
"""How far on either side of a ``\\x`` or ``\\U`` escape the window is read with it decoded:
past the longest secret with its name (a key file), so that one such escape anywhere in a
secret brings it whole into the reading."""
_EDGE_REACH = 1024
"""How far an edge of what is read is moved on to a byte no token holds (see below)."""
_NOT_TOKEN = re.compile(rb"[^A-Za-z0-9_\-+/=.~]")
"""A byte no token holds: where what is read around escapes may begin or end without cutting
one (a token cut short could read as a secret it is not)."""
_GAP = b"\n"
"""What a stretch of the window left unread reads as: a line's end, which no token goes past."""


def hex_escapes(window: bytes, found: Iterable[int] = (), rest: int = 0) -> Recoded | None:
    """The window with its ``\\xHH`` and ``\\UHHHHHHHH`` escapes read, as YAML's double-quoted
    strings (PyYAML, ruamel), JSON5 (``\\x`` alone), TOML 1.1 and Python read them
    (``ghp\\x5f…``), its backslashes possibly escaped again, as the JSON cursor takes them; its
    ``\\u00XX`` ones with them, so that a secret escaped both ways is read whole; and its
    escaped line breaks read as nothing, as YAML reads them in a double-quoted string (the
    blanks that begin the next line too: ``"ghp_aB3d\\`` then ``  E5fG…"`` is one token; JSON5,
    TOML and Python join such lines too, TOML past blank lines). ``None`` when
    it holds no ``\\x`` or ``\\U`` escape to read (its ``\\u00XX`` ones alone are the JSON
    cursor's). Only printable ASCII and the white space between a key file's lines are read,
    as for character references: never the backslash, which would begin an escape that is not
    there.

    Only the stretches within :data:`HEX_REACH` of a ``\\x`` or ``\\U`` escape read are kept,
    each from and up to a byte no token holds, the rest read as a line's end: a secret without
    such an escape is the JSON cursor's, and a window of source code with a ``\\x20`` or two
    (``re.compile('[\\x00-\\x20]')``) is not scanned again whole for them. ``found``: where
    such escapes are, in order, and ``rest``: where to look for more from (-1: nowhere), as the
    JSON cursor gives them, found in the same pass (:meth:`Decoded.read`)."""
    regions = _regions(window, list(found), rest)
    if not regions:
        return None
    # The window as segments, plain text and escapes in turn: what each reads as, and its
    # length in the window. A stretch left unread is one escape, read as a line's end.
    texts: list[bytes] = [b""]
    lengths = [0]
    at = 0
    for first, last in regions:
        texts.append(_GAP if first > at else b"")
        lengths.append(first - at)
        parts = _HEX_READ.split(window[first:last])
        codes = parts[2::3]
        del parts[2::3]  # plain text and escapes in turn, each as it stands
        lengths += map(len, parts)
        parts[1::2] = list(map(_READ.get, codes, repeat(b"")))  # a line break's code: none
        texts += parts
        at = last
    texts += (_GAP if at < len(window) else b"", b"")
    lengths += (len(window) - at, 0)
    return Recoded.of_segments(texts, lengths)


def _regions(window: bytes, found: list[int], rest: int) -> list[list[int]]:
    """The stretches of ``window`` within :data:`HEX_REACH` of a ``\\x`` or ``\\U`` escape it
    reads (those ``found``, then those from ``rest`` on), merged, in order. A run of escapes
    costs a search each stretch of the reach, not one each."""
    regions: list[list[int]] = []
    end = -1  # where the last stretch ends
    index = 0
    while True:
        if index < len(found):
            at = found[index]
            index += 1
        elif rest >= 0:
            match = _WIDE_HEX_ESCAPE.search(window, max(rest, end - HEX_REACH + 1))
            if match is None:
                break
            at = int(match.start())
            rest = at + 1
            if not _joins(window, at):
                continue
        else:
            break
        if at + HEX_REACH <= end:
            continue  # within what is read already
        last = _edge(window, at + 2 * HEX_REACH)  # the next one to widen it is a reach on
        if regions and at - HEX_REACH <= end:
            regions[-1][1] = last
        else:
            regions.append([_edge(window, at - HEX_REACH), last])
        end = last
    return regions


def _edge(window: bytes, at: int) -> int:
    """The first byte no token holds at or after ``at`` (within :data:`_EDGE_REACH`), kept
    within the window."""
    if at <= 0:
        return 0
    if at >= len(window):
        return len(window)
    found = _NOT_TOKEN.search(window, at, at + _EDGE_REACH)
    return found.start() if found is not None else at


_MARKUP_START = compile_pattern(r"<(?:!--|!\[CDATA\[|\?)")
"""The start of an XML comment, CDATA section or processing instruction, looked for by RE2
(which skips to each ``<`` with ``memchr``): a window without one costs almost nothing."""
_MARKUP = re.compile(rb"<!--|<!\[CDATA\[|\]\]>|<\?")
_MARKUP_AFTER_TOKEN = compile_pattern(r"[A-Za-z0-9_\-+/=.~](?:<!--|<!\[CDATA\[|\]\]>|<\?)")
"""Markup with a token's byte before it, which a run that splits a token begins with: a window
without any (markup between tags or after a blank, most of a page's) is not gone through in
Python."""
_MARKUP_ENDS = {b"<!--": b"-->", b"<?": b"?>"}
_TOKEN_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+/=.~")
"""The bytes a token holds (as :data:`_NOT_TOKEN` has it)."""


def markup_splits(window: bytes) -> Recoded | None:
    """The window with the XML markup that splits a token read as nothing, as an XML reader
    reads an element's text (ElementTree, a DOM's ``textContent``): a CDATA section's start
    or end, a comment, a processing instruction, or a run of them, with a token's bytes on
    both sides (``ghp_aB3d<![CDATA[E5fG…]]>``, ``ghp_aB3d<!-- -->E5fG…``, a section for each
    character). ``None`` when the window holds none: markup between tags or among words
    splits no token, and is left as it is.

    Each comment and instruction is looked for its end once, from where the last one ended
    (one without an end ends the look for more of its kind): linear, whatever the markup."""
    if _MARKUP_START.search(window) is None or _MARKUP_AFTER_TOKEN.search(window) is None:
        return None  # no markup (one memchr search), or none a run splitting a token begins
    escapes: list[tuple[int, int, bytes]] = []
    unended: set[bytes] = set()
    run_start = run_end = -1
    for found in _MARKUP.finditer(window):
        start = found.start()
        if start < run_end:  # inside a comment or an instruction already taken
            continue
        mark = found.group()
        close = _MARKUP_ENDS.get(mark)
        if close is None:
            end = found.end()
        elif mark in unended:
            continue
        else:
            at = window.find(close, found.end())
            if at < 0:
                unended.add(mark)
                continue
            end = at + len(close)
        if start != run_end:  # a new run: the last one judged
            _split_by(window, run_start, run_end, escapes)
            run_start = start
        run_end = end
    _split_by(window, run_start, run_end, escapes)
    return Recoded(window, escapes) if escapes else None


def _split_by(window: bytes, start: int, end: int, escapes: list[tuple[int, int, bytes]]) -> None:
    """Keep the run of markup ``window[start:end]`` to read as nothing when it splits a token
    (a token's byte on either side)."""
    if (
        0 < start < end < len(window)
        and window[start - 1] in _TOKEN_BYTES
        and window[end] in _TOKEN_BYTES
    ):
        escapes.append((start, end, b""))
