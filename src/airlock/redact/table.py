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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import re2

from airlock.errors import SettingsError
from airlock.redact.patterns import EDGE, NAMED_ASSIGN, NAMED_START, VALUE_END, Rule

LONGEST = 1 << 16
"""Matches longer than this are judged on their first ``LONGEST`` bytes (hostile input)."""
KNOWN = 4096
"""Candidate spans whose rule is remembered."""
KNOWN_SPAN = 512
"""The longest candidate span remembered."""
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
    """

    def __init__(self, rules: tuple[Rule, ...]) -> None:
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
        shared = [self._shared(form, members) for form, members in alternatives]
        # No capturing groups in the scan: RE2 then finds a match with its DFAs alone (groups
        # would need its slower engines over the whole match, which hostile input makes long).
        self._groups = [compile_pattern(pattern) for pattern in shared]
        self.scanner = compile_pattern("|".join(f"(?:{pattern})" for pattern in shared))
        """The one program scanned over the input ."""
        self._whole = [compile_pattern(rule.pattern) for rule in rules]
        self._secret = [_secret_group(program) for program in self._whole]
        self._keywords = [rule.keyword.encode("latin-1") if rule.bare else b"" for rule in rules]
        self.known: dict[tuple[bytes, bool, bool], tuple[int, int, int] | None] = {}

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

    def find(self, text: bytes, start: int, end: int) -> Candidate | None:
        """The next candidate in ``text[start:end]`` whose span one rule matches exactly."""
        while True:
            found = self.scanner.search(text, start, end)
            if found is None:
                return None
            first, last = found.span()
            if last - first > LONGEST:
                return self._long(text, first, last)
            key = (text[first - 1 if first else 0 : last + 1], first > 0, last < len(text))
            answer = self.known.get(key, self)
            if answer is self:
                answer = self._which(text, first, last)
                if last - first <= KNOWN_SPAN:
                    if len(self.known) >= KNOWN:
                        self.known.clear()
                    self.known[key] = answer
            if answer is not None:
                index, secret_start, secret_end = answer  # type: ignore[misc]
                return Candidate(first, last, index, first + secret_start, first + secret_end)
            start = first + 1  # no single rule matches the span (context): step past its start

    def _which(self, text: bytes, first: int, last: int) -> tuple[int, int, int] | None:
        """The first rule matching exactly ``text[first:last]`` (within the first alternative
        that does), and its secret's span from ``first``."""
        lowered = text[first:last].lower()
        for group, program in enumerate(self._groups):
            if program.fullmatch(text, first, last) is None:
                continue
            answer = self._member(group, text, first, last, lowered)
            if answer is not None:
                return answer
        return None

    def _member(
        self, group: int, text: bytes, first: int, last: int, lowered: bytes
    ) -> tuple[int, int, int] | None:
        for index in self._members[group]:
            keyword = self._keywords[index]
            if keyword and keyword not in lowered:
                continue
            match = self._whole[index].fullmatch(text, first, last)
            if match is not None:
                span = match.span(self._secret[index])
                return index, span[0] - first, span[1] - first
        return None

    def _long(self, text: bytes, first: int, last: int) -> Candidate:
        """A match longer than any secret (a hostile run): only a rule that accepts values this
        long (a key file) gets its span, from the first ``LONGEST`` bytes; any other match is
        passed over whole (tokens inside are still looked for), so the work stays linear."""
        head = first + LONGEST
        for index, rule in enumerate(self.rules):
            if rule.max_length < LONGEST:
                continue
            match = self._whole[index].match(text, first, head)
            if match is not None:
                span = match.span(self._secret[index])
                return Candidate(first, match.end(), index, span[0], span[1])
        return Candidate(first, last, -1, first, first)

    def kind_of(self, value: bytes) -> Rule | None:
        """The rule whose pattern matches the whole value, if any."""
        found = self.find(value, 0, len(value))
        if found is None or found.index < 0 or (found.first, found.last) != (0, len(value)):
            return None
        return self.rules[found.index]
