"""Rules compiled for scanning: one RE2 program over the input, and the rule of each match.

Theory of operation
-------------------
RE2 runs one alternation as a DFA over the input, in time linear in its length. Two hundred
rules written out one by one make a program too large for the DFA's memory (RE2 then falls back
to a much slower engine), so rows of the same form share one alternative: every token glued
to nothing (``(?:ghp_…|glpat-…|…)``), every token after an ``EDGE`` (``EDGE(?:AKIA…|AIza…)``)
and every named format (``NAMED_START (?i:datadog|heroku|…) NAMED_ASSIGN value``). Each match
is then given to the rows of its alternative, in table order: the first whose own pattern
matches exactly that span is the rule, and its ``secret`` group is the part to replace. Matches
are few, so that per-match work costs little; a span seen before (hostile input repeats one) is
answered from memory.

RE2 builds its automaton lazily, a state at a time as new text reaches it, and in one program of
every alternative each state holds a position in all of them at once: on new text the first pass
cost several times the scan itself (0.5 s per 5 MB). A table made with ``split`` (a command that
reads its input once) scans the alternatives as a few programs (``programs``: the glued tokens,
the edged tokens, the rows up to the named formats, the rest), which RE2 builds in under half the
time; a long-lived one (the proxy) keeps the one program, a single pass once its states are
built. Each program is searched ahead and its next match kept (``Scan``); the candidate is the
leftmost of them, the earlier program winning a tie, which is the match the one program of every
alternative (``scanner``) finds. A kept match that a candidate of another program overlaps is
searched again from where the scan goes on; where such a match was long, or overlapped again
(hostile runs), the scan takes ``scanner`` itself up to its end, so that no stretch is searched
again and again. Each row's own program is compiled when a candidate first reaches the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import re2

from airlock.errors import SettingsError
from airlock.redact.memo import Memo
from airlock.redact.patterns import EDGE, NAMED_ASSIGN, NAMED_START, VALUE_END, Rule

LONGEST = 1 << 16
"""Matches longer than this are judged on their first ``LONGEST`` bytes (hostile input)."""
SHORT_MATCH = 4096
"""A program's match that the scan goes into (another program's candidate overlaps it) is searched
again when it is at most this long (a key file); past it, the scan takes the one program of every
alternative up to the match's end."""
_NAMED_VALUE = r"(?:[A-Za-z0-9+_\-.~=:$|%]|\\*/)"
"""Every character a named format's value may hold (each row's own pattern is narrower)."""


@dataclass(frozen=True, slots=True)
class Candidate:
    """A match of the scan: its span, the index of its rule (-1: passed over whole, hostile
    input), and the span of the secret in it."""

    first: int
    last: int
    index: int
    start: int
    end: int


def options() -> re2.Options:
    """RE2 options for every program here: bytes, a fixed memory budget, no logging."""
    result = re2.Options()
    result.encoding = re2.Options.Encoding.LATIN1
    result.max_mem = 64 << 20
    result.log_errors = False
    return result


def compile_pattern(pattern: str) -> Any:
    """``pattern`` compiled for bytes; an invalid one is a ``SettingsError`` in our words."""
    try:
        return re2.compile(pattern.encode("latin-1"), options())
    except (re2.error, UnicodeEncodeError) as error:
        raise SettingsError(
            f"a redaction pattern is not a valid RE2 pattern ({problem(error)}): {pattern[:200]!r}"
        ) from error


def problem(error: Exception) -> str:
    """What is wrong with a pattern, in plain words (RE2's message, without its bytes repr)."""
    if isinstance(error, UnicodeEncodeError):
        return "only Latin-1 characters can be matched; write others as their UTF-8 bytes"
    detail = error.args[0] if error.args else error
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    return str(detail)


@lru_cache(maxsize=64)
def program(pattern: str) -> Any:
    """``compile_pattern``, one program for each pattern: a table of the specific rows scans
    with the same warm programs as the table of every row."""
    return compile_pattern(pattern)


def plain(pattern: str) -> str:
    """The pattern with its ``secret`` group made non-capturing."""
    return pattern.replace("(?P<secret>", "(?:")


def _form(rule: Rule) -> str:
    """Which shared alternative a row goes in ("" for one of its own)."""
    if rule.bare and rule.pattern.startswith("(?P<secret>") and not rule.pattern.endswith("\\b"):
        return "glued"
    if rule.bare and rule.pattern.startswith(EDGE + "(?P<secret>"):
        return "edged"
    if rule.shape and not rule.specific:
        return "named"
    return ""


def _names(rule: Rule) -> str:
    """The names part of a named row's pattern: ``(?i:…)`` between ``NAMED_START`` and
    ``NAMED_ASSIGN``."""
    return rule.pattern.split(NAMED_ASSIGN, 1)[0].removeprefix(NAMED_START)


def _secret_group(program: Any) -> int:
    """The number of a program's ``secret`` group (0, the whole match, without one)."""
    for name, number in program.groupindex.items():
        if name in ("secret", b"secret"):
            return int(number)
    return 0


class Table:
    """Rules compiled for scanning (see the module's theory of operation).

    Args:
        rules: The rows, in table order.
        split: Scan as a few smaller programs (faster to build on new text) instead of one
            (one pass once built).
    """

    def __init__(self, rules: tuple[Rule, ...], *, split: bool = False) -> None:
        self.rules = rules
        groups: dict[str, list[int]] = {}
        alternatives: list[tuple[str, list[int]]] = []
        for index, rule in enumerate(rules):
            form = _form(rule)
            if form and form in groups:
                groups[form].append(index)
                continue
            members = [index]
            if form:
                groups[form] = members
            alternatives.append((form, members))
        self._members = [members for _, members in alternatives]
        self._named = [form == "named" for form, _ in alternatives]
        self._vendors: list[Any] = [None] * len(alternatives)
        shared = [self._shared(form, members) for form, members in alternatives]
        # No capturing groups in the scan: RE2 then finds a match with its DFAs alone (groups
        # would need its slower engines over the whole match, which hostile input makes long).
        self._groups = [compile_pattern(pattern) for pattern in shared]
        # One program for each run of alternatives ending with a shared one, one for the rest.
        runs: list[list[str]] = [[]]
        self._first_group = [0]
        """Per program: its first alternative (the one program of every alternative: 0)."""
        for group, ((form, _), pattern) in enumerate(zip(alternatives, shared, strict=True)):
            runs[-1].append(pattern)
            if form and split and group + 1 < len(alternatives):
                runs.append([])
                self._first_group.append(group + 1)
        self._union = "|".join(f"(?:{pattern})" for pattern in shared)
        self.programs = tuple(
            program("|".join(f"(?:{pattern})" for pattern in run)) for run in runs if run
        )
        """The programs scanned over the input, in table order."""
        # Each row's own program, compiled when a candidate first reaches the row (a run meets
        # a few dozen of the rows; compiling all of them cost more than a start-up).
        self._whole: list[tuple[Any, int] | None] = [None] * len(rules)
        self._keywords = [rule.keyword.encode("latin-1") if rule.bare else b"" for rule in rules]
        self.known: Memo[tuple[bytes, bool, bool], tuple[int, int, int] | None] = Memo()
        """The rule and secret of each candidate span seen, by its text and the byte on either
        side (a key file pasted twice is matched once)."""

    def _shared(self, form: str, members: list[int]) -> str:
        rules = [self.rules[index] for index in members]
        if form == "glued":
            return "|".join(plain(rule.pattern) for rule in rules)
        if form == "edged":
            bodies = [plain(rule.pattern)[len(EDGE) :] for rule in rules]
            return f"{EDGE}(?:{'|'.join(bodies)})"
        if form == "named":
            names = "|".join(_names(rule) for rule in rules)
            return f"{NAMED_START}(?:{names}){NAMED_ASSIGN}{_NAMED_VALUE}+{VALUE_END}"
        return plain(rules[0].pattern)

    @property
    def scanner(self) -> Any:
        """Every alternative in one program: what the scan's candidates are (compiled when first
        needed: hostile input, a bare scan to compare with)."""
        return program(self._union)

    def scan(self, text: bytes, end: int) -> Scan:
        """A scan of ``text`` up to ``end``: its candidates, in order (``Scan.find``)."""
        return Scan(self, text, end)

    def find(self, text: bytes, start: int, end: int) -> Candidate | None:
        """The next candidate in ``text[start:end]`` whose span one rule matches exactly."""
        return Scan(self, text, end).find(start)

    def candidate(self, text: bytes, first: int, last: int, program: int = 0) -> Candidate | None:
        """The candidate of the match ``text[first:last]``, or ``None`` when no single rule
        matches exactly that span (the context it needs lies outside).

        ``program`` is the one of ``programs`` that found the match, when it is known: no
        alternative of an earlier program matches there (that program would have found it: it
        wins a tie), so the alternatives are tried from the first of this one."""
        if last - first > LONGEST:
            return self._long(text, first, last)
        key = (text[first - 1 if first else 0 : last + 1], first > 0, last < len(text))
        answer = self.known.get(key, self)
        if answer is self:
            answer = self._which(text, first, last, self._first_group[program])
            self.known.put(key, last - first, answer)
        if answer is None:
            return None
        index, secret_start, secret_end = answer  # type: ignore[misc]
        return Candidate(first, last, index, first + secret_start, first + secret_end)

    def _which(self, text: bytes, first: int, last: int, start: int) -> tuple[int, int, int] | None:
        """The first rule matching exactly ``text[first:last]`` (within the first alternative
        from ``start`` on that does), and its secret's span from ``first``."""
        lowered = text[first:last].lower()
        for group in range(start, len(self._groups)):
            if self._groups[group].fullmatch(text, first, last) is None:
                continue
            answer = self._member(group, text, first, last, lowered)
            if answer is not None:
                return answer
        return None

    def _member(
        self, group: int, text: bytes, first: int, last: int, lowered: bytes
    ) -> tuple[int, int, int] | None:
        members = self._members[group]
        if self._named[group]:  # only the rows whose vendor's word the span holds
            present = self._vendor_words(group).Match(text[first:last])
            members = [members[number] for number in sorted(present)]
        for index in members:
            keyword = self._keywords[index]
            if keyword and keyword not in lowered:
                continue
            compiled, secret = self._row(index)
            match = compiled.fullmatch(text, first, last)
            if match is not None:
                span = match.span(secret)
                return index, span[0] - first, span[1] - first
        return None

    def _vendor_words(self, group: int) -> Any:
        """The vendors' words of a named alternative's rows as one RE2 set: which rows' words a
        span holds, in one pass (compiled when a candidate first reaches the alternative)."""
        words = self._vendors[group]
        if words is None:
            words = re2.Set.SearchSet(options())
            for index in self._members[group]:
                words.Add(_names(self.rules[index]).encode("latin-1"))
            words.Compile()
            self._vendors[group] = words
        return words

    def _row(self, index: int) -> tuple[Any, int]:
        """Row ``index``'s own program and the number of its ``secret`` group."""
        row = self._whole[index]
        if row is None:
            compiled = compile_pattern(self.rules[index].pattern)
            row = self._whole[index] = (compiled, _secret_group(compiled))
        return row

    def _long(self, text: bytes, first: int, last: int) -> Candidate:
        """A match longer than any secret (a hostile run): only a rule that accepts values this
        long (a key file) gets its span, from the first ``LONGEST`` bytes; any other match is
        passed over whole (tokens inside are still looked for), so the work stays linear."""
        head = first + LONGEST
        for index, rule in enumerate(self.rules):
            if rule.max_length < LONGEST:
                continue
            compiled, secret = self._row(index)
            match = compiled.match(text, first, head)
            if match is not None:
                span = match.span(secret)
                return Candidate(first, match.end(), index, span[0], span[1])
        return Candidate(first, last, -1, first, first)

    def kind_of(self, value: bytes) -> Rule | None:
        """The rule whose pattern matches the whole value, if any."""
        found = self.find(value, 0, len(value))
        if found is None or found.index < 0 or (found.first, found.last) != (0, len(value)):
            return None
        return self.rules[found.index]


class Scan:
    """The candidates of one text up to an end, found in order (see the module's theory).

    Each program's next match is kept with where its search started; it still holds for a search
    from any position between that start and the match's own start. A kept match that the scan
    has gone into (a candidate of another program overlapped it) is searched again once; if it
    was long, or the scan goes into the next one before passing the end of the first, the one
    program of every alternative takes the scan up to that end: so no stretch is searched again
    and again, and the work stays linear in the text.
    """

    __slots__ = ("_ahead", "_end", "_entered", "_table", "_text", "_union_until")

    def __init__(self, table: Table, text: bytes, end: int) -> None:
        self._table = table
        self._text = text
        self._end = end
        count = len(table.programs)
        self._ahead: list[tuple[int, int, int]] = [(end + 1, -1, -1)] * count
        """Per program: where its search started, and its match's span (-1: none)."""
        self._entered = [-1] * count
        """Per program: the end of its last match the scan went into."""
        self._union_until = -1 if count > 1 else end + 1  # one program: the union itself

    def find(self, start: int) -> Candidate | None:
        """The next candidate at or after ``start`` whose span one rule matches exactly."""
        while True:
            span = self._leftmost(start)
            if span is None:
                return None
            found = self._table.candidate(self._text, *span)
            if found is not None:
                return found
            start = span[0] + 1  # no single rule matches the span (context): step past its start

    def _leftmost(self, start: int) -> tuple[int, int, int] | None:
        """The span of the match at or after ``start`` that ``Table.scanner`` finds, and the
        program that found it (0 for ``Table.scanner`` itself)."""
        text, end = self._text, self._end
        if start < self._union_until:
            found = self._table.scanner.search(text, start, end)
            return None if found is None else (*found.span(), 0)
        best: tuple[int, int, int] | None = None
        for index, compiled in enumerate(self._table.programs):
            searched, first, last = self._ahead[index]
            if searched > start or 0 <= first < start:
                if searched <= first < start < last:  # the scan went into this match
                    if last - first > SHORT_MATCH or start < self._entered[index]:
                        self._union_until = max(last, self._entered[index])
                        return self._leftmost(start)
                    self._entered[index] = last
                found = compiled.search(text, start, end)
                first, last = (-1, -1) if found is None else found.span()
                self._ahead[index] = (start, first, last)
            if first >= 0 and (best is None or first < best[0]):
                best = (first, last, index)
        return best
