"""The rule table on its own: every kind found in context, look-alikes left alone."""

from __future__ import annotations

import zlib

import pytest

from airlock.redact import RULES, Redactor
from airlock.redact.checks import entropy, has_valid_checksum, is_placeholder, unescape
from airlock.redact.patterns import render
from airlock.redact.samples import base62
from tests.redact.cases import JOINED, NOT_SECRETS, SECRETS


@pytest.mark.parametrize(("kind", "around", "secret"), SECRETS, ids=[c[0] for c in SECRETS])
def test_each_kind_is_replaced_by_its_marker(kind: str, around: str, secret: str) -> None:
    """A secret of each kind is replaced by [REDACTED:<kind>] and nothing of it remains."""
    text, report = Redactor().redact_text(around.format(secret))
    assert f"[REDACTED:{kind}]" in text
    assert secret.strip() not in text
    assert report.counts() == {kind: 1}


@pytest.mark.parametrize(("kind", "around", "secret"), JOINED, ids=[c[1][:24] for c in JOINED])
def test_names_joined_to_values_in_many_ways(kind: str, around: str, secret: str) -> None:
    """XML elements (value on the same line or the next), Make's ``?=``, YAML blocks, bare
    ``Authorization:`` headers, curl's ``--user`` with any password, a URL with no user name."""
    text, report = Redactor().redact_text(around.format(secret))
    assert secret not in text
    assert report.counts() == {kind: 1}, text


@pytest.mark.parametrize(("name", "text"), NOT_SECRETS, ids=[c[0] for c in NOT_SECRETS])
def test_look_alikes_pass_through(name: str, text: str) -> None:
    """Placeholders, examples, hashes and ids are not secrets: the text comes back unchanged."""
    out, report = Redactor().redact_text(text)
    assert out == text, name
    assert not report.found


_PGP_BODY = "lQOYBGN0ZXN0AQgAq7VyZ3dQ9mK2Lr8sXw1Tn4Jc6Hb5Fe0Ga3Da9Yk2Um7Ri1Po8Ls4Nq6Vt2Wx0Zs5"


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        (
            "private_key_pem",
            f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{_PGP_BODY}\n{_PGP_BODY}\n=Ab3D\n"
            "-----END PGP PRIVATE KEY BLOCK-----\n",
        ),
        (
            "discord_webhook",
            "hook: http://discord.com/api/webhooks/120456789012345678/"
            "aB3dE5gH7jK9mN1pQ3sT5vX7zA9cE1gI3kM5oQ7sU9wY1aC3eG5iK7mO9qS1uW3yA5cE7gI9k end",
        ),
        ("zapier_webhook", "curl http://hooks.zapier.com/hooks/catch/1234567/ab3k9x2/ -d x"),
    ],
)
def test_a_rows_optional_words_do_not_hide_it(kind: str, text: str) -> None:
    """A PGP key (``PRIVATE KEY BLOCK``) and a webhook over ``http://`` are found: the literal
    every match holds (the row's keyword) stops before an optional part."""
    out, report = Redactor().redact_text(text)
    assert report.counts() == {kind: 1}, out
    assert out.count("\n") == text.count("\n")


def test_every_rows_keyword_is_in_its_example() -> None:
    """A bare row's keyword is a literal of every match: its own true example holds it."""
    for rule in RULES:
        if rule.bare:
            assert rule.keyword in render(rule.sample, 1).lower(), rule.kind


def test_every_shared_case_names_a_kind_of_the_table() -> None:
    """The shared cases name kinds the built-in table has (every row has its own examples)."""
    assert {kind for kind, _, _ in SECRETS} <= {rule.kind for rule in RULES}


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
    token = "ghp_" + body.decode() + base62(zlib.crc32(body), 6)
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
        # A password of one character repeated is a placeholder; two characters are not.
        ("https://deploy:aaaaaaaa@ci.internal/x", "https://deploy:aaaaaaaa@ci.internal/x"),
        (
            "https://deploy:abababab@ci.internal/x",
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


def test_placeholder_and_entropy_checks_agree_with_their_definitions() -> None:
    """The C-speed forms give what the plain definitions give, to the last bit."""
    import math
    import random
    import re
    from collections import Counter

    from airlock.redact.checks import PLACEHOLDER_MARKS, PLACEHOLDER_WORDS

    marks = re.compile(b"|".join(re.escape(mark.encode()) for mark in PLACEHOLDER_MARKS))
    words = re.compile(b"|".join(re.escape(word.encode()) for word in PLACEHOLDER_WORDS))
    generator = random.Random(5)
    alphabets = [b"ab", b"abc", b"abcd", b"aA1.<>${*x", bytes(range(33, 127))]
    for _ in range(3000):
        alphabet = generator.choice(alphabets)
        value = bytes(generator.choice(alphabet) for _ in range(generator.randrange(0, 700)))
        lowered = value.lower()
        if len(value) > 128:
            expected = bool(marks.search(lowered)) or len(set(lowered)) <= 3
            assert is_placeholder(value) == expected
        elif not words.search(lowered):
            assert is_placeholder(value) == (len(set(lowered)) <= 3)
        sample = value[:512]
        if sample:
            spread = sum(n * math.log2(n) for n in Counter(sample).values())
            assert entropy(value) == math.log2(len(sample)) - spread / len(sample)
