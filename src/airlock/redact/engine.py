"""The streaming redaction engine: reads chunks, finds secrets with one RE2 program, writes.

Theory of operation
-------------------
All rules are compiled into one RE2 alternation, ``(?P<r0>…)|(?P<r1>…)|…``; RE2 scans in time
linear in the input whatever the patterns. The input is read in chunks of ``CHUNK`` bytes into a
window. Only matches that *begin* before ``len(window) - OVERLAP`` are taken; the rest of the
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
from airlock.redact.rules import MARKER, RULES, Rule, accepts

if TYPE_CHECKING:
    from airlock.settings import Loaded

CHUNK = 1 << 20
"""Bytes read at a time."""
OVERLAP = 1 << 16
"""The longest secret guaranteed to be found across a chunk boundary."""
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


def _compile(rules: tuple[Rule, ...]) -> tuple[Any, list[tuple[int, int, int]]]:
    parts = []
    for index, rule in enumerate(rules):
        pattern = rule.pattern.replace("(?P<secret>", f"(?P<s{index}>")
        parts.append(f"(?P<r{index}>{pattern})")
    try:
        program = re2.compile("|".join(parts).encode("latin-1"), _options())
    except re2.error as error:
        raise SettingsError(f"a redaction pattern does not compile with RE2: {error}") from error
    groups = {
        (name.decode() if isinstance(name, bytes) else name): number
        for name, number in program.groupindex.items()
    }
    slots = [
        (index, groups[f"r{index}"], groups.get(f"s{index}", groups[f"r{index}"]))
        for index in range(len(rules))
    ]
    return program, slots


def _compile_rule(rule: Rule) -> None:
    try:
        re2.compile(rule.pattern.encode("latin-1"), _options())
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
        self._allow = frozenset(value.encode() for value in allow)
        self._program, self._slots = _compile(self.rules)
        specific = tuple(rule for rule in self.rules if rule.specific)
        self._specific_rules = specific
        self._specific, self._specific_slots = _compile(specific)

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
            pieces.append(MARKER.format(kind=hit.kind).encode())
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
        position = scan_from
        while True:
            match = self._program.search(window, position)
            if match is None or match.start() >= safe:
                return
            position = max(match.end(), match.start() + 1)
            index, outer, inner = self._which(match, self._slots)
            start, end = match.span(inner)
            rule = self.rules[index]
            value = window[start:end]
            context = b"" if rule.specific else window[match.start(outer) : start]
            if accepts(rule, value, self._allow, context):
                yield _Hit(start, end, self._name(rule, value))
            elif not rule.specific:
                # A rejected assignment may still hold a token of a specific kind.
                yield from self._specific_hits(window, start, end)

    def _specific_hits(self, window: bytes, start: int, end: int) -> Iterator[_Hit]:
        for match in self._specific.finditer(window, start, end):
            index, _outer, inner = self._which(match, self._specific_slots)
            rule = self._specific_rules[index]
            span = match.span(inner)
            if accepts(rule, window[span[0] : span[1]], self._allow):
                yield _Hit(span[0], span[1], rule.kind)

    @staticmethod
    def _which(match: Any, slots: list[tuple[int, int, int]]) -> tuple[int, int, int]:
        for slot in slots:
            if match.start(slot[1]) >= 0:
                return slot
        raise AssertionError("a match of no rule")  # pragma: no cover

    def _name(self, rule: Rule, value: bytes) -> str:
        if rule.specific:
            return rule.kind
        match = self._specific.search(value)
        if match is not None and match.start() == 0 and match.end() >= len(value) - 1:
            for index, outer, _inner in self._specific_slots:
                if match.start(outer) >= 0:
                    return self._specific_rules[index].kind
        return rule.kind

    def redact_text(self, text: str) -> tuple[str, RedactionReport]:
        """The text with every secret replaced, and the report."""
        dst = io.BytesIO()
        report = self.redact_stream(io.BytesIO(text.encode("utf-8", "surrogateescape")), dst)
        return dst.getvalue().decode("utf-8", "surrogateescape"), report
