"""The rule table on its own: every kind found in context, look-alikes left alone."""

from __future__ import annotations

import zlib

import pytest

from airlock.redact import RULES, Redactor
from airlock.redact.rules import _base62, entropy, has_valid_checksum, is_placeholder, unescape
from tests.redact.cases import NOT_SECRETS, SECRETS


@pytest.mark.parametrize(("kind", "around", "secret"), SECRETS, ids=[c[0] for c in SECRETS])
def test_each_kind_is_replaced_by_its_marker(kind: str, around: str, secret: str) -> None:
    """A secret of each kind is replaced by [REDACTED:<kind>] and nothing of it remains."""
    text, report = Redactor().redact_text(around.format(secret))
    assert f"[REDACTED:{kind}]" in text
    assert secret.strip() not in text
    assert report.counts() == {kind: 1}


@pytest.mark.parametrize(("name", "text"), NOT_SECRETS, ids=[c[0] for c in NOT_SECRETS])
def test_look_alikes_pass_through(name: str, text: str) -> None:
    """Placeholders, examples, hashes and ids are not secrets: the text comes back unchanged."""
    out, report = Redactor().redact_text(text)
    assert out == text, name
    assert not report.found


def test_every_builtin_kind_has_a_case() -> None:
    """The shared cases cover every kind of the built-in table."""
    kinds = {rule.kind for rule in RULES}
    assert kinds - {"gcp_service_account_key"} <= {kind for kind, _, _ in SECRETS}


@pytest.mark.parametrize(
    ("escaped", "plain"),
    [
        (b"a\\/b", b"a/b"),
        (b"a\\\\\\/b", b"a/b"),
        (b"x\\nY", b"x\nY"),
        (b"\\u003cT\\u003e", b"<T>"),
        (b"plain", b"plain"),
    ],
)
def test_unescape_undoes_json_escapes(escaped: bytes, plain: bytes) -> None:
    """JSON escapes of /, newlines and \\u00XX are undone, repeatedly for double escaping."""
    assert unescape(escaped) == plain


def test_entropy_orders_random_above_repetitive() -> None:
    """Random bodies have more entropy per byte than repeated text."""
    assert entropy(b"Gmgdxr6SUtPeZ4KIonrmzAPslTyCmq4Gbu6c") > 4.0 > entropy(b"sk-proj-" * 10)
    assert entropy(b"") == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (b"<password>", True),
        (b"your_api_key_here", True),
        (b"xxxxxxxxxxxx", True),
        (b"UufgJ4UUE8d458y55x", False),
    ],
)
def test_placeholders_are_recognised(value: bytes, expected: bool) -> None:
    """Placeholder shapes are recognised; a random value is not one."""
    assert is_placeholder(value) is expected


def test_github_and_npm_checksums_are_verified() -> None:
    """A token with its CRC32 checksum is recognised; one changed character breaks it."""
    assert has_valid_checksum("github_token", b"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")
    token = b"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"
    assert has_valid_checksum("github_token", token)
    assert not has_valid_checksum("github_token", token[:-1] + b"h")
    assert has_valid_checksum("npm_token", b"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")


def test_a_checksummed_token_is_redacted_even_when_it_looks_like_an_example() -> None:
    """The checksum outweighs the placeholder words: a real token that spells 'example' is redacted."""
    body = b"exampleexampleexampleexample00"
    token = (b"ghp_" + body + _base62(zlib.crc32(body), 6)).decode()
    text, report = Redactor().redact_text(f"token {token}")
    assert text == "token [REDACTED:github_token]"
    assert report.found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgres://user:pass@host/db", "postgres://user:[REDACTED:db_url_password]@host/db"),
        (
            "mysql://root:password@localhost/x",
            "mysql://root:[REDACTED:db_url_password]@localhost/x",
        ),
        (
            "https://deploy:hunter2@ci.internal/x",
            "https://deploy:[REDACTED:url_basic_auth]@ci.internal/x",
        ),
        # Documentation examples, as the corpus labels them: a reserved host, the user name
        # repeated as the password, a placeholder.
        ("https://user:pass@example.com/", "https://user:pass@example.com/"),
        (
            "postgres://postgres:postgres@localhost:5432/postgres",
            "postgres://postgres:postgres@localhost:5432/postgres",
        ),
        (
            "mysql://root:<password>@127.0.0.1:3306/app",
            "mysql://root:<password>@127.0.0.1:3306/app",
        ),
    ],
)
def test_weak_url_passwords_are_passwords_unless_documentation(text: str, expected: str) -> None:
    """A weak password on a real host is redacted; documentation examples are not."""
    assert Redactor().redact_text(text)[0] == expected


def _service_account_texts() -> list[bytes]:
    import json
    from pathlib import Path

    from airlock.redact.corpus import generate
    from tests.redact.test_engine import PEM

    account = {"type": "service_account", "private_key_id": "ab12", "private_key": PEM}
    texts = [
        json.dumps(account).encode(),
        json.dumps({"content": json.dumps(account)}).encode(),
        json.dumps(account, indent=2).replace('": "', '":\t "').encode(),
        b"private_key: '" + PEM.replace("\n", "\\n").encode() + b"'",
    ]
    texts += [data for _, data in generate(seed=1, megabytes=1.0).files]
    shared = Path(__file__).resolve().parents[2].parent / "shared" / "corpora" / "redaction-dev"
    texts += [path.read_bytes() for path in sorted(shared.glob("transcripts/**/*.jsonl"))]
    return texts


def test_a_secret_found_from_its_literal_is_the_capturing_groups_span() -> None:
    """For rules with ``secret_from``, the literal gives the span the capturing match gives."""
    import re2

    from airlock.redact.engine import _BOTH, _Table

    table = _Table(RULES)
    literal = [index for index, rule in enumerate(RULES) if rule.secret_from]
    assert literal
    checked = 0
    for text in _service_account_texts():
        position = 0
        while True:
            first, last = table.scan.Match(re2._Anchor.UNANCHORED, text, position, len(text))[0]
            if first < 0:
                break
            position = max(last, first + 1)
            answer = table._which(text, first, last)
            if answer is None or answer[0] not in literal:
                continue
            groups = table.each[answer[0]].Match(_BOTH, text, first, last)
            secret = groups[table.secret[answer[0]]]
            assert (first + answer[1], first + answer[2]) == secret
            checked += 1
    assert checked >= 4


def test_placeholder_and_entropy_checks_agree_with_their_definitions() -> None:
    """The C-speed forms give what the plain definitions give, to the last bit."""
    import math
    import random
    import re
    from collections import Counter

    from airlock.redact.rules import PLACEHOLDER_MARKS, _at_most_distinct

    marks = re.compile(b"|".join(re.escape(mark.encode()) for mark in PLACEHOLDER_MARKS))
    generator = random.Random(5)
    alphabets = [b"ab", b"abc", b"abcd", b"aA1.<>${*x", bytes(range(33, 127))]
    for _ in range(3000):
        alphabet = generator.choice(alphabets)
        value = bytes(generator.choice(alphabet) for _ in range(generator.randrange(0, 700)))
        lowered = value.lower()
        for count in (1, 3):
            assert _at_most_distinct(lowered, count) == (len(set(lowered)) <= count)
        if len(value) > 128:
            expected = bool(marks.search(lowered)) or len(set(lowered)) <= 3
            assert is_placeholder(value) == expected
        sample = value[:512]
        if sample:
            spread = sum(n * math.log2(n) for n in Counter(sample).values())
            assert entropy(value) == math.log2(len(sample)) - spread / len(sample)
