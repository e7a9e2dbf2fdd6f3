"""The checks a candidate must pass to be redacted: placeholders and documentation examples are
not secrets; values need their rule's length, shape, character mix and entropy floor.

PURE: no I/O.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Callable

from airlock.redact.patterns import Rule


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

_NAME = re.compile(rb"(?:[\s>]|\\+[nrt])?<([A-Za-z0-9_.:\-]*)|([A-Za-z0-9_.\-]*)")
"""The name a generic candidate's context starts with: the whole name, the part before the
rule's word too (the engine starts the context there), or an XML element's (``<dbPassword>``)."""

_REFERENCE_NAMES = _Deferred(
    rb"(?:(?i:[_\-.](?:name|file_?name|file|path|dir|arn|ref|url|uri|id))"
    rb"|[a-z0-9](?:Name|File(?:[Nn]ame)?|Path|Dir|Arn|ARN|Ref|Url|URL|Uri|URI|Id|ID))$"
)
"""Names whose last word says the value names or locates a secret, not holds it
(``OAUTH_CLIENT_SECRET_NAME``, ``PASSWORD_FILE``, ``DB_PASSWORD_SECRET_ARN``, ``SecretName``,
``tokenUrl``): Kubernetes' and ECS's environment lists, tags, settings that point at a secret
store. (A vendor's key id with a format of its own is found by that format, not by a name.)"""

_NONCE_NAMES = _Deferred(
    rb"(?i)(?:[cx]srf|requestverification|authenticity)[_\-.]?(?:middleware[_\-.]?)?token$"
)
"""Anti-forgery tokens (``csrf_token``, ``X-XSRF-TOKEN``, Django's ``csrfmiddlewaretoken``,
ASP.NET's ``__RequestVerificationToken``, Rails' ``authenticity_token``): a nonce of one
session that a web form or a client sends back, not a credential. (A framework's secret that
signs them, ``CSRF_SECRET_KEY``, is one.)"""

_URL_PASSWORD = _Deferred(rb"^[A-Za-z][A-Za-z0-9+.\-]*://[^/@]*:[^/@]*@")
"""A URL with a password in it: never a mere reference, whatever its name."""

_REFERENCE_VALUE = _Deferred(
    rb"^(?:arn:[a-z0-9\-]+:|(?i:secretsmanager|ssm|ssm-secure|vault|sops):"
    rb"|[A-Za-z][A-Za-z0-9+.\-]*://)"
)
"""Values that point at a secret: an ARN (``arn:aws:secretsmanager:…``), a secret store's
reference (``ssm:/prod/db``, ``vault:secret/data/db#password``), a URL without a password
(a vault's address, 1Password's ``op://vault/item``, ``ref+vault://…``)."""

# A path's segment is a word written in one case, or capitalised (``/Users/Ann``): the segments
# of a random base64 value mix cases.
_SEGMENT = rb"(?:[a-z0-9_.@\-]+|[A-Z][a-z0-9_.@\-]*|[A-Z0-9_.@\-]+)"
_PATH = _Deferred(rb"\A(?:(?:~|\.{1,2})(?:/" + _SEGMENT + rb")+|(?:/" + _SEGMENT + rb"){2,})/?\Z")
"""A file path (``/run/secrets/db_password``, ``~/.config/token``, ``./keys/jwt.pem``)."""

# A word of a label: a short one (``db``, ``v2``, ``k8s``), a number, or a longer run of small
# letters that reads as a word (a vowel, no six consonants in a row; random letters rarely
# do), digits after it.
_LABEL_WORD = (
    rb"(?:[a-z0-9]{1,3}|[0-9]+"
    rb"|(?=[a-z]*[aeiouy])(?![a-z]*[b-df-hj-np-tv-xz]{6})[a-z]{4,}[0-9]*)"
)
_LABEL = _Deferred(rb"\A" + _LABEL_WORD + rb"(?:[\-_./]" + _LABEL_WORD + rb")+\Z")
"""A plain identifier: small-letter words joined by ``-``, ``_``, ``.`` or ``/``
(``prod-db-credentials``, ``payments-api-key-v2``): the name of a secret in a store or a tag."""

_LABEL_SECRET_WORD = _Deferred(
    rb"(?:^|[\-_./])(?:api[\-_.]?key|apikey|keys?|secrets?|passwords?|passwd|pwd|tokens?"
    rb"|credentials?|creds?)(?:[\-_./]|$)"
)
_LABEL_QUALIFIER = _Deferred(
    rb"(?:^|[\-_./])(?:prod|production|prd|staging|stage|stg|dev|development|qa|uat|v[0-9]+)"
    rb"(?:[\-_./]|$)"
)
"""In a label, a word that says it holds a secret, and one that says which environment or
version of it: together, the name of a secret kept elsewhere (``payments-api-key-v2``,
``prod-db-password``), which passwords of plain words seldom are; words that only describe a
secret (``my-super-secret-jwt-key``) are no such name."""


_NAME_ENDS_SECRET = _Deferred(
    rb"(?:^|[\-_.\s]|(?<=[a-z]))(?i:secrets?|passwords?|passwd|pwd|pass|passphrase"
    rb"|credentials?|creds?|keys?|apikey|tokens?|auth)[0-9]*$"
)
"""A name whose last word says it holds a secret (``JWT_SECRET``, ``apiKey``, ``password``)."""

_IN_MARKER = re.compile(rb"\[REDACTED:[A-Za-z0-9_]*$")
_MARKER = re.compile(rb"\[REDACTED:[A-Za-z0-9_]+\]")


def starts_in_marker(before: bytes, after: bytes = b"]") -> bool:
    """Whether text ending with ``before`` and going on with ``after`` is inside one of our
    markers (already redacted): ``[REDACTED:`` and a kind's name, closed by ``]``. An
    unclosed one (``[REDACTED:db_password=…`` typed before a secret) is no marker."""
    found = _IN_MARKER.search(before[-64:])
    if found is None:
        return False
    return _MARKER.match(found.group() + after[:64]) is not None


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


REFERENCES = (b"var.", b"local.", b"module.")
"""How a value that names another begins (Terraform's ``var.db_password``): not a secret."""


def is_placeholder(value: bytes) -> bool:
    """Whether the (unescaped) value is a documentation example or a placeholder (also a
    reference to a variable: ``%NUGET_PASSWORD%``, ``var.db_password``)."""
    lowered = value.lower()
    if lowered.startswith(REFERENCES) or (value[:1] == value[-1:] == b"%" and len(value) > 2):
        return True
    if len(value) <= 128:
        if _has_placeholder_word(value, lowered):
            return True
    elif any(mark in lowered for mark in _MARK_BYTES):
        return True
    return _at_most_distinct(lowered, 3)


def _has_placeholder_word(value: bytes, lowered: bytes) -> bool:
    """Whether a placeholder word stands in the value written in one case (``fake``, ``FAKE``,
    ``Fake``) or is not a word of letters (``${``, ``your_``). In a random token the same
    letters turn up by chance, in mixed case (``fAKE``): that token stays a secret."""
    offset = 0
    while (match := _WORDS.search(lowered[offset:])) is not None:
        word = value[offset + match.start() : offset + match.end()]
        if not word.isalpha() or word.islower() or word.isupper() or word.istitle():
            return True
        offset += match.end()
    return False


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
    if rule.shape and _shape(rule.shape).fullmatch(plain) is None:
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


_SHAPES: dict[str, re.Pattern[bytes]] = {}


def _shape(pattern: str) -> re.Pattern[bytes]:
    """The compiled shape of a named rule (compiled when first needed)."""
    compiled = _SHAPES.get(pattern)
    if compiled is None:
        compiled = _SHAPES[pattern] = re.compile(pattern.encode("latin-1"))
    return compiled


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
    # The name is judged where the context ends (``max_tokens": ``) and where the name itself
    # ends, when more stands between it and the value: a record's ``"value": `` field
    # (``{"name": "max_tokens", "value": …}``), a form field's other headers, a colour sequence.
    found = _NAME.match(context, 0, 120)
    name = (found.group(1) or found.group(2) or b"") if found is not None else b""
    if _NOT_SECRET_NAMES.search(context[-80:]) or _NOT_SECRET_NAMES.search(name):
        return False
    if rule.kind not in URL_KINDS and _is_reference(rule, plain, name):
        return False
    # ``scheme://user:user@`` repeats the user name as the password: an example.
    return not context.endswith(b"/" + plain + b":")


def _is_reference(rule: Rule, plain: bytes, name: bytes) -> bool:
    """Whether a generic candidate names, locates or stands for a secret rather than holds one:
    judged on its name and its value alike, however the two are joined (``NAME=value``, a
    record's ``name`` and ``value`` fields, a form field), so deployment data that points at a
    secret (``PASSWORD_FILE: /run/secrets/db``, ``SecretName: prod-db-credentials``) goes
    through untouched. A URL with a password in it is never one."""
    if _URL_PASSWORD.search(plain):
        return False
    if _REFERENCE_NAMES.search(name) or _NONCE_NAMES.search(name):
        return True
    if _REFERENCE_VALUE.search(plain) or _PATH.search(plain):
        return True
    if _LABEL.search(plain) is None:
        return False
    # A label under a name that is itself a secret's (``JWT_SECRET=my-super-secret-jwt-key``,
    # ``password=correct-horse-battery``) is a weak secret, not a label: only a name that
    # ends in another word (``token_owner``, ``secret_label``) makes one a label, or a label
    # that is plainly the name of a stored secret (``API_KEY_SECRET: payments-api-key-v2``).
    if name == b"":
        return False
    return _NAME_ENDS_SECRET.search(name) is None or _names_a_stored_secret(plain)


def _names_a_stored_secret(label: bytes) -> bool:
    """Whether a label is the name of a secret kept elsewhere (``payments-api-key-v2``)."""
    return (
        _LABEL_SECRET_WORD.search(label) is not None and _LABEL_QUALIFIER.search(label) is not None
    )
