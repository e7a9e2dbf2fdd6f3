"""Secrets hidden by XML and HTML character references (``&#x41;``, ``&#65;``, ``&quot;``) or
by quoted-printable (``=3D``, soft line breaks ``=\\n``): found with those read, and replaced
where they stand, escapes whole."""

from __future__ import annotations

import io
import json

import pytest

from airlock.redact import Redactor

REDACTOR = Redactor()

GITHUB = "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"
AWS_SECRET = "IoXdzaxEdJtsA8X72tzcwJtPsOX2LcXssLiW0jkT"
QP_HEAD = (
    "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
)


def _hex(text: str) -> str:
    return "".join(f"&#x{ord(c):x};" for c in text)


def _decimal(text: str) -> str:
    return "".join(f"&#{ord(c)};" for c in text)


ENCODED = {
    "xml_hex_first_char": (
        f"<config><apiKey>{_hex('g')}{GITHUB[1:]}</apiKey></config>",
        "<config><apiKey>[REDACTED:github_token]</apiKey></config>",
    ),
    "xml_decimal_in_middle": (
        f"<token>{GITHUB[:4]}{_decimal(GITHUB[4:8])}{GITHUB[8:]}</token>",
        "<token>[REDACTED:github_token]</token>",
    ),
    "html_every_char": (
        f'<input value="{_decimal(GITHUB)}">',
        '<input value="[REDACTED:github_token]">',
    ),
    "escaped_xml_element": (
        "&lt;dbPassword&gt;Wq7z!K2pV9xR4m&lt;/dbPassword&gt;",
        "&lt;dbPassword&gt;[REDACTED:generic_password]&lt;/dbPassword&gt;",
    ),
    "qp_soft_line_break": (
        f"{QP_HEAD}export GITHUB_TOKEN=3D{GITHUB[:20]}=\r\n{GITHUB[20:]}\r\n",
        # the soft break inside the token goes with it (and the first scan took ``3D`` for
        # the value's start); the line count is kept
        f"{QP_HEAD}export GITHUB_TOKEN=[REDACTED:github_token]\n\r\n",
    ),
    "qp_escaped_letters": (
        f"{QP_HEAD}aws_secret_access_key =3D {AWS_SECRET[:10]}=4A{AWS_SECRET[11:]}\r\n",
        f"{QP_HEAD}aws_secret_access_key =3D [REDACTED:aws_secret_access_key]\r\n",
    ),
    "qp_lower_case_escapes": (  # quopri and Go's reader take =4a as =4A
        f"{QP_HEAD}aws_secret_access_key =3d {AWS_SECRET[:10]}=4a{AWS_SECRET[11:]}\r\n",
        f"{QP_HEAD}aws_secret_access_key =3d [REDACTED:aws_secret_access_key]\r\n",
    ),
    "qp_lower_case_sign_alone": (  # no Content-Transfer-Encoding: =3d shows it
        f"a =3d b\n=67{GITHUB[1:]}\n",
        "a =3d b\n[REDACTED:github_token]\n",
    ),
}


@pytest.mark.parametrize(("text", "redacted"), ENCODED.values(), ids=list(ENCODED))
def test_a_secret_behind_an_encoding_is_replaced_where_it_stands(text: str, redacted: str) -> None:
    out, report = REDACTOR.redact_text(text)
    assert out == redacted
    assert out.count("\n") == text.count("\n")
    assert len(report.findings) == 1


def test_quoted_printable_in_a_json_string_stays_json() -> None:
    """A MIME part an agent read, inside a transcript line: the soft break is ``=\\n`` there."""
    body = f"{QP_HEAD}token=3D{GITHUB[:30]}=\n{GITHUB[30:]}\n"
    line = json.dumps({"content": body})
    out, report = REDACTOR.redact_text(line)
    assert report.counts() == {"github_token": 1}, out
    assert GITHUB[30:] not in out and GITHUB[:30] not in out
    content = json.loads(out)["content"]
    assert content.startswith(f"{QP_HEAD}token=") and content.endswith("[REDACTED:github_token]\n")


@pytest.mark.parametrize("chunk", [41, 64, 100])
def test_an_encoded_secret_is_found_whatever_the_chunk_boundary(chunk: int) -> None:
    text = ("x" * 50 + "\n") * 3 + ENCODED["xml_decimal_in_middle"][0] + "\n"
    expected = ("x" * 50 + "\n") * 3 + ENCODED["xml_decimal_in_middle"][1] + "\n"
    dst = io.BytesIO()
    Redactor(chunk=chunk, overlap=400).redact_stream(io.BytesIO(text.encode()), dst)
    assert dst.getvalue().decode() == expected


@pytest.mark.parametrize(
    "text",
    [
        "<p>Tom &amp; Jerry &lt;3 &#169; 2024 &#x2014; caf&eacute;</p>",
        f"{QP_HEAD}Caf=C3=A9 au lait =3D tasty, see you soon=\r\nbye\r\n",
        "width=3D height=20 a=\nb",
        "&lt;YOUR_API_KEY&gt; goes in &quot;api_key&quot;",
    ],
    ids=["html_text", "qp_text", "qp_look_alike", "placeholder"],
)
def test_encoded_text_without_a_secret_is_left_byte_for_byte(text: str) -> None:
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, out
