"""Secrets written with the ``\\xHH`` and ``\\UHHHHHHHH`` escapes of YAML's double-quoted
strings (PyYAML's ``safe_load`` and ruamel decode them), JSON5 (``\\x``), TOML 1.1 and Python
(``ghp\\x5f…``): found with those read, as ``\\u00XX`` is, and replaced where they stand,
escapes whole; text with such escapes and no secret is left byte for byte. These are the body
readings the egress proxy's secrets check asks for (``Redactor(body_readings=True)``): a
transcript or a file to redact is read as its readers read it."""

from __future__ import annotations

import codecs
import io
import re
import time

import pytest

from airlock.redact import Redactor, escapes
from airlock.redact.escapes import HEX_REACH

REDACTOR = Redactor(body_readings=True)

GITHUB = "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"
AWS_SECRET = "IoXdzaxEdJtsA8X72tzcwJtPsOX2LcXssLiW0jkT"


def _x(text: str) -> str:
    return "".join(f"\\x{ord(char):02x}" for char in text)


def _u8(text: str) -> str:
    return "".join(f"\\U{ord(char):08X}" for char in text)


ESCAPED = {
    "x_underscore": (f'k: "ghp\\x5f{GITHUB[4:]}"', 'k: "[REDACTED:github_token]"'),
    "x_upper_case": (f'{{"k": "ghp\\x5F{GITHUB[4:]}"}}', '{"k": "[REDACTED:github_token]"}'),
    "big_u_underscore": (
        f'{{"k": "ghp\\U0000005f{GITHUB[4:]}"}}',
        '{"k": "[REDACTED:github_token]"}',
    ),
    "x_every_char": (f'k: "{_x(GITHUB)}"', 'k: "[REDACTED:github_token]"'),
    "big_u_every_char": (f'k: "{_u8(GITHUB)}"', 'k: "[REDACTED:github_token]"'),
    "mixed_with_json_u": (  # \u0067 for g, \x5f for _: neither reading alone shows it
        f'{{"k": "\\u0067hp\\x5f{GITHUB[4:]}"}}',
        '{"k": "[REDACTED:github_token]"}',
    ),
    "escaped_again": (  # JSON inside JSON, as the JSON cursor reads \\u00XX
        f'{{"k": "ghp\\\\x5f{GITHUB[4:]}"}}',
        '{"k": "[REDACTED:github_token]"}',
    ),
    "line_continued": (  # an escaped line break, and the next line's blanks, read as nothing
        f'k: "{GITHUB[:20]}\\\n    {GITHUB[20:]}"\nnext: 1\n',
        'k: "[REDACTED:github_token]\n"\nnext: 1\n',  # its line break kept
    ),
    "line_continued_crlf": (
        f'k: "{GITHUB[:20]}\\\r\n{GITHUB[20:]}"\r\n',
        'k: "[REDACTED:github_token]\n"\r\n',
    ),
    "toml_line_ending_backslash": (  # TOML: blanks after it, and blank lines, trimmed too
        f'k = """\n{GITHUB[:20]}\\  \n\n    {GITHUB[20:]}"""\n',
        'k = """\n[REDACTED:github_token]\n\n"""\n',
    ),
    "ends_at_a_line_continuation": (  # the backslash and the next line's indent are kept
        f"export GH={GITHUB}\\\n  --flag x\n",
        "export GH=[REDACTED:github_token]\\\n  --flag x\n",
    ),
    "ends_at_a_yaml_line_break": (
        f'k: "{GITHUB}\\\n  "\nnext: 1\n',
        'k: "[REDACTED:github_token]\\\n  "\nnext: 1\n',
    ),
    "name_continued": (
        f'k: "aws_secret_access_key = \\\n  {AWS_SECRET}"\n',
        'k: "aws_secret_access_key = \\\n  [REDACTED:aws_secret_access_key]"\n',
    ),
    "name_and_value_spaced": (
        f"aws_secret_access_key\\x20=\\x20{AWS_SECRET}\n",
        "aws_secret_access_key\\x20=\\x20[REDACTED:aws_secret_access_key]\n",
    ),
}


LINE_JOINED = re.compile(r"\\[ \t]*\r?\n|\\\\")
"""An escaped line break or an escape escaped again, which ``unicode_escape`` reads otherwise."""


@pytest.mark.parametrize(("text", "redacted"), ESCAPED.values(), ids=list(ESCAPED))
def test_a_secret_behind_hex_escapes_is_replaced_where_it_stands(text: str, redacted: str) -> None:
    if "github" in redacted and not LINE_JOINED.search(text):
        # read as YAML reads it in a double-quoted string (and Python's unicode_escape)
        assert GITHUB in codecs.decode(text, "unicode_escape")
    out, report = REDACTOR.redact_text(text)
    assert out == redacted
    assert len(report.findings) == 1


def test_a_secret_far_from_another_escape_is_found_in_a_large_window() -> None:
    """Only the stretches around such escapes are read again: a key far past one escape, and
    one that holds another escape much later, are both found, each where it stands."""
    filler = "lorem ipsum dolor sit amet " * (3 * HEX_REACH // 27)
    text = (
        f'a: "caf\\x65 {filler}"\nb: "ghp\\x5f{GITHUB[4:]}"\n'
        f'c: "{filler}"\nd: "{GITHUB[:-1]}\\x{ord(GITHUB[-1]):02x}"\n'
    )
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {"github_token": 2}
    assert GITHUB[5:-1] not in out
    assert out.count(filler) == 2 and out.startswith('a: "caf\\x65 ')


@pytest.mark.parametrize("chunk", [41, 64, 100])
def test_an_escaped_secret_is_found_whatever_the_chunk_boundary(chunk: int) -> None:
    text = ("x" * 50 + "\n") * 3 + ESCAPED["x_every_char"][0] + "\n"
    expected = ("x" * 50 + "\n") * 3 + ESCAPED["x_every_char"][1] + "\n"
    dst = io.BytesIO()
    Redactor(chunk=chunk, overlap=800, body_readings=True).redact_stream(
        io.BytesIO(text.encode()), dst
    )
    assert dst.getvalue().decode() == expected


CLEAN = [
    'name: "caf\\xe9 au lait \\x41bc \\U0001F600 \\x00\\x1b[31m"',
    "_re = re.compile('[\\\\x00-\\\\x20\\\\x7f]')\nprintf '\\x1b[31m'\n",
    'path: "C:\\\\xavier\\\\Users"',
    "\\x5c\\x5c\\x22 \\x5cu0041",
]
"""Text with such escapes and no secret (a backslash is never read, so ``\\x5cu0041`` is no
escape of ``A``)."""
HOSTILE = [b"\\x41" * (1 << 18), b"a\\x41 " * (1 << 17), b"\\" * (1 << 20) + b"x41"]
"""A megabyte of escapes, of escapes among words, of one run of backslashes."""


def test_only_a_secret_changes_among_hex_escapes() -> None:
    """Text with such escapes and no secret is left byte for byte beside one that is
    replaced; a megabyte of hostile escapes before a key costs well under a second (a look-up
    each, no scan of its own each, no quadratic walk over a run of backslashes)."""
    key = ESCAPED["x_underscore"]
    for text in CLEAN:
        out, report = REDACTOR.redact_text(f"{text}\n{key[0]}\n")
        assert out == f"{text}\n{key[1]}\n", out
        assert report.counts() == {"github_token": 1}
    for body in HOSTILE:
        started = time.process_time()
        hits = REDACTOR.find(body + b"\n" + key[0].encode())
        assert time.process_time() - started < 3
        assert [hit.kind for hit in hits] == ["github_token"]


@pytest.mark.parametrize(
    ("text", "read"),
    [
        ("./configure --prefix=/usr \\\n  --with-x \\\n  --without-y\n", False),
        ("total = first + \\\n    second\n", False),
        (f'k: "{GITHUB[:20]}\\\n  {GITHUB[20:]}"\n', True),
        ("aws_secret_access_key = \\\n  value\n", True),
        ("key: \\\n  value\n", True),
    ],
    ids=["shell_continuations", "python_continuation", "token_split", "assignment", "yaml_key"],
)
def test_only_a_line_break_that_may_join_a_key_is_read_again(text: str, read: bool) -> None:
    """A line continuation after a word and a blank joins no token, nor a name and its value:
    the text near it is not read again (source code and shell scripts are full of them)."""
    window = text.encode()
    _, found, rest = escapes.Decoded.read(window)
    assert (escapes.hex_escapes(window, found, rest) is not None) is read


def test_a_transcript_or_a_file_is_read_as_written() -> None:
    """Without the body readings (``airlock redact``, feedback bundles, the survey): no
    reader of a transcript decodes ``\\x5f``, an escaped line break or XML markup inside a
    token, so the text is left as it is, at the cost of text read as written (a hostile
    10 MB of ``\\x41`` takes as long as plain text, not ten times as long)."""
    for text, _ in ESCAPED.values():
        if GITHUB not in text and AWS_SECRET not in text:  # a key written plainly is found
            assert Redactor().redact_text(text)[0] == text
    joined = f'k: "{GITHUB[:10]}\\\n  {GITHUB[10:]}"'
    assert Redactor().redact_text(joined)[0] == joined
    assert Redactor(body_readings=True).redact_text(joined)[0] != joined
