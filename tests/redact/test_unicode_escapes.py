"""Secrets written with ``\\uXXXX`` escapes inside JSON strings: found, and the line stays JSON."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.redact import Redactor
from airlock.redact.escapes import ESCAPE as _ESCAPE
from airlock.redact.escapes import HEX as _HEX
from airlock.redact.escapes import split_escapes as _split_escapes

GITHUB = "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"
AWS = "AKIAQWERTYUIOPASDFGH"


def _escaped(text: str, which: str) -> str:
    """``text`` with the characters in ``which`` (or every one, for ``*``) written ``\\u00XX``."""
    return "".join(f"\\u{ord(c):04x}" if which == "*" or c in which else c for c in text)


def _line(value: str) -> str:
    """A JSON line whose string ``c`` is ``value``, written as it is (already escaped)."""
    return '{"c": "' + value + '"}'


CASES = [
    ("first character", _line(_escaped(GITHUB, "g")), "github_token", GITHUB),
    ("every character", _line(_escaped(GITHUB, "*")), "github_token", GITHUB),
    ("one in the middle", '{"k": "AKIA\\u0051WERTYUIOPASDFGH"}', "aws_access_key_id", AWS),
    ("upper-case hex", '{"k": "AKIA\\u0051WERTYUIOPASDFG\\u0048"}', "aws_access_key_id", AWS),
    (
        "assignment",
        '{"c": "PASSWORD=\\u0055ufgJ4UUE8d458y55x"}',
        "generic_password",
        "UufgJ4UUE8d458y55x",
    ),
    (
        "double-escaped JSON",
        json.dumps({"outer": _line(_escaped(GITHUB, "ghp"))}),
        "github_token",
        GITHUB,
    ),
]


@pytest.mark.parametrize(("name", "line", "kind", "secret"), CASES, ids=[c[0] for c in CASES])
def test_unicode_escaped_secrets_are_redacted_and_json_stays_valid(
    name: str, line: str, kind: str, secret: str
) -> None:
    """A secret with some or all characters written as \\u escapes is replaced whole."""
    text, report = Redactor().redact_text(line + "\n")
    assert report.counts() == {kind: 1}, name
    before, after = json.loads(line), json.loads(text)
    assert before.keys() == after.keys()
    flat = json.dumps(after)
    while isinstance(after, dict) and "outer" in after:
        after = json.loads(after["outer"])
        flat += json.dumps(after)
    assert secret not in flat
    assert f"[REDACTED:{kind}]" in flat


def test_unicode_escaped_secret_across_every_chunk_boundary() -> None:
    """Wherever a chunk boundary falls inside an escaped secret, it is redacted whole."""
    line = (_line(_escaped(GITHUB, "*"))).encode()
    redactor = Redactor(chunk=16, overlap=512)
    for pad in range(0, len(line) + 20, 5):
        data = b"x" * pad + b"\n" + line + b"\n" + b"y" * 600
        out = io.BytesIO()
        report = redactor.redact_stream(io.BytesIO(data), out)
        assert report.counts() == {"github_token": 1}, pad
        assert json.loads(out.getvalue().splitlines()[1]) == {"c": "[REDACTED:github_token]"}


def test_escaped_non_secrets_are_left_byte_for_byte() -> None:
    """Escaped text with no secret in it comes out exactly as it went in."""
    line = _line(_escaped("hello <world>", "<>") + " \\u00e9t\\u00e9 \\u0022quoted\\u0022") + "\n"
    text, report = Redactor().redact_text(line)
    assert not report.found
    assert text == line


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.booleans(), min_size=len(GITHUB), max_size=len(GITHUB)),
    st.text(alphabet='ab <>&"\\é/\n', max_size=30),
    st.text(alphabet='ab <>&"\\é/\n', max_size=30),
    st.integers(min_value=8, max_value=64),
    st.sampled_from([1, 2]),
)
def test_any_escaping_of_a_secret_maps_back_to_valid_json(
    escaped: list[bool], before: str, after: str, chunk: int, backslashes: int
) -> None:
    """Whichever characters are escaped, whatever is around and wherever chunks end, the
    secret becomes one marker and the rest of the string comes back unchanged."""
    secret = "".join(
        "\\" * backslashes + f"u{ord(c):04x}" if flag else c
        for c, flag in zip(GITHUB, escaped, strict=True)
    )
    around = [json.dumps(part, ensure_ascii=True)[1:-1] for part in (before, after)]
    if backslashes == 2:  # a JSON string inside a JSON string
        around = [json.dumps(part)[1:-1] for part in around]
    line = f'{{"c": "{around[0]} {secret} {around[1]}"}}\n'
    out = io.BytesIO()
    report = Redactor(chunk=chunk, overlap=512).redact_stream(io.BytesIO(line.encode()), out)
    assert report.counts() == {"github_token": 1}
    value = json.loads(out.getvalue())["c"]
    if backslashes == 2:
        value = json.loads(f'"{value}"')
    assert value == f"{before} [REDACTED:github_token] {after}"


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "\\",
                "u",
                "0",
                "00",
                "\\u00",
                "\\u0041",
                "\\u002F",
                "\\u0022",
                "\\u005c",
                "\\u007f",
                "\\u00e9",
                "\\\\u0041",
                "\\u004",
                "x",
            ]
        ),
        max_size=40,
    )
)
def test_escapes_found_one_by_one_or_in_one_pass_read_the_same(pieces: list[str]) -> None:
    """Few escapes are looked for one by one; the result is the one regular expression's."""
    window = "".join(pieces).encode()
    by_pattern = _ESCAPE.split(window)
    by_pattern[1::2] = [_HEX[code] for code in by_pattern[1::2]]
    assert _split_escapes(window) == by_pattern


def test_many_escapes_are_read_in_one_pass() -> None:
    """Past the few looked for one by one, the window is split by the regular expression."""
    line = _line(" ".join([_escaped(GITHUB, "*")] * 20)).encode()
    assert _split_escapes(line) is None
    out, report = Redactor().redact_text(line.decode())
    assert report.counts() == {"github_token": 20}
    assert json.loads(out) == {"c": " ".join(["[REDACTED:github_token]"] * 20)}
