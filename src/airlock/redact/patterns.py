"""Building blocks of the rule table: the ``Rule`` row, RE2 pieces, and the row helpers.

PURE: no I/O.

Theory of operation
-------------------
Transcripts are JSON lines, so a secret is usually written inside a JSON string, and sometimes
inside a JSON string inside a JSON string. The patterns therefore match the *escaped* form
directly: a ``/`` may be written ``\\/`` (once or twice escaped), a PEM line break may be ``\\n``
or ``\\\\n``, a quote may be ``\\"``. Every escape is matched whole, so a replaced span never
cuts an escape sequence in half and the line stays valid JSON.

A rule's pattern may name the part to replace ``(?P<secret>…)``; without it, the whole match is
replaced. Two helpers write most rows:

- ``token``: a format with a vendor prefix (``glpat-``, ``xoxb-``, ``dop_v1_``), found bare, in
  any context. Its body is ``+`` (which keeps RE2's automaton small); lengths are checks.
- ``named``: a format without a prefix (32 hex digits, a UUID), found only beside a name that
  holds the vendor's word (``DATADOG_API_KEY=``, ``<datadogApiKey>``, ``"datadog": {"key": …``
  is not enough) and only with the vendor's shape, so a hash or an id is not taken for a key.

Each row carries a true example (``sample``, a template: ``{h32}`` is 32 random lower-case hex
digits, see ``ALPHABETS``) and a false one (``counter``, literal text), both of our own making.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MARKER = "[REDACTED:{kind}]"
"""What a secret is replaced with."""

# ``ESC_SLASH`` is ``/`` written plainly or JSON-escaped (``\/``) once or twice; ``NL`` is a line
# break, real or escaped once or twice.
ESC_SLASH = r"(?:\\*/)"
NL = r"(?:\\+r)?(?:\\+n|\r?\n)"
# White space between the lines of a key file, raw or escaped once or twice: a line break
# (``NL``), a space, a tab, a form feed, a vertical tab or a bare carriage return, JSON's ``\t``,
# ``\r``, ``\f`` and ``\u0009``…``\u000d`` (the escape cursor reads only printable escapes).
# A JSON reader turns each back into its character and a base64 reader skips white space, so
# the key reads back whole whichever of them parts its lines.
KEY_SPACE = r"(?:[\t\n\x0b\x0c\r ]|\\+[nrtf]|\\+u000[9a-dA-D])"
QUOTE = r"(?:\\*[\"'`](?:\\*\")?|&(?:quot|apos|#0{0,3}3[49]|#[xX]0{0,3}2[27]);)"
B64 = rf"(?:[A-Za-z0-9+=]|{ESC_SLASH})"
# A terminal control sequence, raw or escaped (JSON ``\u001b``, shell ``\033``, ``\x1b``, ``\e``):
# CSI (colours, cursor moves: ESC [ parameters final-byte) and OSC (titles, hyperlinks:
# ESC ] text, ended by BEL or ESC \). It hides nothing: a token after it starts there.
ESC = r"(?:\x1b|\\+u001[bB]|\\+x1[bB]|\\+033|\\+e)"
_BEL = r"(?:\x07|\\+u0007|\\+x07|\\+a)"
ANSI = rf"(?:{ESC}\[[0-9;:?]*[ -/]*[@-~]|{ESC}\](?:[^\x07\x1b\\]|\\+/)*(?:{_BEL}|{ESC}\\+))"
# A left edge, decided as on the decoded text: the token is not glued to a longer ASCII word.
# What stands before it may be an escape (``\n``, ``\t``, ``\u00e9``, a surrogate pair's
# second half) or a terminal control sequence, each taken whole, or any byte that is not an
# ASCII letter, digit or ``_``.
EDGE_PREFIX = rf"(?:{ANSI}|\\+u[0-9a-fA-F]{{4}}|\\+[nrtbf])"
EDGE = rf"(?:{EDGE_PREFIX}|\b)"
# Colour sequences that may stand around an assignment's operator (``grep --color`` output).
SGR = rf"(?:{ANSI})*"
# One character of a free-form value (a password): printable ASCII except quotes, backslash,
# whitespace and the characters that end a value in code or URLs; escapes are taken whole. A
# ``<`` is taken with the character after it, never a ``/``: ``</`` closes an XML element. A
# comma is part of a value (``a,b`` as a password).
VALUE_CHAR = (
    r"(?:[A-Za-z0-9!#$%&*+\-./:;=?@^_|~\[\]{}>,]|<[A-Za-z0-9!#$%&*+\-.:;=?@^_|~\[\]{}>,]"
    r"|\\+/|\\+u00[0-9a-fA-F]{2})"
)
URL_USER = r"[A-Za-z0-9._%~+\-]+"
URL_PASS_CHAR = r"(?:[A-Za-z0-9!$&*+\-.;=_~%,()]|\\+u00[0-9a-fA-F]{2})"
# Between a name and its value: the rest of the name, a closing quote, an operator, an opening
# quote. ``NAME=value``, ``"name": "value"``, ``name: value``, ``'NAME': 'value'``,
# ``name = "value"``, ``name := value``, ``name => value``, ``?name=value``, Make's and PHP's
# ``::=``, ``:::=``, ``?=``, ``+=``, ``.=``, and a YAML block ``name: |`` with the value on the
# next line. After a vendor's word (``NAMED_ASSIGN``) also ``<name>value`` (an XML element), a
# CSV cell ``name,value``, a declared type between name and operator (``var datadogKey string =
# "…"``), and any value on the next line. ``ELEMENT_END`` ends the opening tag of an XML element
# whose name holds a word (``<[prefix]word`` before it, the tag at the start of a line or after
# a space, an escaped line break or another tag; not after any edge, whose colour sequences
# would make the scan's automaton slower to build): ``<dbPassword>`` and the value, on the same
# line or the next.
_OPERATOR = r"(?::{1,3}=|[?+.]?=|=>|[:=])"
_BLOCK = rf"(?:[|>][-+]?[ \t]*{NL}[ \t]*)"
# A name and its value in two fields of one record, the name's field first: ECS's and
# Kubernetes' environment lists (``{"name": "DB_PASSWORD", "value": "…"}``, ``- name:
# DB_PASSWORD`` and ``value: …`` on the next line), tags (``"Key": …, "Value": …``), an XML
# element's ``key="…" value="…"``. The field after the name must be called ``value``.
PAIR = rf"{QUOTE}?[ \t]*,?[ \t]*(?:{NL}[ \t]*)?{QUOTE}?(?i:value){QUOTE}?[ \t]*[:=][ \t]*{QUOTE}?"
# A field of a ``multipart/form-data`` body (``curl -F password=…``): the name in its part's
# ``Content-Disposition`` (``name="password"``), closed by its quote or followed by more
# parameters (``; filename="…"``), the part's other headers (``Content-Type``) on lines of
# their own, a blank line, and the value: the part's body. Line breaks raw or escaped (a
# request written into a transcript); a name neither quoted nor followed by parameters only
# before raw CRLFs, as a multipart body writes them. Parameters and headers end at a line
# break or at a backslash that does not escape a quote, so a name never reaches a value
# further down a JSON string.
_PART_TEXT = r"(?:[^\\\r\n]|\\+\")*"
_PART_HEADER = rf"[A-Za-z][A-Za-z0-9\-]*[ \t]*:{_PART_TEXT}"
FORM_PART = (
    rf"(?:(?:{QUOTE}(?:[ \t]*;{_PART_TEXT})?|[ \t]*;{_PART_TEXT})(?:{NL}{_PART_HEADER})*{NL}{NL}"
    rf"|(?:\r\n{_PART_HEADER})*\r\n\r\n)"
)
ASSIGN = (
    rf"[A-Za-z0-9_.\-]*{SGR}(?:{PAIR}|{FORM_PART}"
    rf"|{QUOTE}?\]?[ \t]*{_OPERATOR}[ \t]*{_BLOCK}?{SGR}{QUOTE}?{SGR})"
)
ELEMENT_START = r"(?:^|[\s>]|\\+[nrt])<[A-Za-z0-9_.:\-]*"
ELEMENT_END = rf"[A-Za-z0-9_.\-]*>(?:{NL}[ \t]*)?"
NAMED_START = rf"(?:{ELEMENT_START})?"
"""What may stand before a vendor's word: the start of an XML tag (``<config_datadogKey>``), so
that the named row, not a generic one, takes an element whose name holds the word."""
NAMED_ASSIGN = (
    rf"[A-Za-z0-9_.\-]*{SGR}(?:{PAIR}|{FORM_PART}|{QUOTE}?\]?(?:[ \t]+[A-Za-z_][A-Za-z0-9_]*)?"
    rf"[ \t]*(?:{_OPERATOR}|[>,])[ \t]*(?:[|>][-+]?[ \t]*)?(?:{NL}[ \t]*)?{SGR}{QUOTE}?{SGR})"
)
# What may follow a value: a quote, a space, a separator, an escape, a tag, the end.
VALUE_END = r"(?:\\|[\"'`\s,;&)\]}<\x1b]|$)"
TOKEN = r"[A-Za-z0-9_\-]"


@dataclass(frozen=True, slots=True)
class Rule:
    """One kind of secret (a row of the table).

    Attributes:
        kind: The name in the marker, ``[REDACTED:<kind>]``.
        pattern: An RE2 pattern (bytes semantics); ``(?P<secret>…)`` names the part to replace.
        keyword: A cheap literal that every match contains (lower case; documentation and a
            fast pre-check for user rules).
        min_length: The shortest secret value accepted.
        max_length: The longest secret value accepted.
        min_entropy: The Shannon entropy floor (bits per character) of the secret value.
        mixed: Whether the value must mix letters with digits or symbols (generic values).
        specific: Whether the value's format alone identifies the secret (a prefix, a checksum);
            a generic match whose value fits a specific rule is named after that rule.
        bare: Whether the secret is the whole match, after an optional ``EDGE``.
        secret_from: A literal the secret begins with, for a rule whose secret runs to the end
            of the match and whose text before the secret cannot hold the literal.
        vendor: Who issues the secret.
        sample: A true example, as a template (``{h32}``: see ``ALPHABETS``).
        counter: A false example: text that must pass through unchanged.
        name: For a rule found by the name beside it, a name to write in generated contexts.
        shape: For such a rule, an RE2 pattern the whole value must match (lengths, groups).
        name_after: Whether the name that says what the value is comes after it, at the end of
            the match (``{"value": "…", "name": "DB_PASSWORD"}``): the value is judged, and
            named, as the same value would be after that name (``DB_PASSWORD=…``).
    """

    kind: str
    pattern: str
    keyword: str
    min_length: int = 1
    max_length: int = 1 << 16
    min_entropy: float = 0.0
    mixed: bool = False
    specific: bool = True
    bare: bool = False
    secret_from: str = ""
    vendor: str = ""
    sample: str = ""
    counter: str = ""
    name: str = ""
    shape: str = ""
    name_after: bool = False


def _literal(pattern: str) -> str:
    """The literal a pattern starts with, lower-cased (its keyword): only what every match
    holds, so not a last character made optional (``https?:`` gives ``http``)."""
    found = re.match(r"(?:[A-Za-z0-9_\-~]|\\\.)+", pattern)
    if not found:
        return ""
    literal = found.group()
    if pattern[found.end() : found.end() + 1] in ("?", "*", "{"):
        literal = literal[:-1]
    elif pattern[found.end() : found.end() + 1] == "|":
        return ""
    return literal.replace("\\", "").lower()


def token(
    kind: str,
    vendor: str,
    pattern: str,
    sample: str,
    lengths: tuple[int, int] | None = None,
    *,
    glued: bool = True,
    counter: str = "",
    entropy: float = 3.0,
    shape: str = "",
) -> Rule:
    """A row for a format with a prefix, found bare.

    Args:
        kind: The kind's name.
        vendor: Who issues it.
        pattern: The secret's pattern (bodies with ``+``; the prefix first).
        sample: A true example's template.
        lengths: The secret's shortest and longest length (default: the sample's, give or take
            a quarter).
        glued: Whether the prefix is distinctive enough to be found right after a letter;
            otherwise the token needs a left ``EDGE``.
        counter: A false example (default: the sample with a placeholder body).
        entropy: The entropy floor.
        shape: A pattern the whole secret must match, where the scan's pattern is looser (RE2
            runs bounded repeats of a wide class slowly, so they are checked on candidates).
    """
    size = template_length(sample)
    low, high = lengths if lengths is not None else (size - size // 4, size + size // 4)
    edge = "" if glued else EDGE
    return Rule(
        kind,
        rf"{edge}(?P<secret>{pattern})",
        _literal(pattern),
        low,
        high,
        min_entropy=entropy,
        bare=True,
        vendor=vendor,
        sample=sample,
        counter=counter or placeholder_of(sample),
        shape=shape,
    )


def named(
    kind: str,
    vendor: str,
    names: str,
    value: str,
    shape: str,
    sample_name: str,
    sample: str,
    *,
    entropy: float = 2.5,
    lengths: tuple[int, int] | None = None,
) -> Rule:
    """A row for a format without a prefix, found beside a name holding the vendor's word.

    Args:
        kind: The kind's name.
        vendor: Who issues it.
        names: A pattern of the vendor's word(s) in the name (matched case-insensitively).
        value: The character class of the value (``+`` is added).
        shape: A pattern the whole value must match (lengths, groups).
        sample_name: A name to write in generated contexts (``DATADOG_API_KEY``).
        sample: A true example's template.
        entropy: The entropy floor.
        lengths: The value's shortest and longest length (default: half to twice the
            sample's, and at least 8).
    """
    size = template_length(sample)
    low, high = lengths if lengths is not None else (max(8, size // 2), size * 2)
    return Rule(
        kind,
        rf"{NAMED_START}(?i:{names}){NAMED_ASSIGN}(?P<secret>{value}+){VALUE_END}",
        _literal(names),
        low,
        high,
        min_entropy=entropy,
        specific=False,
        vendor=vendor,
        sample=sample,
        counter=f"id {render(sample, 7)}",
        name=sample_name,
        shape=shape,
    )


ALPHABETS = {
    "a": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "u": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
    "b": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    "h": "0123456789abcdef",
    "H": "0123456789ABCDEF",
    "d": "0123456789",
    "U": "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789",
    "l": "abcdefghijklmnopqrstuvwxyz0123456789",
    "L": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "B": "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567",
    "c": "abcdefghijklmnopqrstuvwxyz234567",
    "C": "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L",
}
"""The alphabets of sample templates: ``{a20}`` is 20 random characters of ``a``."""

_FIELD = re.compile(r"\{([aubhHdUlLBcC])(\d+)\}")


def template_length(sample: str) -> int:
    """The length of what ``sample`` renders to."""
    return len(_FIELD.sub(lambda field: "x" * int(field.group(2)), sample))


def render(sample: str, seed: int) -> str:
    """The template ``sample`` with each field filled from a generator seeded with ``seed``.

    A linear congruential generator keeps this pure and the same on every platform.
    """
    state = [seed * 2654435761 + 12345]

    def pick(alphabet: str) -> str:
        state[0] = (state[0] * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        return alphabet[(state[0] >> 33) % len(alphabet)]

    def fill(field: re.Match[str]) -> str:
        alphabet = ALPHABETS[field.group(1)]
        return "".join(pick(alphabet) for _ in range(int(field.group(2))))

    return _FIELD.sub(fill, sample)


def placeholder_of(sample: str) -> str:
    """The sample with every field written as ``x`` (a documentation placeholder)."""
    return _FIELD.sub(lambda field: "x" * int(field.group(2)), sample)
