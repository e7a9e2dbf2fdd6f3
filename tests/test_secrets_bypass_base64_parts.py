"""A multipart part in base64 (``Content-Transfer-Encoding: base64``), through the real proxy
(TLS and plain HTTP, real origins on loopback): multipart readers decode it without being
asked (python-multipart's ``FormParser``, Python's ``email`` with ``decode=True``, JavaMail),
as they decode a part in quoted-printable. A key in such a part left under ``--secrets
block`` and ``redact``, read as the part's base64 letters; it is now read decoded, refused
under ``block``, and under ``redact`` too, which cannot replace it where it stands."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from airlock.egress.scan import SecretsMode, check_gathered
from airlock.redact import Redactor
from tests.test_secrets_bypass_readings import KEY, MULTIPART, _status, sites


def _part(content: bytes, *, coding: str = "base64", lines: int = 0) -> bytes:
    """A form with one field, then a file part whose ``content`` is in base64 (folded into
    lines of 76 letters with ``lines``), then another field."""
    encoded = base64.b64encode(content)
    if lines:
        encoded = b"\r\n".join(encoded[at : at + lines] for at in range(0, len(encoded), lines))
    return (
        b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nhello\r\n'
        b'--b\r\nContent-Disposition: form-data; name="f"; filename=".env"\r\n'
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: " + coding.encode() + b"\r\n\r\n"
        + encoded
        + b'\r\n--b\r\nContent-Disposition: form-data; name="after"\r\n\r\nbye\r\n--b--\r\n'
    )  # fmt: skip


ENV = f"GITHUB_TOKEN={KEY}\n".encode()
SHIFTED = b"QUFB\r\nContent-Transfer-Encoding: base64\r\n\r\nAAA"
"""Put before a part's letters: a line inside its content that reads as a part's header (its
reader reads its 29 letters as base64 too, and ``AAA`` makes them whole groups); read anew
from the line, as a part of its own, the letters after it were grouped otherwise."""

UNENDED = b"QUFBQUF\r\nContent-Transfer-Encoding: base64\r\n"
"""As :data:`SHIFTED`, with no blank line after it: its 7 and 29 letters make whole groups."""

PARTS = [
    pytest.param(_part(ENV), id="one_line"),
    pytest.param(_part(b"x" * 5000 + ENV, lines=76), id="folded_lines"),
    pytest.param(_part(ENV, coding="BASE64"), id="upper_case"),
    # JavaMail unfolds the header and reads its first word, past comments and quoted text
    pytest.param(_part(ENV, coding="\r\n\tbase64"), id="folded_header"),
    pytest.param(_part(ENV, coding='(a file) "x" base64'), id="comment_before"),
    pytest.param(  # two padded runs, as a reader that decodes four letters at a time reads them
        _part(b"a").replace(b"YQ==", b"YQ==" + base64.b64encode(ENV)), id="after_padding"
    ),
    pytest.param(_part(ENV).replace(b"R0lU", SHIFTED + b"R0lU", 1), id="header_line_inside"),
    pytest.param(  # no blank line after it: the letters that follow are the part's still
        _part(ENV).replace(b"R0lU", UNENDED + b"R0lU", 1), id="header_line_inside_unended"
    ),
]


@pytest.mark.parametrize("body", PARTS)
def test_a_key_in_a_base64_part_is_found(body: bytes) -> None:
    """The check reads the part decoded: ``block`` refuses, ``redact`` refuses too."""
    letters = re.split(rb"(?i)base64\r\n\r\n", body, maxsplit=1)[1].split(b"\r\n--b", 1)[0]
    assert ENV in base64.b64decode(letters.replace(b"YQ==", b"")), "what its reader reads"

    _refused_both_ways(body)


def test_a_base64_part_without_a_key_still_goes_as_it_is() -> None:
    """A file part in base64 that holds no secret leaves unchanged under both modes."""
    body = _part(b"just a picture\x00\x01\x02" * 300, lines=76)
    for mode in (SecretsMode.BLOCK, SecretsMode.REDACT):
        assert check_gathered(Redactor(), mode, body, None, MULTIPART.encode())[:2] == (body, {})


def test_a_large_base64_part_is_checked_within_one_decoded_copy_of_the_budget() -> None:
    """The part is read in its four groupings one at a time: the run's budget of gathered
    bodies is charged for one decoded copy, so a part that fits with one is checked and
    leaves, not refused ``413`` as if four copies were held at once."""
    from airlock.egress.scan import Budget, Held

    content = b"just a picture\x00\x01\x02" * 20_000
    body = _part(content, lines=76)
    for mode in (SecretsMode.BLOCK, SecretsMode.REDACT):
        # the body, its letters (as runs, and as one run), room for one decoded copy
        held = Held(Budget(3 * len(body) + 2 * len(content)))
        assert held.take(len(body))
        checked = check_gathered(Redactor(), mode, body, None, MULTIPART.encode(), held.grow)
        assert checked[:2] == (body, {})
        held.settle(len(body))
        assert held.size == len(body)


@pytest.mark.parametrize("way", ["tls", "plain"])
@pytest.mark.parametrize("mode", [SecretsMode.BLOCK, SecretsMode.REDACT])
def test_a_key_in_a_base64_part_never_reaches_the_origin(
    tmp_path: Path, way: str, mode: SecretsMode
) -> None:
    """On the wire: ``403``, the origin gets nothing, the record counts the key."""
    with sites(tmp_path, mode) as served:
        answer = served.send(way, "/upload", {"Content-Type": MULTIPART}, _part(ENV))
        seen = served.seen(way)
    records = served.records()
    assert _status(answer) == 403, answer[:300]
    assert seen == []
    assert records and records[-1]["secrets"] == {"github_token": 1}


def test_a_key_split_by_padding_its_reader_skips_is_found() -> None:
    """A ``=`` where no group of four can end (after its first letter or second) is skipped
    by Python's ``email`` (its base64 reader, as ``binascii`` reads without ``strict_mode``),
    which reads on past it: the letters around it are one run, and the key in them is read
    whole, refused under ``block`` and ``redact``."""
    import email
    from email.message import Message

    letters = base64.b64encode(ENV)
    split = b"=".join(letters[max(at - 8, 0) : at] for at in range(1, len(letters) + 8, 8))
    body = _part(ENV).replace(letters, split, 1)
    message = email.message_from_bytes(f"Content-Type: {MULTIPART}\r\n\r\n".encode() + body)
    parts = message.get_payload()
    assert isinstance(parts, list) and isinstance(parts[1], Message)
    assert ENV in parts[1].get_payload(decode=True), "what its reader reads"

    _refused_both_ways(body)


def _refused_both_ways(body: bytes) -> None:
    """``body`` (a multipart form) is refused under ``block`` with its key counted, and under
    ``redact`` too, as the key cannot be replaced where it stands."""
    from airlock.egress.scan import Uncheckable

    leaving, found, _ = check_gathered(
        Redactor(), SecretsMode.BLOCK, body, None, MULTIPART.encode()
    )
    assert leaving is None and found == {"github_token": 1}
    with pytest.raises(Uncheckable) as refused:
        check_gathered(Redactor(), SecretsMode.REDACT, body, None, MULTIPART.encode())
    assert refused.value.status == 403 and "cannot be replaced" in refused.value.why
