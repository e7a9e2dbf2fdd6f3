"""The user's redaction rules (``airlock.redaction.rules``), checked before they are used."""

from __future__ import annotations

import re2

from airlock.errors import SettingsError
from airlock.redact.patterns import Rule
from airlock.redact.table import options, plain, problem

_KIND_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")


def check_rule(rule: Rule) -> None:
    """Raise ``SettingsError`` unless ``rule`` has a usable kind and a valid RE2 pattern."""
    if not rule.kind or not set(rule.kind) <= _KIND_CHARACTERS:
        raise SettingsError(
            f"airlock.redaction.rules: kind {rule.kind!r} may hold only lower-case letters, "
            "digits and _ (it is written into [REDACTED:<kind>] markers)"
        )
    try:
        re2.compile(rule.pattern.encode("latin-1"), options())
        re2.compile(plain(rule.pattern).encode("latin-1"), options())
    except (re2.error, UnicodeEncodeError) as error:
        raise SettingsError(
            f"airlock.redaction.rules: the pattern of kind {rule.kind!r} is not a valid RE2 "
            f"pattern: {problem(error)} (pattern {rule.pattern!r})"
        ) from error
