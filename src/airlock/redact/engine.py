"""The streaming redaction engine: reads chunks, finds secrets with one RE2 program, writes.

Theory of operation
-------------------
All rules are compiled into one RE2 program (``table.py``); RE2 scans it as a DFA, in time
linear in the input whatever the patterns. The input is read in chunks of ``CHUNK`` bytes into a
window. Only matches that *begin* before ``len(window) - OVERLAP`` are taken; the rest of the
window is carried into the next round, so any secret shorter than ``OVERLAP`` bytes is seen whole
whichever offset the chunk boundary falls at. A few bytes already written are kept in front of
the window as left context, so a word boundary is judged the same way on both sides of a cut.
Memory is bounded by ``CHUNK + OVERLAP`` whatever the input's size or line length.

Each candidate is checked by ``checks.accepts`` (placeholders, allow-list, shape, entropy); a
generic match whose value fits a specific rule is named after that rule, and a named format
whose value does not fit its vendor's shape is judged as a generic key. Verdicts on candidates
(key files too) and the tokens found inside rejected assignments are remembered by their text
(``memo.py``), and a candidate repeated with a fixed period is skipped (``repeats.py``). Where
a window holds JSON ``\\u00XX`` escapes of printable characters, it is scanned decoded
(``escapes.py``) and each span is mapped back, widened to whole escapes; so is what stands
near YAML's and JSON5's ``\\xHH`` and ``\\UHHHHHHHH`` ones, found in the same pass.

The scan of each window goes on where the previous window's stopped (the end of the last
candidate looked at), so the candidates are the ones a scan of the whole input in one piece
finds, wherever the chunk boundaries fall.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from airlock.errors import SettingsError
from airlock.redact import user_rules
from airlock.redact.checks import URL_KINDS, accepts, starts_in_marker
from airlock.redact.escapes import (
    Decoded,
    character_references,
    hex_escapes,
    markup_splits,
    quoted_printable,
)
from airlock.redact.memo import Memo
from airlock.redact.patterns import MARKER, Rule
from airlock.redact.repeats import Span, past_repeats
from airlock.redact.report import RedactionReport
from airlock.redact.rules import RULES
from airlock.redact.table import Candidate, Table

if TYPE_CHECKING:
    from airlock.settings import Loaded, RedactionSettings

CHUNK = 1 << 20
"""Bytes read at a time."""
OVERLAP = 1 << 16
"""The longest secret guaranteed to be found across a chunk boundary."""
KEYWORD_REACH = 32
"""How far before a user rule's match its keyword may be."""
CONTEXT = 64
"""Bytes already written kept in front of the window as left context."""
_HOST = re.compile(rb"[A-Za-z0-9.\-]{0,255}")
"""The host after a URL's ``user:password@``."""
NAME_REACH = 40
"""How far before a generic match's word its name is read (``csrf_`` before ``token``); less
than ``CONTEXT``, so a chunk boundary never cuts it."""
_NAME_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"


@dataclass(frozen=True, slots=True)
class Hit:
    """A secret found: its span in the window and its kind."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True, slots=True)
class Scanned:
    """The hits of a window, and where the scan would go on (the end of the last candidate
    looked at, or past the copies of a repeated one)."""

    hits: list[Hit]
    reached: int


@dataclass(frozen=True, slots=True)
class _Verdict:
    kind: str | None


class Redactor:
    """Finds secrets and replaces each with ``[REDACTED:<kind>]``.

    Args:
        extra_rules: Rules added after the built-in table (from settings, say).
        allow: Values that are never redacted (exact, compared after unescaping).
        chunk: Bytes read at a time.
        overlap: The longest secret guaranteed to be found across a chunk boundary.
        split_scan: Scan with a few smaller RE2 programs, which RE2 builds in under half the
            time on new text (a command that reads its input once); the default, one program,
            is a single pass once its states are built (a long-lived proxy).
        body_readings: Read too what a server's parser undoes in a body it takes (YAML's and
            JSON5's ``\\xHH`` and ``\\UHHHHHHHH`` escapes, escaped line breaks, XML markup
            between a key's pieces): the egress proxy's secrets check asks for them. A
            transcript or a file to redact is read as its readers read it (JSON's
            ``\\u00XX``, character references, quoted-printable), which costs less on text
            full of backslashes and markup (source code).
    """

    def __init__(
        self,
        extra_rules: Iterable[Rule] = (),
        allow: Iterable[str] = (),
        *,
        chunk: int = CHUNK,
        overlap: int = OVERLAP,
        split_scan: bool = False,
        body_readings: bool = False,
    ) -> None:
        self._chunk = chunk
        self._body_readings = body_readings
        self._overlap = overlap
        extra = tuple(extra_rules)
        for rule in extra:
            user_rules.check_rule(rule)
        self.rules: tuple[Rule, ...] = RULES + extra
        # User rules with a keyword, by identity: a look-up per candidate must not hash a rule.
        self._keyworded = frozenset(id(rule) for rule in extra if rule.keyword)
        self._markers: dict[str, bytes] = {}
        # Verdicts by candidate, and the tokens inside rejected assignments by their text
        # (transcripts and hostile input repeat them).
        self._verdicts: Memo[tuple[int, bytes, bytes, bytes], _Verdict] = Memo()
        self._inside: Memo[tuple[bytes, bool, bool], tuple[tuple[int, int, str], ...]] = Memo()
        self._allow = frozenset(value.encode() for value in allow)
        self._all = Table(self.rules, split=split_scan)
        self._specific = Table(tuple(rule for rule in self.rules if rule.specific), split=True)
        self._shortest_specific = min(rule.min_length for rule in self._specific.rules)
        generic = [rule for rule in self.rules if rule.kind == "generic_api_key"]
        self._generic = generic[0] if generic else None

    @classmethod
    def from_loaded(cls, loaded: Loaded, *, split_scan: bool = False) -> Redactor:
        """A redactor with the rules and allow-list of ``airlock.redaction`` in settings
        (``split_scan`` as for the constructor).

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
            return cls.from_settings(settings, split_scan=split_scan)
        except SettingsError as error:
            raise SettingsError(f"{', '.join(settings.files) or 'settings'}: {error}") from error

    @classmethod
    def from_settings(cls, settings: RedactionSettings, *, split_scan: bool = False) -> Redactor:
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
        return cls(extra_rules=rules, allow=settings.allow, split_scan=split_scan)

    def redact_stream(
        self, src: IO[bytes], dst: IO[bytes], *, report: RedactionReport | None = None
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
        context = pending = b""
        base = 0  # input offset of pending[0]
        resume = 0  # input offset where the scan goes on: the end of the last candidate
        line = 1 if report.lines else 0  # line number at pending[0]; 0: not counted
        while True:
            data = src.read(self._chunk)
            eof = not data
            report.bytes_in += len(data)
            window = b"".join((context, pending, data))
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
            scanned = self._hits_unescaped(window, max(begin, resume - base + begin), safe)
            cut, pieces, line = self._redact_window(
                window, begin, safe, base, line, report, scanned
            )
            # A candidate reaching the window's end may go on past it: its rest is scanned anew.
            reached = scanned.reached
            resume = base + reached - begin if eof or reached < len(window) else 0
            out = b"".join(pieces)
            dst.write(out)
            report.bytes_out += len(out)
            base += cut - begin
            context = window[max(begin, cut - CONTEXT) : cut]
            pending = window[cut:]
            if eof:
                break
        return report

    def find(self, window: bytes) -> list[Hit]:
        """The secrets of ``window`` scanned whole, in one piece, in order and not overlapping:
        what :meth:`redact_stream` would replace, without writing a copy (a caller that only
        counts, or scans a window off the event loop's thread: RE2 lets go of the GIL).
        """
        hits: list[Hit] = []
        written = 0
        for hit in self._hits_unescaped(window, 0, len(window)).hits:
            if hit.start >= written:
                hits.append(hit)
                written = hit.end
        return hits

    def _redact_window(
        self,
        window: bytes,
        begin: int,
        safe: int,
        base: int,
        line: int,
        report: RedactionReport,
        scanned: Scanned,
    ) -> tuple[int, list[bytes | memoryview], int]:
        """Replace the hits: where the window was cut, the pieces to write (the window's
        stretches as views, not copies), the line there."""
        pieces: list[bytes | memoryview] = []
        view = memoryview(window)
        written = begin
        lines = report.lines  # counting them is a pass over the input: only when wanted
        for hit in scanned.hits:
            if hit.start < written:
                continue
            if lines:
                line += window.count(b"\n", written, hit.start)
            pieces.append(view[written : hit.start])
            pieces.append(self._marker(hit.kind, window, hit))
            report.add(hit.kind, line, base + hit.start - begin, base + hit.end - begin)
            if lines:
                line += window.count(b"\n", hit.start, hit.end)
            written = hit.end
        cut = max(safe, written)
        if lines:
            line += window.count(b"\n", written, cut)
        pieces.append(view[written:cut])
        return cut, pieces, line

    def _hits_unescaped(self, window: bytes, scan_from: int, safe: int) -> Scanned:
        """The hits in ``window``, with JSON ``\\u00XX`` escapes of printable characters read as
        the characters they stand for; spans are in ``window`` and cover escapes whole. Where the
        window holds XML or HTML character references, quoted-printable text, or ``\\xHH`` and
        ``\\UHHHHHHHH`` escapes (YAML's, JSON5's), or XML markup that splits a token (a CDATA
        section's bounds, a comment), it is also scanned with those read, and the hits of every
        scan are put together."""
        if not self._body_readings:  # a transcript, a file: JSON's escapes, as its readers
            decoded = Decoded.of(window)
            scanned = self._hits_json(window, decoded, scan_from, safe)
            readings = [character_references(window), quoted_printable(window)]
        else:
            decoded, others, rest = Decoded.read(window)  # \x and \U found in the same pass
            scanned = self._hits_json(window, decoded, scan_from, safe)
            readings = [
                character_references(window),
                quoted_printable(window),
                hex_escapes(window, others, rest),
                markup_splits(window),
            ]
        for recoded in readings:
            if recoded is None:
                continue
            more = self._hits(recoded.text, recoded.at(scan_from), recoded.at(safe))
            hits = [
                Hit(recoded.origin(hit.start), recoded.origin(hit.end, end=True), hit.kind)
                for hit in more.hits
            ]
            scanned = Scanned(_together(scanned.hits, hits), scanned.reached)
        return scanned

    def _hits_json(
        self, window: bytes, decoded: Decoded | None, scan_from: int, safe: int
    ) -> Scanned:
        """The hits in ``window`` with its JSON ``\\u00XX`` escapes read (``decoded``, see
        above)."""
        if decoded is None:
            return self._hits(window, scan_from, safe)
        text_safe = decoded.at(safe, from_end=True)
        scanned = self._hits(decoded.text, decoded.at(scan_from), text_safe)
        hits = [
            Hit(decoded.origin(hit.start), decoded.origin(hit.end), hit.kind)
            for hit in scanned.hits
        ]
        return Scanned(hits, decoded.origin(scanned.reached))

    def _hits(self, window: bytes, scan_from: int, safe: int) -> Scanned:
        """The hits of the candidates starting from ``scan_from`` and before ``safe``."""
        table = self._all
        scan = table.scan(window, len(window))
        position = scan_from
        previous: Span | None = None  # the last candidate, when it gave no hit
        hits: list[Hit] = []
        while True:
            found = scan.find(position)
            if found is None or found.first >= safe:
                return Scanned(hits, position)
            # On from the end of the value, not of the match: the byte that ends a value (a
            # backslash, a quote, a space) may begin the next secret (``\\nAKIA…``). A match
            # passed over whole (index -1, hostile input) is scanned on from its end.
            if found.index >= 0 and found.end > found.first:
                position = found.end
            else:
                position = max(found.last, found.first + 1)
            mine = self._judged(window, found)
            if found.index >= 0 and self._led_by_token(found):
                # The text before a specific row's secret may hold a token of its own (a CSV
                # row's access key ID before the secret key): redacted beside the secret, or,
                # the value rejected, found as in a rejected assignment (the first token, and
                # the scan on from its end).
                if mine:
                    mine = self._specific_hits(window, found.first, found.start) + mine
                else:
                    mine = self._specific_hits(window, found.first, found.end)[:1]
                    if mine:
                        position = min(position, mine[0].end)
                hits += mine
            elif mine:
                if found.index >= 0:
                    # Tokens found inside a rejected assignment: what follows the first of them
                    # may begin another secret of any kind (``KEY=sk-ant-…=DB_PASSWORD='…'``,
                    # a database URL between two tokens); the scan goes on from there, and
                    # finds the tokens after it again as candidates of their own.
                    mine = mine[:1]
                    position = min(position, mine[0].end)
                hits += mine
            elif found.first < found.start < position and table.rules[found.index].bare:
                # A rejected token after an edge (``\u00e9sk-ant`` read as a short ``sk-`` key):
                # another token may start where its secret did.
                position = found.start
            current = Span(found.first, found.last)
            if previous is not None and not mine and not self._keyworded:
                position = past_repeats(window, previous, current, position)
            previous = None if mine else current
        return Scanned(hits, position)  # pragma: no cover - the loop returns

    def _led_by_token(self, found: Candidate) -> bool:
        """Whether the text before a candidate's secret may hold a token of its own: the match
        of a specific row whose secret comes after a text as long as the shortest token."""
        rule = self._all.rules[found.index]
        return (
            rule.specific and not rule.bare and found.start - found.first >= self._shortest_specific
        )

    def _judged(self, window: bytes, found: Candidate) -> list[Hit]:
        """The hits of one candidate: itself, or specific tokens inside a rejected one."""
        if found.index < 0:
            return self._specific_hits(window, found.first, found.last)
        rule = self._all.rules[found.index]
        if not self._has_keyword(rule, window, found.first, found.last):
            return []
        if rule.name_after:
            return self._named_after(window, found)
        value = window[found.start : found.end]
        if rule.specific:
            context = host = b""
        else:
            marker = window.rfind(b"[REDACTED:", max(0, found.first - 64), found.first)
            if marker >= 0 and starts_in_marker(
                window[marker : found.first], window[found.first : found.first + 64]
            ):
                # Our own marker, redacted already; or text that only looks like one
                # (an unclosed "[REDACTED:" typed before a key): a token of a specific kind
                # in it is still one.
                return self._specific_hits(window, found.start, found.end)
            if rule.kind in URL_KINDS:
                context = window[found.first : found.start]
                host = _host(window, found.last)
            else:
                context = window[_name_start(window, found.first) : found.start]
                host = b""
        kind = self._judge(found.index, rule, value, context, host)
        if kind is None and rule.shape and not rule.specific and self._generic is not None:
            # A vendor's name beside a value of another shape: still a key by the generic rule.
            kind = self._judge(-1, self._generic, value, context, host)
        if kind is not None:
            return [Hit(found.start, found.end, kind)]
        if not rule.specific and found.end - found.start >= self._shortest_specific:
            # A rejected assignment may still hold a token of a specific kind.
            return self._specific_hits(window, found.start, found.end)
        return []

    def _named_after(self, window: bytes, found: Candidate) -> list[Hit]:
        """The hits of a value whose name comes after it: the value is judged, and named, as
        the same value right after that name (``NAME=value``) would be, by whichever row that
        finds; a value no row takes there may still hold tokens."""
        tail = window[found.end : found.last]
        name = tail[len(tail.rstrip(_NAME_BYTES)) :]
        value = window[found.start : found.end]
        probe = name + b"=" + value
        first = len(name) + 1
        scan = self._all.scan(probe, len(probe))
        position = 0
        while (candidate := scan.find(position)) is not None:
            position = candidate.first + 1
            if candidate.index < 0 or (candidate.start, candidate.end) != (first, len(probe)):
                continue
            if self._all.rules[candidate.index].name_after:
                break  # no name before the value after all
            shift = found.start - first
            return [
                Hit(hit.start + shift, hit.end + shift, hit.kind)
                for hit in self._judged(probe, candidate)
                if hit.start >= first
            ]
        return self._specific_hits(window, found.start, found.end)

    def _judge(
        self, index: int, rule: Rule, value: bytes, context: bytes, host: bytes
    ) -> str | None:
        """The kind to redact a candidate as, or ``None``; remembered, for repeated input."""
        key = (index, value, context, host)
        verdict = self._verdicts.get(key)
        if verdict is None:
            accepted = accepts(rule, value, self._allow, context, host)
            verdict = _Verdict(self._name(rule, value) if accepted else None)
            self._verdicts.put(key, len(value) + len(context) + len(host), verdict)
        return verdict.kind

    def _specific_hits(self, window: bytes, start: int, end: int) -> list[Hit]:
        """The specific tokens in ``window[start:end]`` (inside a rejected assignment)."""
        if self._keyworded:  # a user's keyword is looked for outside the span
            return self._tokens_inside(window, start, end)
        # What RE2 sees of the text around the span: the byte on either side (``\b``).
        key = (window[max(0, start - 1) : end + 1], start > 0, end < len(window))
        found = self._inside.get(key)
        if found is None:
            hits = self._tokens_inside(window, start, end)
            found = tuple((hit.start - start, hit.end - start, hit.kind) for hit in hits)
            self._inside.put(key, end - start, found)
            return hits
        return [Hit(start + first, start + last, kind) for first, last, kind in found]

    def _tokens_inside(self, window: bytes, start: int, end: int) -> list[Hit]:
        hits: list[Hit] = []
        scan = self._specific.scan(window, end)
        while True:
            found = scan.find(start)
            if found is None:
                return hits
            start = found.last if found.last > found.first else found.first + 1
            if found.index < 0:
                continue
            rule = self._specific.rules[found.index]
            if not self._has_keyword(rule, window, found.first, found.last):
                continue
            if accepts(rule, window[found.start : found.end], self._allow):
                hits.append(Hit(found.start, found.end, rule.kind))

    def _marker(self, kind: str, window: bytes, hit: Hit) -> bytes:
        """The marker for a hit; one more line break for each the secret spanned, so the
        output keeps the input's line numbers (a PEM key in plain text)."""
        marker = self._markers.get(kind)
        if marker is None:
            marker = self._markers[kind] = MARKER.format(kind=kind).encode()
        breaks = window.count(b"\n", hit.start, hit.end)
        return marker + b"\n" * breaks if breaks else marker

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


def _together(hits: list[Hit], more: list[Hit]) -> list[Hit]:
    """The hits of two scans of one window, in order; hits that overlap are one, over both
    spans, named as the longer (a token that a soft line break cut: the first scan saw its
    first half as a generic key, the second the whole token)."""
    if not more:
        return hits
    merged: list[Hit] = []
    for hit in sorted(hits + more, key=lambda hit: (hit.start, -hit.end)):
        last = merged[-1] if merged else None
        if last is None or hit.start >= last.end:
            merged.append(hit)
            continue
        kind = hit.kind if hit.end - hit.start > last.end - last.start else last.kind
        merged[-1] = Hit(last.start, max(last.end, hit.end), kind)
    return merged


def _name_start(text: bytes, first: int) -> int:
    """Where the name of a generic match starting at ``first`` starts: the rule's pattern
    begins at its word (``token``), but the name judged is the whole one (``csrf_token``,
    ``X-CSRF-Token``), read back at most ``NAME_REACH`` bytes."""
    if first == 0 or text[first] not in _NAME_BYTES:
        return first  # a match that starts with no name (an XML tag, ``curl -u``)
    before = text[max(0, first - NAME_REACH) : first]
    return first - len(before) + len(before.rstrip(_NAME_BYTES))


def _host(text: bytes, at: int) -> bytes:
    """The host name starting at ``at`` (after a URL's ``@``)."""
    found = _HOST.match(text, at)
    return found.group() if found is not None else b""
