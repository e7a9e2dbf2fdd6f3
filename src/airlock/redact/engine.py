"""The streaming redaction engine: reads chunks, finds secrets with one RE2 program, writes.

Theory of operation
-------------------
All rules are compiled into one RE2 alternation without capturing groups; RE2 scans it as a DFA,
in time linear in the input whatever the patterns. For each match, an RE2 set tells which rule
matched exactly that span and the rule's own program gives the secret's span (see ``_Table``).
The input is read in chunks of ``CHUNK`` bytes into a window. Only matches that *begin* before ``len(window) - OVERLAP`` are taken; the rest of the
window is carried into the next round, so any secret shorter than ``OVERLAP`` bytes is seen whole
whichever offset the chunk boundary falls at. A few bytes already written are kept in front of
the window as left context, so a word boundary is judged the same way on both sides of a cut.
Memory is bounded by ``CHUNK + OVERLAP`` whatever the input's size or line length.

Each candidate is checked by ``rules.accepts`` (placeholders, allow-list, entropy); a generic
match whose value fits a specific rule is named after that rule. Verdicts on short candidates
are remembered, and when a candidate that gave no hit repeats with a fixed period (hostile
input), the scan jumps over the copies well inside the periodic run (``_past_repeats``).

Where a window holds JSON ``\\u00XX`` escapes of printable characters, it is scanned decoded
(``Decoded``) and each span is mapped back to the window, widened to whole escapes.

The scan of each window goes on where the previous window's stopped (the end of the last
candidate looked at), so the candidates are the ones a scan of the whole input in one piece
finds, wherever the chunk boundaries fall.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import product

import re2

from airlock._frozen import frozen
from airlock.errors import SettingsError
from airlock.redact.rules import (
    EDGE_PREFIX,
    MARKER,
    RULES,
    URL_KINDS,
    Rule,
    accepts,
    starts_in_marker,
)

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from airlock.settings import Loaded, RedactionSettings

    _Hit = tuple[int, int, str]
    """A secret found: its span in the window and its kind (a plain tuple: one per hit)."""

CHUNK = 1 << 20
"""Bytes read at a time."""
OVERLAP = 1 << 16
"""The longest secret guaranteed to be found across a chunk boundary."""
LONGEST = 1 << 16
"""Matches longer than this are judged on their first ``LONGEST`` bytes (hostile input)."""
KEYWORD_REACH = 32
"""How far before a user rule's match its keyword may be."""
CONTEXT = 64
"""Bytes already written kept in front of the window as left context."""
KNOWN = 4096
"""Candidate spans whose rule is remembered."""
KNOWN_SPAN = 512
"""The longest candidate span remembered."""
PERIODIC_MARGIN = 512
"""Bytes at the end of a periodic stretch always scanned (a candidate's surroundings)."""
VERDICTS = 4096
"""Candidates whose verdict is remembered (hostile input repeats one candidate many times)."""
_HOST = re.compile(rb"[A-Za-z0-9.\-]{0,255}")
"""The host after a URL's ``user:password@``."""


@frozen
class Finding:
    """One redacted secret: its kind and 1-based line; never the secret itself.

    ``start`` and ``end`` are byte offsets of the replaced span in the input.
    """

    __slots__ = ("end", "kind", "line", "start")
    kind: str
    line: int
    start: int
    end: int

    def __init__(self, kind: str, line: int, start: int = 0, end: int = 0) -> None:
        _set = object.__setattr__
        _set(self, "kind", kind)
        _set(self, "line", line)
        _set(self, "start", start)
        _set(self, "end", end)


class RedactionReport:
    """What one redaction found, in input order (filled in as the copy goes).

    With ``keep_findings`` false, only the number of secrets of each kind is kept and
    ``findings`` stays empty: memory stays flat however many secrets the input holds. With
    ``lines`` false, findings carry line 0 (lines are not counted).
    """

    __slots__ = ("bytes_in", "bytes_out", "findings", "keep_findings", "lines", "tally")

    def __init__(
        self,
        findings: list[Finding] | None = None,
        bytes_in: int = 0,
        bytes_out: int = 0,
        keep_findings: bool = True,
        lines: bool = True,
        tally: Counter[str] | None = None,
    ) -> None:
        self.findings: list[Finding] = [] if findings is None else findings
        self.bytes_in = bytes_in
        self.bytes_out = bytes_out
        self.keep_findings = keep_findings
        self.lines = lines
        self.tally: Counter[str] = Counter() if tally is None else tally
        if self.findings and not self.tally:
            self.tally.update(finding.kind for finding in self.findings)

    def __repr__(self) -> str:
        return (
            f"RedactionReport(counts={self.counts()}, bytes_in={self.bytes_in}, "
            f"bytes_out={self.bytes_out})"
        )

    def add(self, kind: str, line: int, start: int, end: int) -> None:
        """Count one redacted secret (and keep it as a ``Finding``, with ``keep_findings``)."""
        self.tally[kind] += 1
        if self.keep_findings:
            self.findings.append(Finding(kind, line, start, end))

    @property
    def found(self) -> bool:
        """Whether anything was redacted."""
        return bool(self.tally)

    def counts(self) -> dict[str, int]:
        """Number of secrets redacted, by kind, most frequent first."""
        return dict(self.tally.most_common())

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data (kinds, lines and offsets; no secret)."""
        return {
            "found": self.found,
            "counts": self.counts(),
            "findings": [
                {"kind": f.kind, "line": f.line, "start": f.start, "end": f.end}
                for f in self.findings
            ],
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }


def _options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.max_mem = 64 << 20
    options.log_errors = False  # errors are raised, in our words; never logged by the library
    return options


_UNANCHORED = re2._Anchor.UNANCHORED
_BOTH = re2._Anchor.ANCHOR_BOTH
_START = re2._Anchor.ANCHOR_START


class _Table:
    """Rules compiled three ways, for speed with exact answers.

    ``scan`` is the alternation of every rule without capturing groups: RE2 runs it as a DFA over
    the input, which is what costs. For each of its (few) matches, ``set`` tells which rules match
    exactly that span, and the one rule's own program, anchored at both ends and in context, gives
    the secret's span. (The binding's low-level calls return spans without building match
    objects.)
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
        self.rules = rules
        options = _options()
        self.scan = _regexp("|".join(f"(?:{_plain(rule.pattern)})" for rule in rules), options)
        self.set = re2.Set.FullMatchSet(options)
        for rule in rules:
            self.set.Add(_plain(rule.pattern).encode("latin-1"))
        self.set.Compile()
        self.starts = re2.Set.MatchSet(options)
        for rule in rules:
            self.starts.Add(_plain(rule.pattern).encode("latin-1"))
        self.starts.Compile()
        wrapped = [_compiled(f"(?P<whole>{rule.pattern})", options) for rule in rules]
        self.each = [program._regexp for program in wrapped]
        self.secret = [_group_index(program, "secret", 1) for program in wrapped]
        self.secret_from = [rule.secret_from.encode("latin-1") for rule in rules]
        self.known: dict[tuple[bytes, bool, bool], tuple[int, int, int] | None] = {}

    def find(self, text: bytes, start: int, end: int) -> tuple[int, int, int, int, int] | None:
        """The next match in ``text[start:end]``: its span, the rule's index, the secret's span."""
        known = self.known
        while True:
            first, last = self.scan.Match(_UNANCHORED, text, start, end)[0]
            if first < 0:
                return None
            if last - first > LONGEST:
                return self._find_long(text, first, last)
            # A span seen before, with the same byte on each side, is the same match: hostile
            # input repeats one candidate many times.
            key = (text[first - 1 if first else 0 : last + 1], first > 0, last < len(text))
            answer = known.get(key, self)
            if answer is self:
                answer = self._which(text, first, last)
                if last - first <= KNOWN_SPAN:
                    if len(known) >= KNOWN:
                        known.clear()
                    known[key] = answer
            if answer is not None:
                index, secret_start, secret_end = answer  # type: ignore[misc]
                return first, last, index, first + secret_start, first + secret_end
            # Context made the span differ from every single rule (rare): step past its start.
            start = first + 1

    def _which(self, text: bytes, first: int, last: int) -> tuple[int, int, int] | None:
        """The rule matching exactly ``text[first:last]`` and its secret's span from ``first``."""
        for index in sorted(self.set.Match(text[first:last]) or ()):
            rule = self.rules[index]
            if rule.bare:
                return index, _after_edge(text, first) - first, last - first
            if rule.secret_from:
                at = text.find(self.secret_from[index], first, last)
                if at >= 0:
                    return index, at - first, last - first
            groups = self.each[index].Match(_BOTH, text, first, last)
            if groups[0][0] >= 0:
                secret = groups[self.secret[index]]
                return index, secret[0] - first, secret[1] - first
        return None

    def _find_long(self, text: bytes, first: int, last: int) -> tuple[int, int, int, int, int]:
        # A match longer than any secret (a hostile run). Only a rule that accepts values this
        # long (a key file) gets its span computed, on the first LONGEST bytes; any other is
        # passed over whole (tokens inside are still looked for), so the work stays linear.
        # Index -1: passed over.
        indexes = self.starts.Match(text[first : first + LONGEST])
        index = min(indexes) if indexes else -1
        if index < 0 or self.rules[index].max_length < LONGEST:
            return first, last, -1, first, first
        head = text[max(0, first - 1) : first + LONGEST]
        shift = max(0, first - 1)
        groups = self.each[index].Match(_START, head, first - shift, len(head))
        if groups[0][0] < 0:
            return first, last, -1, first, first
        secret = groups[self.secret[index]]
        return first, groups[0][1] + shift, index, secret[0] + shift, secret[1] + shift

    def kind_of(self, value: bytes) -> Rule | None:
        """The first rule whose pattern matches the whole value, if any."""
        indexes = self.set.Match(value)
        return self.rules[min(indexes)] if indexes else None


_ESCAPE = re.compile(
    rb"u00(?<=\\u00)(2[013-9a-fA-F]|[3-46][0-9a-fA-F]|5[0-9abd-fABD-F]|7[0-9a-eA-E])"
)
"""The ``u00XX`` of a JSON ``\\u00XX`` escape (its backslash possibly escaped again) of a
printable ASCII character other than the quote and the backslash, which would change the
string's structure. The pattern starts with a literal, which the scan looks for at C speed;
the escape's backslashes are the run just before it."""

_HEX = {
    "".join(digits).encode(): bytes([code])
    for code in range(0x20, 0x7F)
    for digits in product(*((c, c.upper()) for c in f"{code:02x}"))
}
"""The character of each two-digit code, in either case."""


FEW_ESCAPES = 256
"""Up to this many escapes in a window, they are looked for one by one (C searches)."""

_PRINTABLE = {digits: char for digits, char in _HEX.items() if char not in b'"\\'}
"""The characters an escape is read as: printable, but not the quote or the backslash."""


def _split_escapes(window: bytes) -> list[bytes] | None:
    """``_ESCAPE.split(window)`` with each code read as its character; ``None`` past
    ``FEW_ESCAPES`` escapes (one pass of the regular expression is then faster)."""
    parts: list[bytes] = []
    last = 0
    at = window.find(b"\\u00")
    while at >= 0:
        char = _PRINTABLE.get(window[at + 4 : at + 6])
        if char is None:
            at = window.find(b"\\u00", at + 1)
            continue
        if len(parts) >= 2 * FEW_ESCAPES:
            return None
        parts += (window[last : at + 1], char)
        last = at + 6
        at = window.find(b"\\u00", last)
    parts.append(window[last:])
    return parts


class Decoded:
    """A window with its ``\\u00XX`` escapes read, and the way back to the window's offsets.

    The window is plain stretches (``parts[2k]``, the same in both) each followed by an escape
    (one character once read, ``parts[2k + 1]``). Offsets are mapped by walking a cursor from
    stretch to stretch, so the cost is paid around hits (few), never per escape of a window.
    """

    __slots__ = ("_k", "_parts", "_text_at", "_window", "_window_at", "text")

    def __init__(self, window: bytes, parts: list[bytes]) -> None:
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
        parts = _split_escapes(window)
        if parts is None:  # many escapes: one pass of the regular expression
            parts = _ESCAPE.split(window)
            parts[1::2] = map(_HEX.__getitem__, parts[1::2])
        if len(parts) == 1:
            return None
        parts[0:-1:2] = [part.rstrip(b"\\") for part in parts[0:-1:2]]
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


def _host(text: bytes, at: int) -> bytes:
    """The host name starting at ``at`` (after a URL's ``@``)."""
    found = _HOST.match(text, at)
    return found.group() if found is not None else b""


_EDGE_PREFIX = re.compile(EDGE_PREFIX.encode("latin-1"))


def _after_edge(text: bytes, first: int) -> int:
    """Where a bare secret starts: after the escape or control sequence its match may begin
    with (``EDGE``); a match that begins otherwise begins with the secret."""
    if text[first] not in (0x5C, 0x1B):  # a backslash, an escape character
        return first
    edge = _EDGE_PREFIX.match(text, first)
    return edge.end() if edge is not None else first


def _plain(pattern: str) -> str:
    """The pattern with its named groups made non-capturing."""
    return pattern.replace("(?P<secret>", "(?:")


def _group_index(program: Any, name: str, default: int) -> int:
    for key, number in program.groupindex.items():
        if key in (name, name.encode()):
            return int(number)
    return default


def _regexp(pattern: str, options: re2.Options) -> Any:
    return _compiled(pattern, options)._regexp


def _compiled(pattern: str, options: re2.Options) -> Any:
    try:
        return re2.compile(pattern.encode("latin-1"), options)
    except (re2.error, UnicodeEncodeError) as error:
        raise SettingsError(
            f"a redaction pattern is not a valid RE2 pattern ({_problem(error)}): {pattern[:200]!r}"
        ) from error


def _problem(error: Exception) -> str:
    """What is wrong with a pattern, in plain words (RE2's message, without its bytes repr)."""
    if isinstance(error, UnicodeEncodeError):
        return "only Latin-1 characters can be matched; write others as their UTF-8 bytes"
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


_KIND_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def _compile_rule(rule: Rule) -> None:
    if not rule.kind or not set(rule.kind) <= _KIND_CHARACTERS:
        raise SettingsError(
            f"airlock.redaction.rules: kind {rule.kind!r} may hold only lower-case letters, "
            "digits and _ (it is written into [REDACTED:<kind>] markers)"
        )
    try:
        re2.compile(rule.pattern.encode("latin-1"), _options())
        re2.compile(_plain(rule.pattern).encode("latin-1"), _options())
    except (re2.error, UnicodeEncodeError) as error:
        raise SettingsError(
            f"airlock.redaction.rules: the pattern of kind {rule.kind!r} is not a valid RE2 "
            f"pattern: {_problem(error)} (pattern {rule.pattern!r})"
        ) from error


class Redactor:
    """Finds secrets and replaces each with ``[REDACTED:<kind>]``.

    Args:
        extra_rules: Rules added after the built-in table (from settings, say).
        allow: Values that are never redacted (exact, compared after unescaping).
        chunk: Bytes read at a time.
        overlap: The longest secret guaranteed to be found across a chunk boundary.
    """

    def __init__(
        self,
        extra_rules: Iterable[Rule] = (),
        allow: Iterable[str] = (),
        *,
        chunk: int = CHUNK,
        overlap: int = OVERLAP,
    ) -> None:
        self._chunk = chunk
        self._overlap = overlap
        extra = tuple(extra_rules)
        for rule in extra:
            _compile_rule(rule)
        self.rules: tuple[Rule, ...] = RULES + extra
        # User rules with a keyword, by identity (the rules are kept in ``self.rules``): a
        # look-up per candidate, which must not hash a whole rule.
        self._keyworded = frozenset(id(rule) for rule in extra if rule.keyword)
        self._markers: dict[str, bytes] = {}
        self._verdicts: dict[tuple[int, bytes, bytes, bytes], str | None] = {}
        self._allow = frozenset(value.encode() for value in allow)
        self._all = _Table(self.rules)
        self._specific = _Table(tuple(rule for rule in self.rules if rule.specific))
        self._shortest_specific = min(rule.min_length for rule in self._specific.rules)

    @classmethod
    def from_loaded(cls, loaded: Loaded) -> Redactor:
        """A redactor with the rules and allow-list of ``airlock.redaction`` in settings.

        Raises:
            SettingsError: A settings file that sets ``airlock.redaction`` is unusable, or one
                of its rules is not a valid pattern: redacting without the rules the user
                wrote would let what they meant to hide through, so nothing is redacted.
        """
        settings = loaded.redaction
        if settings.problems:
            files = sorted({problem.path for problem in settings.problems})
            raise SettingsError(
                f"airlock.redaction cannot be read from {', '.join(files)}, so its rules would "
                "not apply; refusing to redact without them. Fix: "
                + "; ".join(str(problem) for problem in settings.problems)
            )
        try:
            return cls.from_settings(settings)
        except SettingsError as error:
            raise SettingsError(f"{', '.join(settings.files) or 'settings'}: {error}") from error

    @classmethod
    def from_settings(cls, settings: RedactionSettings) -> Redactor:
        """A redactor from the typed value of ``airlock.redaction`` (``Loaded.redaction``)."""
        rules = [
            Rule(
                kind=rule.kind,
                pattern=rule.pattern,
                keyword=rule.keyword.lower(),
                specific=True,
            )
            for rule in settings.rules
        ]
        return cls(extra_rules=rules, allow=settings.allow)

    def redact_stream(
        self, src: BinaryIO, dst: BinaryIO, *, report: RedactionReport | None = None
    ) -> RedactionReport:
        """Copy ``src`` to ``dst`` with every secret replaced; memory stays bounded.

        Args:
            src: A binary stream to read (a file, stdin's buffer, a BytesIO).
            dst: A binary stream to write the redacted bytes to.
            report: A report to fill in as the copy goes (so what was found before a read or
                write failed is still known); a new one by default.

        Returns:
            The report: each secret's kind, line and byte offsets.
        """
        report = RedactionReport() if report is None else report
        context = b""
        pending = b""
        base = 0  # input offset of pending[0]
        resume = 0  # input offset where the scan goes on: the end of the last candidate
        line = 1 if report.lines else 0  # line number at pending[0]; 0: not counted
        while True:
            data = src.read(self._chunk)
            eof = not data
            report.bytes_in += len(data)
            window = context + pending + data
            begin = len(context)
            safe = len(window) if eof else len(window) - self._overlap
            if safe <= begin:
                pending = window[begin:]
                if eof:
                    break
                continue
            # The scan goes on exactly where the last window's stopped, as over one window: from
            # anywhere else (inside a secret just redacted) it could find a different candidate
            # that runs over the next secret and hides it.
            reached = [max(begin, resume - base + begin)]
            hits = self._hits_unescaped(window, reached[0], safe, reached)
            cut, pieces, line = self._redact_window(window, begin, safe, base, line, report, hits)
            # A candidate reaching the window's end may go on past it: its rest is scanned anew.
            resume = base + reached[0] - begin if eof or reached[0] < len(window) else 0
            out = b"".join(pieces)
            dst.write(out)
            report.bytes_out += len(out)
            base += cut - begin
            context = window[max(begin, cut - CONTEXT) : cut]
            pending = window[cut:]
            if eof:
                break
        return report

    def _redact_window(
        self,
        window: bytes,
        begin: int,
        safe: int,
        base: int,
        line: int,
        report: RedactionReport,
        hits: Iterable[_Hit],
    ) -> tuple[int, list[bytes], int]:
        pieces: list[bytes] = []
        written = begin
        lines = report.lines  # counting them is a pass over the input: only when wanted
        for start, end, kind in hits:
            if start < written:
                continue
            if lines:
                line += window.count(b"\n", written, start)
            pieces.append(window[written:start])
            pieces.append(self._marker(kind))
            report.add(kind, line, base + start - begin, base + end - begin)
            if lines:
                line += window.count(b"\n", start, end)
            written = end
        cut = max(safe, written)
        if lines:
            line += window.count(b"\n", written, cut)
        pieces.append(window[written:cut])
        return cut, pieces, line

    def _hits_unescaped(
        self, window: bytes, scan_from: int, safe: int, reached: list[int]
    ) -> Iterator[_Hit]:
        """The hits in ``window``, with JSON ``\\u00XX`` escapes of printable characters read as
        the characters they stand for; spans are in ``window`` and cover escapes whole.

        Once the hits are all taken, ``reached[0]`` is where the scan would go on.
        """
        decoded = Decoded.of(window)
        if decoded is None:
            yield from self._hits(window, scan_from, safe, reached)
            return
        text_safe = decoded.at(safe, from_end=True)
        text_from = decoded.at(scan_from)
        for start, end, kind in self._hits(decoded.text, text_from, text_safe, reached):
            yield decoded.origin(start), decoded.origin(end), kind
        reached[0] = decoded.origin(reached[0])

    def _hits(self, window: bytes, scan_from: int, safe: int, reached: list[int]) -> Iterator[_Hit]:
        """The hits of the candidates starting from ``scan_from`` and before ``safe``.

        Once the hits are all taken, ``reached[0]`` is where the scan would go on: the end of the
        last candidate looked at (or past the copies of a repeated one).
        """
        table = self._all
        position = scan_from
        limit = len(window)
        previous = (-1, -1)  # the span of the last candidate, when it gave no hit
        while True:
            found = table.find(window, position, limit)
            if found is None or found[0] >= safe:
                reached[0] = position
                return
            first, last, index, start, end = found
            # On from the end of the value, not of the match: the byte that ends a value (a
            # backslash, a quote, a space) may begin the next secret (``\\nAKIA…``). A match
            # passed over whole (index -1, hostile input) is scanned on from its end.
            position = end if index >= 0 and end > first else max(last, first + 1)
            if previous[0] >= 0:
                position = self._past_repeats(window, previous, first, last, position)
            previous = (first, last)
            for hit in self._judged(window, first, last, index, start, end):
                previous = (-1, -1)
                yield hit

    def _past_repeats(
        self, window: bytes, previous: tuple[int, int], first: int, last: int, position: int
    ) -> int:
        """Where to scan on from when the candidate repeats the one before, which gave no hit.

        If the text from the previous candidate on is periodic (hostile input: one candidate
        repeated), every later copy well inside the periodic stretch is the same match with the
        same surroundings (the byte before, the host after, the name before it) and gives no hit
        either, so the scan jumps over them; the copies near the stretch's end are scanned as
        usual. Only user rules with a keyword look further back; with them, nothing is skipped.
        """
        before, before_end = previous
        period = first - before
        if (
            self._keyworded
            or period <= 0
            or last - first != before_end - before
            or window[before:before_end] != window[first:last]
        ):
            return position
        # How far the text keeps the period: double, then halve back (C comparisons).
        reach = max(last - first, 1)
        while first + reach < len(window) and (
            window[first : first + 2 * reach] == window[before : before + 2 * reach]
        ):
            reach *= 2
        low, high = 0, reach
        while low < high:
            middle = (low + high + 1) // 2
            if window[first : first + middle] == window[before : before + middle]:
                low = middle
            else:
                high = middle - 1
        periodic_end = first + low  # text[before:periodic_end] has the period
        copies = (periodic_end - PERIODIC_MARGIN - last) // period
        return position + copies * period if copies > 0 else position

    def _judged(
        self, window: bytes, first: int, last: int, index: int, start: int, end: int
    ) -> Iterator[_Hit]:
        """The hits of one candidate: itself, or specific tokens inside a rejected one."""
        table = self._all
        if index < 0:
            yield from self._specific_hits(window, first, last)
            return
        rule = table.rules[index]
        if not self._has_keyword(rule, window, first, last):
            return
        value = window[start:end]
        if rule.specific:
            context = host = b""
        else:
            marker = window.rfind(b"[REDACTED:", max(0, first - 64), first)
            if marker >= 0 and starts_in_marker(window[marker:first]):
                return
            context = window[first:start]
            host = _host(window, last) if rule.kind in URL_KINDS else b""
        kind = self._judge(index, rule, value, context, host)
        if kind is not None:
            yield start, end, kind
        elif not rule.specific and end - start >= self._shortest_specific:
            # A rejected assignment may still hold a token of a specific kind.
            yield from self._specific_hits(window, start, end)

    def _judge(
        self, index: int, rule: Rule, value: bytes, context: bytes, host: bytes
    ) -> str | None:
        """The kind to redact a candidate as, or ``None``; remembered, for repeated input."""
        if len(value) + len(context) > KNOWN_SPAN:  # long values (key files) are not kept
            accepted = accepts(rule, value, self._allow, context, host)
            return self._name(rule, value) if accepted else None
        key = (index, value, context, host)
        verdict = self._verdicts.get(key, self)
        if verdict is self:
            if len(self._verdicts) >= VERDICTS:
                self._verdicts.clear()
            accepted = accepts(rule, value, self._allow, context, host)
            verdict = self._verdicts[key] = self._name(rule, value) if accepted else None
        return verdict  # type: ignore[return-value]

    def _specific_hits(self, window: bytes, start: int, end: int) -> Iterator[_Hit]:
        table = self._specific
        while True:
            found = table.find(window, start, end)
            if found is None:
                return
            first, last, index, secret_start, secret_end = found
            start = last if last > first else first + 1
            if index < 0:
                continue
            rule = table.rules[index]
            if not self._has_keyword(rule, window, first, last):
                continue
            if accepts(rule, window[secret_start:secret_end], self._allow):
                yield secret_start, secret_end, rule.kind

    def _marker(self, kind: str) -> bytes:
        marker = self._markers.get(kind)
        if marker is None:
            marker = self._markers[kind] = MARKER.format(kind=kind).encode()
        return marker

    def _has_keyword(self, rule: Rule, window: bytes, first: int, last: int) -> bool:
        # A user's rule only matches where its keyword is (case-insensitive), in the match or
        # just before it; the built-in keywords document the literal each pattern starts from.
        if not self._keyworded or id(rule) not in self._keyworded:
            return True
        return rule.keyword.encode() in window[max(0, first - KEYWORD_REACH) : last].lower()

    def _name(self, rule: Rule, value: bytes) -> str:
        if rule.specific:
            return rule.kind
        specific = self._specific.kind_of(value)
        return specific.kind if specific is not None else rule.kind

    def redact_text(self, text: str) -> tuple[str, RedactionReport]:
        """The text with every secret replaced, and the report."""
        dst = io.BytesIO()
        report = self.redact_stream(io.BytesIO(text.encode("utf-8", "surrogateescape")), dst)
        return dst.getvalue().decode("utf-8", "surrogateescape"), report
