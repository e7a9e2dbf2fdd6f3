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
match whose value fits a specific rule is named after that rule.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO

import re2

from airlock.errors import SettingsError
from airlock.redact.rules import MARKER, RULES, Rule, accepts, starts_in_marker

if TYPE_CHECKING:
    from airlock.settings import Loaded

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


@dataclass(frozen=True, slots=True)
class Finding:
    """One redacted secret: its kind and 1-based line; never the secret itself.

    ``start`` and ``end`` are byte offsets of the replaced span in the input.
    """

    kind: str
    line: int
    start: int = 0
    end: int = 0


@dataclass(slots=True)
class RedactionReport:
    """What one redaction found, in input order."""

    findings: list[Finding] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0

    @property
    def found(self) -> bool:
        """Whether anything was redacted."""
        return bool(self.findings)

    def counts(self) -> dict[str, int]:
        """Number of secrets redacted, by kind, most frequent first."""
        return dict(Counter(finding.kind for finding in self.findings).most_common())

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


@dataclass(frozen=True, slots=True)
class _Hit:
    start: int
    end: int
    kind: str


def _options() -> re2.Options:
    options = re2.Options()
    options.encoding = re2.Options.Encoding.LATIN1
    options.max_mem = 64 << 20
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

    def find(self, text: bytes, start: int, end: int) -> tuple[int, int, int, int, int] | None:
        """The next match in ``text[start:end]``: its span, the rule's index, the secret's span."""
        while True:
            spans = self.scan.Match(_UNANCHORED, text, start, end)
            first, last = spans[0]
            if first < 0:
                return None
            if last - first > LONGEST:
                return self._find_long(text, first, last)
            for index in sorted(self.set.Match(text[first:last]) or ()):
                if self.rules[index].bare:
                    return first, last, index, _after_edge(text, first), last
                groups = self.each[index].Match(_BOTH, text, first, last)
                if groups[0][0] >= 0:
                    secret = groups[self.secret[index]]
                    return first, last, index, secret[0], secret[1]
            # Context made the span differ from every single rule (rare): step past its start.
            start = first + 1

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


def _after_edge(text: bytes, first: int) -> int:
    """Where a bare secret starts: after the escaped line break or tab its match may begin with."""
    at = first
    while text[at] == 0x5C:  # a backslash
        at += 1
    return at + 1 if at > first else first


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
            f"a redaction pattern is not a valid RE2 pattern ({error}): {pattern[:200]!r}"
        ) from error


def _compile_rule(rule: Rule) -> None:
    try:
        re2.compile(rule.pattern.encode("latin-1"), _options())
        re2.compile(_plain(rule.pattern).encode("latin-1"), _options())
    except (re2.error, UnicodeEncodeError) as error:
        raise SettingsError(
            f"airlock.redaction.rules: the pattern of kind {rule.kind!r} is not a valid RE2 "
            f"pattern ({error}): {rule.pattern!r}"
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
        self._keyworded = frozenset(rule for rule in extra if rule.keyword)
        self._markers: dict[str, bytes] = {}
        self._allow = frozenset(value.encode() for value in allow)
        self._all = _Table(self.rules)
        self._specific = _Table(tuple(rule for rule in self.rules if rule.specific))

    @classmethod
    def from_loaded(cls, loaded: Loaded) -> Redactor:
        """A redactor with the rules and allow-list of ``airlock.redaction`` in settings."""
        return cls.from_settings(loaded.airlock("redaction"))

    @classmethod
    def from_settings(cls, value: Mapping[str, Any] | None) -> Redactor:
        """A redactor from the (validated) value of ``airlock.redaction``, or the defaults."""
        if not value:
            return cls()
        rules = [
            Rule(
                kind=str(item["kind"]),
                pattern=str(item["pattern"]),
                keyword=str(item.get("keyword", "")).lower(),
                specific=True,
            )
            for item in value.get("rules", [])
        ]
        return cls(extra_rules=rules, allow=[str(v) for v in value.get("allow", [])])

    def redact_stream(self, src: BinaryIO, dst: BinaryIO) -> RedactionReport:
        """Copy ``src`` to ``dst`` with every secret replaced; memory stays bounded.

        Args:
            src: A binary stream to read (a file, stdin's buffer, a BytesIO).
            dst: A binary stream to write the redacted bytes to.

        Returns:
            The report: each secret's kind, line and byte offsets.
        """
        report = RedactionReport()
        context = b""
        pending = b""
        base = 0  # input offset of pending[0]
        line = 1  # line number at pending[0]
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
            cut, pieces, line = self._redact_window(window, begin, safe, base, line, report)
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
    ) -> tuple[int, list[bytes], int]:
        pieces: list[bytes] = []
        written = begin
        for hit in self._hits(window, begin - min(begin, CONTEXT), safe):
            if hit.start < written:
                continue
            line += window.count(b"\n", written, hit.start)
            pieces.append(window[written : hit.start])
            pieces.append(self._marker(hit.kind))
            report.findings.append(
                Finding(hit.kind, line, base + hit.start - begin, base + hit.end - begin)
            )
            line += window.count(b"\n", hit.start, hit.end)
            written = hit.end
        cut = max(safe, written)
        line += window.count(b"\n", written, cut)
        pieces.append(window[written:cut])
        return cut, pieces, line

    def _hits(self, window: bytes, scan_from: int, safe: int) -> Iterator[_Hit]:
        table = self._all
        position = scan_from
        limit = len(window)
        while True:
            found = table.find(window, position, limit)
            if found is None or found[0] >= safe:
                return
            first, last, index, start, end = found
            position = last if last > first else first + 1
            if index < 0:
                yield from self._specific_hits(window, first, last)
                continue
            rule = table.rules[index]
            if not self._has_keyword(rule, window, first, last):
                continue
            value = window[start:end]
            if not rule.specific:
                before = window[max(0, first - 64) : first]
                if b"[REDACTED:" in before and starts_in_marker(before):
                    continue
            context = b"" if rule.specific else window[first:start]
            if accepts(rule, value, self._allow, context):
                yield _Hit(start, end, self._name(rule, value))
            elif not rule.specific:
                # A rejected assignment may still hold a token of a specific kind.
                yield from self._specific_hits(window, start, end)

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
                yield _Hit(secret_start, secret_end, rule.kind)

    def _marker(self, kind: str) -> bytes:
        marker = self._markers.get(kind)
        if marker is None:
            marker = self._markers[kind] = MARKER.format(kind=kind).encode()
        return marker

    def _has_keyword(self, rule: Rule, window: bytes, first: int, last: int) -> bool:
        # A user's rule only matches where its keyword is (case-insensitive), in the match or
        # just before it; the built-in keywords document the literal each pattern starts from.
        if not self._keyworded or rule not in self._keyworded:
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
