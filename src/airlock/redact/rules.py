"""The redaction rule table: one rule per kind of secret, and the checks a candidate must pass.

PURE: no I/O. The engine (``engine.py``) compiles ``RULES`` into one RE2 program and asks
``accepts`` about every candidate it finds.

Theory of operation
-------------------
Transcripts are JSON lines, so a secret is usually written inside a JSON string, and sometimes
inside a JSON string inside a JSON string. The patterns therefore match the *escaped* form
directly: a ``/`` may be written ``\\/`` (once or twice escaped), a PEM line break may be ``\\n``
or ``\\\\n``, a quote may be ``\\"``. Every escape is matched whole, so a replaced span never
cuts an escape sequence in half and the line stays valid JSON.

A rule's pattern may name the part to replace ``(?P<secret>…)``; without it, the whole match is
replaced. Contextual rules (``KEY=value``, ``Authorization: Bearer value``) use the context to
find the value and replace the value alone. Every quantifier is bounded, and RE2 guarantees
time linear in the input.

A candidate is then checked (``accepts``): placeholders and documentation examples are not
secrets, generic values need a length, a mix of character classes and an entropy floor.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter

from airlock._frozen import frozen

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from collections.abc import Callable

MARKER = "[REDACTED:{kind}]"
"""What a secret is replaced with."""

# Building blocks, in RE2 syntax. ``ESC_SLASH`` is ``/`` written plainly or JSON-escaped
# (``\/``) once or twice; ``NL`` is a line break, real or escaped once or twice.
ESC_SLASH = r"(?:\\*/)"
NL = r"(?:\\+r)?(?:\\+n|\r?\n)"
QUOTE = r"(?:\\*[\"'`])"
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
_SGR = rf"(?:{ANSI})*"
# One character of a free-form value (a password): printable ASCII except quotes, backslash,
# whitespace and the characters that end a value in code or URLs; escapes are taken whole.
VALUE_CHAR = r"(?:[A-Za-z0-9!#$%&*+\-./:;=?@^_|~\[\]{}<>]|\\+/|\\+u00[0-9a-fA-F]{2})"
URL_USER = r"[A-Za-z0-9._%~+\-]+"
URL_PASS_CHAR = r"(?:[A-Za-z0-9!$&*+\-.;=_~%,()]|\\+u00[0-9a-fA-F]{2})"


@frozen
class Rule:
    """One kind of secret.

    Attributes:
        kind: The name in the marker, ``[REDACTED:<kind>]``.
        pattern: An RE2 pattern (bytes semantics); ``(?P<secret>…)`` names the part to replace.
        keyword: A cheap literal that every match contains (lower case; documentation and a
            fast pre-check for user rules).
        min_length: The shortest secret value accepted (patterns use ``+``, which keeps
            RE2's automaton small, and lengths are checked here).
        max_length: The longest secret value accepted.
        min_entropy: The Shannon entropy floor (bits per character) of the secret value.
        mixed: Whether the value must mix letters with digits or symbols (generic values).
        specific: Whether the value's format alone identifies the secret (a prefix, a checksum);
            a generic match whose value fits a specific rule is named after that rule.
        bare: Whether the secret is the whole match, after an optional escaped line break or
            tab (``EDGE``): the engine then needs no capturing groups to find it.
        secret_from: A literal the secret begins with, for a rule whose secret runs to the end
            of the match, whose text before the secret cannot hold the literal, and whose
            pattern has no assertion on its context: the secret starts at the literal's first
            occurrence in the match, and the engine needs no capturing groups to find it
            (a capturing match over a key file's 2 KB costs 0.2 ms).
    """

    __slots__ = (
        "bare",
        "keyword",
        "kind",
        "max_length",
        "min_entropy",
        "min_length",
        "mixed",
        "pattern",
        "secret_from",
        "specific",
    )
    kind: str
    pattern: str
    keyword: str
    min_length: int
    max_length: int
    min_entropy: float
    mixed: bool
    specific: bool
    bare: bool
    secret_from: str

    def __init__(
        self,
        kind: str,
        pattern: str,
        keyword: str,
        min_length: int = 1,
        max_length: int = 1 << 16,
        min_entropy: float = 0.0,
        mixed: bool = False,
        specific: bool = True,
        bare: bool = False,
        secret_from: str = "",
    ) -> None:
        _set = object.__setattr__
        _set(self, "kind", kind)
        _set(self, "pattern", pattern)
        _set(self, "keyword", keyword)
        _set(self, "min_length", min_length)
        _set(self, "max_length", max_length)
        _set(self, "min_entropy", min_entropy)
        _set(self, "mixed", mixed)
        _set(self, "specific", specific)
        _set(self, "bare", bare)
        _set(self, "secret_from", secret_from)


# Names of assignments whose value is a password, or a key / token / secret.
_PASSWORD_NAMES = r"(?i:pass(?:word|wd|phrase)?|pwd)"
_KEY_NAMES = (
    r"(?i:secret|token|api[_\-.]?key|apikey|access[_\-.]?key|private[_\-.]?key|auth[_\-.]?key"
    r"|client[_\-.]?secret|credentials?|signing[_\-.]?key|encryption[_\-.]?key|master[_\-.]?key"
    r"|session[_\-.]?key|x[_\-]api[_\-]key|webhook)"
)
# Between the name and the value: the rest of the name, a closing quote, an operator, an
# opening quote. ``NAME=value``, ``"name": "value"``, ``name: value``, ``'NAME': 'value'``,
# ``name = "value"``, ``name := value``, ``name => value``.
_ASSIGN = rf"[A-Za-z0-9_.\-]*{_SGR}{QUOTE}?\]?[ \t]*(?::=|=>|[:=])[ \t]*{_SGR}{QUOTE}?{_SGR}"
_GENERIC_VALUE = r"(?:[A-Za-z0-9+_\-.~=]|\\*/)"
# What may follow a generic value: a quote, a space, a separator, an escape, the end.
_VALUE_END = r"(?:\\|[\"'`\s,;&)\]}\x1b]|$)"
_TOKEN = r"[A-Za-z0-9_\-]"


def _token(
    kind: str, pattern: str, keyword: str, low: int, high: int = 1024, *, glued: bool = False
) -> Rule:
    """A token found by its format alone. A ``glued`` one has a prefix distinctive enough
    (``ghp_``, ``sk-ant-``, ``xoxb-``) to be found even right after a letter; others need a
    left ``EDGE``."""
    edge = "" if glued else EDGE
    return Rule(
        kind, rf"{edge}(?P<secret>{pattern})", keyword, low, high, min_entropy=3.0, bare=True
    )


RULES: tuple[Rule, ...] = (
    Rule(
        "private_key_pem",
        rf"(?P<secret>-----BEGIN[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----"
        rf"(?:{NL}(?:Proc-Type|DEK-Info|Comment):[^\\\n]*)*"
        # At least a few characters of body, so a run of bare headers is no candidate at all.
        rf"(?:{NL}|[ \t])*{B64}{B64}{B64}{B64}{B64}{B64}{B64}{B64}"
        rf"(?:{NL}|{B64}|[ \t])*"
        rf"(?:-----END[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----(?:{NL})?)?)",
        "private key-----",
        min_length=64,
        bare=True,
    ),
    _token("anthropic_admin_key", rf"sk-ant-admin01-{_TOKEN}+", "sk-ant-admin", 40, glued=True),
    _token(
        "anthropic_api_key",
        rf"sk-ant-(?:api|oat|ort|sid)[0-9][0-9]-{_TOKEN}+",
        "sk-ant-",
        40,
        glued=True,
    ),
    _token(
        "openai_api_key",
        rf"sk-(?:(?:proj|svcacct|admin|None)-{_TOKEN}+|[A-Za-z0-9]+T3BlbkFJ[A-Za-z0-9]+)",
        "sk-",
        40,
    ),
    _token("github_fine_grained_pat", r"github_pat_[A-Za-z0-9_]+", "github_pat_", 40, glued=True),
    _token("github_token", r"gh[pousr]_[A-Za-z0-9]+", "gh", 34, glued=True),
    _token(
        "gitlab_pat",
        rf"gl(?:pat|ptt|dt|rt|cbt|oas|imt|ft|soat|agent)-{_TOKEN}+",
        "gl",
        24,
        glued=True,
    ),
    _token("google_api_key", rf"AIza{_TOKEN}+", "aiza", 39, 39),
    _token("huggingface_token", r"(?:hf|api_org)_[A-Za-z0-9]+", "_", 33, 48),
    _token("npm_token", r"npm_[A-Za-z0-9]+", "npm_", 40, 40, glued=True),
    Rule(
        "pypi_token",
        rf"(?P<secret>pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw){_TOKEN}+)",
        "pypi-age",
        min_length=60,
        bare=True,
    ),
    _token("sendgrid_api_key", rf"SG\.{_TOKEN}+\.{_TOKEN}+", "sg.", 50, 100, glued=True),
    Rule(
        "slack_webhook",
        rf"(?P<secret>https?:{ESC_SLASH}{ESC_SLASH}hooks\.slack\.com{ESC_SLASH}"
        rf"(?:services|workflows|triggers){ESC_SLASH}(?:[A-Za-z0-9_]|{ESC_SLASH})+)",
        "hooks.slack.com",
        min_length=50,
        bare=True,
    ),
    _token("slack_token", r"xox[abposer]-[A-Za-z0-9\-]+", "xox", 20, glued=True),
    _token(
        "stripe_key",
        r"(?:sk|rk)_(?:live|test)_[A-Za-z0-9]+|whsec_[A-Za-z0-9]+",
        "_",
        24,
        glued=True,
    ),
    _token("twilio", r"SK[0-9a-fA-F]+", "sk", 34, 34),
    Rule(
        "aws_access_key_id",
        rf"{EDGE}(?P<secret>(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]+)\b",
        "a",
        20,
        20,
        min_entropy=2.5,
        bare=True,
    ),
    Rule(
        "aws_secret_access_key",
        rf"(?i:aws_?secret_?(?:access_?)?key|secretaccesskey){_ASSIGN}"
        rf"(?P<secret>(?:[A-Za-z0-9+]|{ESC_SLASH})+){_VALUE_END}",
        "secret",
        40,
        40,
        min_entropy=3.5,
    ),
    Rule(
        "azure_storage_key",
        rf"(?i:AccountKey|SharedAccessKey)=(?P<secret>{B64}+)",
        "accountkey",
        40,
        min_entropy=3.5,
    ),
    Rule(
        "gcp_service_account_key",
        rf"private_key{QUOTE}[ \t]*:[ \t]*{QUOTE}(?P<secret>-----BEGIN PRIVATE KEY-----"
        rf"(?:{NL}|{B64})+(?:-----END PRIVATE KEY-----(?:{NL})?)?)",
        "private_key",
        min_length=64,
        secret_from="-----BEGIN PRIVATE KEY-----",  # noqa: S106 - a literal, no password
    ),
    Rule(
        "jwt",
        rf"(?P<secret>eyJ{_TOKEN}+\.eyJ{_TOKEN}+\.{_TOKEN}+)",
        "eyj",
        min_length=40,
        min_entropy=3.0,
        bare=True,
    ),
    Rule(
        "db_url_password",
        rf"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
        rf"|oracle|clickhouse|cockroachdb|couchdb|neo4j|nats|kafka):{ESC_SLASH}{ESC_SLASH}"
        rf"{URL_USER}:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
    ),
    Rule(
        "url_basic_auth",
        rf"(?i:https?|ftp|sftp|git\+https?|ssh|svn|ldaps?|smtps?|imaps?):{ESC_SLASH}{ESC_SLASH}"
        rf"{URL_USER}:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
    ),
    Rule(
        "generic_password",
        rf"(?:{_PASSWORD_NAMES}{_ASSIGN}|\s-p{QUOTE}|--password[ =]{QUOTE}?)"
        rf"(?P<secret>{VALUE_CHAR}{{6,}}){_VALUE_END}",
        "pass",
        min_length=8,
        max_length=256,
        min_entropy=2.5,
        mixed=True,
        specific=False,
    ),
    Rule(
        "generic_api_key",
        rf"(?:{_KEY_NAMES}{_ASSIGN}"
        rf"|(?i:authorization):[ \t]*(?i:bearer|token|basic)[ \t]+"
        rf"|(?i:x-auth-token|x-api-key|private-token|api-key):[ \t]*"
        rf"|(?i:key|token|secret)(?: is|[A-Za-z ]*:)[ \t]+)"
        rf"(?P<secret>{_GENERIC_VALUE}{{12,}}){_VALUE_END}",
        "key",
        min_length=16,
        max_length=512,
        min_entropy=3.0,
        mixed=True,
        specific=False,
    ),
)
"""The built-in table. Order matters only for ties at the same position: specific first."""


class _Deferred:
    """A regular expression compiled when first searched: every command that loads the rules
    would otherwise compile them all at start-up (about 2 ms), though only candidates use them.

    After the first search, ``search`` is the compiled pattern's own method.
    """

    __slots__ = ("pattern", "search")
    pattern: bytes
    search: Callable[[bytes], re.Match[bytes] | None]

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern

    def __getattr__(self, name: str) -> Callable[[bytes], re.Match[bytes] | None]:
        # Only reached while ``search`` is unset: compile, then keep the compiled method.
        if name != "search":
            raise AttributeError(name)
        self.search = re.compile(self.pattern).search
        return self.search


_NOT_SECRET_NAMES = _Deferred(
    rb"(?i)(?:_id|key_?id|id_?key|tokens|token_?(?:count|type|url|uri|endpoint|file|path|name)"
    rb"|public_?key|max_?tokens|_?len|_?length|_?size)\W*$"
)
"""Names of assignments whose value is not a secret (the id of a key, a count of tokens)."""

_IN_MARKER = re.compile(rb"\[REDACTED:[A-Za-z0-9_]*$")


def starts_in_marker(before: bytes) -> bool:
    """Whether text ending with ``before`` is inside one of our markers (already redacted)."""
    return _IN_MARKER.search(before[-64:]) is not None


COMMON_DEFAULTS = frozenset(
    b"password passwd postgres root admin secret pass test guest user mysql redis changeme".split()
)
"""Default passwords of documentation: not redacted as secrets in assignments (in a URL, they
are: ``scheme://user:pass@host`` names a real host)."""


PLACEHOLDER_WORDS: tuple[str, ...] = (
    "example",
    "xxxxx",
    "*****",
    "...",
    "<",
    ">",
    "${",
    "{{",
    "$(",
    "your_",
    "your-",
    "yourkey",
    "placeholder",
    "changeme",
    "change_me",
    "replace_me",
    "replaceme",
    "dummy",
    "redacted",
    "insert",
    "fake",
    "sample",
    "process.env",
    "os.environ",
    "getenv",
)
"""Case-insensitive fragments of documentation examples and placeholders: never secrets."""

PLACEHOLDER_MARKS: tuple[str, ...] = ("xxxxx", "*****", "...", "<", ">", "${", "{{")
"""The fragments checked in long values (a key file), where a short word can occur by chance."""


# Literal alternations, searched once per candidate (short values; no nested quantifiers).
_WORDS = _Deferred(b"|".join(re.escape(word.encode()) for word in PLACEHOLDER_WORDS))
_MARK_BYTES = tuple(word.encode() for word in PLACEHOLDER_MARKS)


def unescape(value: bytes) -> bytes:
    """The value with JSON escapes of ``/``, line breaks and ``\\u00XX`` undone (repeatedly)."""
    if b"\\" not in value:
        return value
    out = value
    for _ in range(3):
        before = out
        out = out.replace(b"\\\\", b"\\").replace(b"\\/", b"/").replace(b"\\n", b"\n")
        out = _unescape_u00(out)
        if out == before:
            break
    return out


def _unescape_u00(value: bytes) -> bytes:
    index = value.find(b"\\u00")
    while index != -1 and index + 6 <= len(value):
        digits = value[index + 4 : index + 6]
        try:
            char = bytes([int(digits, 16)])
        except ValueError:
            index = value.find(b"\\u00", index + 1)
            continue
        value = value[:index] + char + value[index + 6 :]
        index = value.find(b"\\u00", index + 1)
    return value


ENTROPY_SAMPLE = 512
"""Entropy is measured on at most this many leading bytes (a key file is long and uniform)."""


def entropy(value: bytes) -> float:
    """Shannon entropy of the value's first ``ENTROPY_SAMPLE`` bytes, in bits per byte."""
    sample = value[:ENTROPY_SAMPLE]
    if not sample:
        return 0.0
    total = len(sample)
    # Counts in order of first appearance either way, so the sum is the same to the last bit;
    # for a short sample a count per distinct byte (in C) is cheaper than building a Counter.
    counts = map(sample.count, dict.fromkeys(sample)) if total <= 64 else Counter(sample).values()
    spread = sum(map(_XLOGX.__getitem__, counts))
    return math.log2(total) - spread / total


_XLOGX = [0.0] + [n * math.log2(n) for n in range(1, ENTROPY_SAMPLE + 1)]


def is_placeholder(value: bytes) -> bool:
    """Whether the (unescaped) value is a documentation example or a placeholder."""
    lowered = value.lower()
    if len(value) <= 128:
        if _WORDS.search(lowered):
            return True
    elif any(mark in lowered for mark in _MARK_BYTES):
        return True
    return _at_most_distinct(lowered, 3)


def _at_most_distinct(value: bytes, count: int) -> bool:
    """Whether ``value`` holds at most ``count`` distinct bytes (deleting one at a time, in C)."""
    for _ in range(count):
        if not value:
            return True
        value = value.translate(None, value[:1])
    return not value


def _is_url_placeholder(value: bytes) -> bool:
    """Whether a URL's password is a placeholder (a short word is a weak password, not one)."""
    lowered = value.lower()
    return _WORDS.search(lowered) is not None or _at_most_distinct(lowered, 1)


_LETTERS = bytes(range(65, 91)) + bytes(range(97, 123))


def _is_mixed(value: bytes) -> bool:
    others = len(value.translate(None, _LETTERS))
    return 0 < others < len(value)


_UPPER = bytes(range(65, 91))


def _random_letters(value: bytes) -> bool:
    """Whether a value of letters alone looks random: long, and about as many capitals as
    small letters (an identifier in CamelCase has one capital a word: a fifth or less)."""
    if len(value) < 24:
        return False
    capitals = len(value) - len(value.translate(None, _UPPER))
    return 0.25 <= capitals / len(value) <= 0.9


_BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(number: int, width: int) -> bytes:
    digits = bytearray()
    while number:
        number, digit = divmod(number, 62)
        digits.append(_BASE62[digit])
    return bytes(reversed(digits)).rjust(width, b"0")


def has_valid_checksum(kind: str, value: bytes) -> bool:
    """Whether a token carries its format's own checksum (GitHub, npm: CRC32 of the body, base62).

    Such a token is a real credential format, whatever it looks like otherwise.
    """
    if kind not in CHECKSUMMED or len(value) != 40:
        return False
    body = value[4:]
    return _base62(zlib.crc32(body[:30]), 6) == body[30:]


CHECKSUMMED = frozenset({"github_token", "npm_token"})
"""Kinds whose tokens end with a CRC32 checksum of their body."""


def accepts(
    rule: Rule,
    value: bytes,
    allow: frozenset[bytes] = frozenset(),
    context: bytes = b"",
    host: bytes = b"",
) -> bool:
    """Whether a candidate value found by ``rule`` is a secret to redact.

    Args:
        rule: The rule that matched.
        value: The secret part of the match, as written (possibly JSON-escaped).
        allow: Values the user says are not secrets (compared unescaped).
        context: The matched text before the value (the name of a generic assignment).
        host: For a URL's password, the host after ``@``.

    Returns:
        False for allow-listed values, placeholders, and values under the rule's floors.
    """
    if len(value) > rule.max_length * 6 or len(value) < rule.min_length:
        return False  # escapes take at most six bytes a character
    plain = unescape(value)
    if b"[REDACTED:" in plain:
        return False  # already redacted: a marker is not a secret
    if plain in allow or value in allow:
        return False
    if rule.kind in CHECKSUMMED and has_valid_checksum(rule.kind, plain):
        return True
    if _is_url_placeholder(plain) if rule.kind in URL_KINDS else is_placeholder(plain):
        return False
    if not rule.min_length <= len(plain) <= rule.max_length:
        return False
    if not rule.specific and not _generic_accepts(rule, plain, context, host):
        return False
    if rule.mixed and not _is_mixed(plain) and not _random_letters(plain):
        return False
    if not rule.min_entropy:
        return True
    # A token's format is proof enough once it is not a repeated pattern (24 distinct bytes;
    # found in the first 64 bytes, they are in the whole sample: the cheap look comes first,
    # and a value no longer than that is looked at once).
    if rule.specific and (
        len(set(plain[:64])) >= 24 or (len(plain) > 64 and len(set(plain[:ENTROPY_SAMPLE])) >= 24)
    ):
        return True
    return entropy(plain) >= rule.min_entropy


URL_KINDS = frozenset({"db_url_password", "url_basic_auth"})
"""Kinds whose secret is the password of a URL (``scheme://user:password@host``)."""

_EXAMPLE_HOST = _Deferred(
    rb"(?i)^(?:(?:www\.)?example(?:\.(?:com|org|net))?|[a-z0-9.\-]*\.invalid)\.?$"
)
"""Hosts reserved for documentation (RFC 2606): a URL there is an example. (A subdomain of
``example.net`` stands in for a real host in redacted logs, so only the bare names count.)"""


def _generic_accepts(rule: Rule, plain: bytes, context: bytes, host: bytes) -> bool:
    if rule.kind in URL_KINDS:
        # A weak real password is still a password; only documentation hosts make examples.
        if _EXAMPLE_HOST.search(host):
            return False
    elif plain.lower() in COMMON_DEFAULTS:
        return False
    if _NOT_SECRET_NAMES.search(context[-80:]):
        return False
    # ``scheme://user:user@`` repeats the user name as the password: an example.
    return not context.endswith(b"/" + plain + b":")
