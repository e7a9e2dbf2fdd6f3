"""Token boundaries are decided as on the decoded text: escapes and colour sequences hide nothing.

A token right after a JSON ``\\uXXXX`` escape (of a letter, a CJK character, half an emoji), an
escaped line break, or a terminal control sequence (CSI colours, OSC titles and hyperlinks;
raw, JSON-escaped or shell-escaped) is found, for every kind found by its format alone.
"""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.redact import RULES, Redactor
from airlock.redact.samples import MAKERS
from tests.redact.cases import SECRETS

REDACTOR = Redactor()

BARE_KINDS = sorted({rule.kind for rule in RULES if rule.bare})
TOKENS = {kind: secret for kind, _around, secret in SECRETS if kind in BARE_KINDS}

JSON_PREFIXES = [
    ("escaped letter", "caf\\u00e9"),
    ("escaped letter alone", "\\u00e9"),
    ("escaped CJK", "\\u4e2d\\u6587"),
    ("escaped emoji pair", "\\ud83d\\ude00"),
    ("escaped no-break space", "\\u00a0"),
    ("escaped line break", "line\\n"),
    ("escaped tab", "\\t"),
    ("escaped colour", "\\u001b[32m"),
    ("escaped bold red", "\\u001b[1;31m"),
    ("escaped erase after colour", "\\u001b[01;31m\\u001b[K"),
    ("escaped 256 colour", "\\u001b[38;5;208m"),
    ("escaped hyperlink", "\\u001b]8;;https:\\/\\/x.io\\/\\u0007"),
    ("escaped title", "\\u001b]0;build\\u001b\\\\"),
    ("upper-case escape", "\\u001B[33m"),
]
"""What may stand right before a token inside a JSON string (as written in the file)."""

RAW_PREFIXES = [
    ("letter with accent", "café"),
    ("colour", "\x1b[32m"),
    ("bold red and erase", "\x1b[01;31m\x1b[K"),
    ("true colour", "\x1b[38;2;255;0;0m"),
    ("hyperlink", "\x1b]8;;https://x.io/\x1b\\"),
    ("title ended by BEL", "\x1b]0;build\x07"),
    ("shell octal colour", 'echo -e "\\033[32m'),
    ("shell hex colour", "printf '\\x1b[31m"),
    ("shell e colour", 'echo -e "\\e[1m'),
    ("space", "token "),
    ("parenthesis", "("),
]
"""What may stand right before a token in plain text (a terminal capture, a script)."""

JSON_SUFFIXES = ["", "\\u001b[0m", "\\u00e9", "\\n"]
RAW_SUFFIXES = ["", "\x1b[0m", " ", "\x1b[m\x1b[K"]


def _json_line(prefix: str, secret: str, suffix: str) -> str:
    return '{"c": "' + prefix + json.dumps(secret)[1:-1] + suffix + '"}\n'


def _assert_redacted(kind: str, secret: str, text: str, out: str) -> None:
    for piece in secret.strip().splitlines():
        if len(piece) >= 8 and "-----" not in piece:
            assert piece not in out, (kind, text[:80])
    assert f"[REDACTED:{kind}]" in out, (kind, text[:80], out[:120])


@pytest.mark.parametrize("kind", sorted(TOKENS))
@pytest.mark.parametrize(("where", "prefix"), JSON_PREFIXES, ids=[p[0] for p in JSON_PREFIXES])
@pytest.mark.parametrize("suffix", JSON_SUFFIXES, ids=["end", "reset", "letter", "newline"])
def test_token_after_an_escape_in_json_is_found(
    kind: str, where: str, prefix: str, suffix: str
) -> None:
    """A token right after a JSON escape or an escaped colour sequence is replaced whole, and
    the line stays JSON of the same shape."""
    secret = TOKENS[kind]
    line = _json_line(prefix, secret, suffix)
    out, report = REDACTOR.redact_text(line)
    _assert_redacted(kind, secret, line, out)
    assert json.loads(out).keys() == {"c"}
    assert report.counts() == {kind: 1}, where


@pytest.mark.parametrize("kind", sorted(TOKENS))
@pytest.mark.parametrize(("where", "prefix"), RAW_PREFIXES, ids=[p[0] for p in RAW_PREFIXES])
@pytest.mark.parametrize("suffix", RAW_SUFFIXES, ids=["end", "reset", "space", "reset-erase"])
def test_token_after_a_control_sequence_in_text_is_found(
    kind: str, where: str, prefix: str, suffix: str
) -> None:
    """A token right after a colour or hyperlink sequence (raw or shell-escaped) is replaced."""
    secret = TOKENS[kind]
    text = prefix + secret + suffix
    out, report = REDACTOR.redact_text(text)
    _assert_redacted(kind, secret, text, out)
    assert out.startswith(prefix), where
    assert report.counts() == {kind: 1}


GLUED_KINDS = [
    "anthropic_api_key",
    "anthropic_admin_key",
    "github_token",
    "github_fine_grained_pat",
    "gitlab_pat",
    "slack_token",
    "stripe_key",
    "sendgrid_api_key",
    "npm_token",
    "pypi_token",
    "jwt",
]


@pytest.mark.parametrize("kind", GLUED_KINDS)
@pytest.mark.parametrize("letter", ["x", "Z", "7", "\\u00e9", "é"])
def test_distinctive_prefix_right_after_a_letter_is_found(kind: str, letter: str) -> None:
    """A token whose prefix is distinctive (ghp_, sk-ant-, xoxb-) is found glued to a word."""
    secret = TOKENS[kind]
    out, _ = REDACTOR.redact_text(f"value{letter}{secret}")
    _assert_redacted(kind, secret, secret, out)


@pytest.mark.parametrize(
    "text",
    [
        "MYAKIAQWERTYUIOPASDFGH",  # a short prefix inside a longer upper-case word
        "xAIzaLo7qaFzG1qGCFCqHxJHXa_Zv5vAY-tBQolh",
        "\\u001b[32mAKIAIOSFODNN7EXAMPLE\\u001b[0m",  # the documentation key, coloured
        "\x1b[32m<YOUR_TOKEN>\x1b[0m",
        "\x1b[01;31m\x1b[Kpassword\x1b[m\x1b[K=changeme",
    ],
)
def test_edges_do_not_make_look_alikes_secrets(text: str) -> None:
    """A short prefix glued inside a longer word, and examples in colour, stay as they are."""
    out, report = REDACTOR.redact_text(text)
    assert out == text
    assert not report.found


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("\x1b[01;31m\x1b[KDB_PASSWORD\x1b[m\x1b[K=UufgJ4UUE8d458y55x", "generic_password"),
        (
            "\x1b[1mapi_key\x1b[0m: \x1b[33m8hC91edwPx9gKIcQ1Lz5HfiOAs987Lco\x1b[0m",
            "generic_api_key",
        ),
        (
            '{"c": "SECRET=\\u001b[32m8hC91edwPx9gKIcQ1Lz5HfiOAs987Lco\\u001b[0m"}',
            "generic_api_key",
        ),
        ('{"c": "\\u00e9password: UufgJ4UUE8d458y55x"}', "generic_password"),
    ],
)
def test_colour_around_an_assignment_hides_nothing(text: str, kind: str) -> None:
    """Colour sequences around a name, its operator or its value do not hide the value."""
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}
    assert f"[REDACTED:{kind}]" in out


# ------------------------------------------------------------------------------ Hypothesis

EDGES = [prefix for _, prefix in RAW_PREFIXES] + ["\n", "\t", " ", "é", "中", "😀", "\x1b[0m"]
HYPOTHESIS_KINDS = sorted(set(TOKENS) & set(MAKERS))


@st.composite
def wrapped_secret(draw: st.DrawFn) -> tuple[str, str, str, int]:
    """(kind, secret, text, depth): a random secret after a random edge, wrapped in ``depth``
    (0 to 2) levels of JSON strings, ASCII-escaped or not."""
    kind = draw(st.sampled_from(HYPOTHESIS_KINDS))
    _variant, secret = MAKERS[kind](random.Random(draw(st.integers(0, 2**32))))
    before = draw(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12))
    edge = draw(st.sampled_from(EDGES))
    after = draw(st.sampled_from(["", " ", "\n", "\x1b[0m", '"', "é"]))
    text = f"{before} {edge}{secret}{after}"
    depth = draw(st.integers(0, 2))
    for _ in range(depth):
        text = json.dumps({"content": text}, ensure_ascii=draw(st.booleans()))
    return kind, secret, text, depth


@settings(max_examples=300, deadline=None)
@given(wrapped_secret())
def test_any_secret_in_any_escaping_after_any_edge_is_found(
    case: tuple[str, str, str, int],
) -> None:
    """Whatever stands before it and however often it is escaped, the secret is replaced."""
    kind, secret, text, depth = case
    out, report = REDACTOR.redact_text(text)
    assert report.found, (kind, text[:200])
    decoded = out
    for _ in range(depth):
        decoded = json.loads(decoded)["content"]
    for piece in secret.strip().splitlines():
        if len(piece) >= 8 and "-----" not in piece:
            assert piece not in decoded, (kind, text[:200])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(wrapped_secret(), st.text(max_size=40)), max_size=6))
def test_redaction_is_idempotent(pieces: list[tuple[str, str, str, int] | str]) -> None:
    """Redacting redacted text changes nothing more."""
    text = "\n".join(piece if isinstance(piece, str) else piece[2] for piece in pieces)
    once, _ = REDACTOR.redact_text(text)
    twice, report = REDACTOR.redact_text(once)
    assert twice == once
    assert not report.found
