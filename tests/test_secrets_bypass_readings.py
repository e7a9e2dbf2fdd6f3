"""Secrets in uploads to an inspected host, through the real proxy (TLS and plain HTTP, real
origins on loopback): readings a server takes that ``--secrets block`` and ``redact`` must take
too, and names a client chose that the audit log must not quote.

- A form in UTF-16 (its charset named, or as UTF-16 text among its bytes) is read as a
  form's reader reads it once it is text: ``+`` as a space (Django decodes the charset, then
  the form), so ``aws_secret_access_key+%3D+…`` is found there as in a UTF-8 form.
- A multipart part in quoted-printable (``Content-Transfer-Encoding``), which Go's
  ``mime/multipart`` and Python's ``quopri`` decode, is read decoded whole: escapes in
  either case (``=5f``), and past the engine's window from the sign of the encoding.
- A charset or ``Content-Encoding`` name that holds a token is quoted nowhere: not in a
  refusal (plain HTTP records it as the reason), nor in a record's ``unchecked``.
"""

from __future__ import annotations

import contextlib
import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.scan import SecretsMode
from tests.egress.harness import (
    OriginServer,
    inspected_setup,
    inspected_tls,
    tls_origin,
    until_closed,
)
from tests.egress.origin import _Site, config, exchange, origin, running

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
AWS = "aws_secret_access_key = " + "k9Xz/7Qw2Lp+4Rt8Yv3Nb6Mc1Hd5Jf0Gs2Ka7EqW"
FORM = b"application/x-www-form-urlencoded"


class Sites:
    """The proxy inspecting ``localhost`` with one ``--secrets`` mode, a TLS origin and a
    plain one; :meth:`send` sends one raw request either way, :meth:`seen` what the origin
    got."""

    def __init__(self, url: str, bundle: Path, tls: OriginServer, plain: _Site, log: Path):
        self.url, self.bundle, self.tls, self.plain, self.log = url, bundle, tls, plain, log

    def send(self, way: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
        """``POST`` ``body`` to ``path`` on ``localhost`` (``way``: ``tls`` or ``plain``); the
        answer."""
        port = self.tls.server_address[1] if way == "tls" else self.plain.server_address[1]
        target = path if way == "tls" else f"http://localhost:{port}{path}"
        lines = [f"POST {target} HTTP/1.1", f"Host: localhost:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        if way == "plain":
            return exchange(self.url, data)
        with inspected_tls(self.url, self.bundle, port) as tls:
            tls.sendall(data)
            return until_closed(tls)

    def seen(self, way: str) -> list[str]:
        """The paths the origin was sent (``way``: ``tls`` or ``plain``)."""
        if way == "tls":
            return [path for _, path, _ in self.tls.seen]
        return [path for path, _ in self.plain.seen]

    def records(self) -> list[dict[str, Any]]:
        """The inspected requests' records in the audit log."""
        lines = self.log.read_text().splitlines()
        return [r for r in map(json.loads, lines) if r.get("inspected")]


@contextlib.contextmanager
def sites(tmp_path: Path, mode: SecretsMode) -> Iterator[Sites]:
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {}, mode)
    cfg = config(tmp_path, inspection=inspection)
    assert cfg.audit_log is not None
    with (
        tls_origin(origin_ca) as tls,
        origin() as plain,
        running(cfg) as (url, proxy),
    ):
        yield Sites(url, bundle, tls, plain, cfg.audit_log)
        proxy.close({"command": ["test"], "exit_code": 0})  # the log whole


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _utf16_form() -> bytes:
    return ("note=" + urllib.parse.quote_plus(AWS)).encode("utf-16")


def _nul_text_form() -> bytes:
    """The form's text in UTF-16 among other bytes (no charset named: told by its NULs)."""
    return b"\x01\x02" + ("note=" + urllib.parse.quote_plus(AWS)).encode("utf-16-le")


def _quoted_printable(escaped: str, filler: int = 0) -> bytes:
    return (
        '--b\r\nContent-Disposition: form-data; name="f"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        + "abcdefghij " * (filler // 11)
        + f"key {escaped}\r\n--b--\r\n"
    ).encode()


QP_LOWER = _quoted_printable(KEY.replace("_", "=5f"))
"""A lower-case escape, as Python's ``quopri`` and Go's reader read it."""
QP_FAR = _quoted_printable("".join(f"={ord(char):02X}" for char in KEY), filler=2_000_000)
"""Every character escaped, 2 MB past the part's header (the engine reads a window of 1 MiB)."""
QP_FOLDED = QP_FAR.replace(b"Encoding: quoted", b"Encoding:\r\n\tquoted")
"""Its part's header folded over two lines, as Go's ``textproto`` and JavaMail unfold it."""
MULTIPART = "multipart/form-data; boundary=b"

HIDDEN = [
    pytest.param(f"{FORM.decode()}; charset=utf-16", _utf16_form(), id="utf16_form"),
    pytest.param(FORM.decode(), _nul_text_form(), id="utf16_text_in_a_form"),
    pytest.param(MULTIPART, QP_LOWER, id="quoted_printable_lower_case"),
    pytest.param(MULTIPART, QP_FAR, id="quoted_printable_past_the_window"),
    pytest.param(MULTIPART, QP_FOLDED, id="quoted_printable_header_folded"),
]


@pytest.mark.parametrize("way", ["tls", "plain"])
@pytest.mark.parametrize(("content_type", "body"), HIDDEN)
def test_block_refuses_a_secret_in_a_reading_a_server_takes(
    tmp_path: Path, way: str, content_type: str, body: bytes
) -> None:
    """``--secrets block``: the request is refused ``403`` and the origin gets nothing."""
    with sites(tmp_path, SecretsMode.BLOCK) as served:
        answer = served.send(way, "/upload", {"Content-Type": content_type}, body)
        seen = served.seen(way)
    assert _status(answer) == 403, answer[:300]
    assert b"--secrets block" in answer
    assert seen == []


@pytest.mark.parametrize("way", ["tls", "plain"])
@pytest.mark.parametrize(
    ("content_type", "body"),
    [hidden for hidden in HIDDEN if hidden.id != "quoted_printable_lower_case"],
)
def test_redact_does_not_send_a_secret_it_cannot_replace(
    tmp_path: Path, way: str, content_type: str, body: bytes
) -> None:
    """``--secrets redact``: such a secret cannot be replaced where it stands: refused, the
    origin gets nothing."""
    with sites(tmp_path, SecretsMode.REDACT) as served:
        answer = served.send(way, "/upload", {"Content-Type": content_type}, body)
        seen = served.seen(way)
    assert _status(answer) == 403, answer[:300]
    assert b"cannot be replaced" in answer
    assert seen == []


@pytest.mark.parametrize("way", ["tls", "plain"])
def test_redact_replaces_a_lower_case_quoted_printable_secret_where_it_stands(
    tmp_path: Path, way: str
) -> None:
    """The redaction engine reads ``=5f`` as ``_`` too (as it reads ``=5F``): under ``redact``
    the secret is replaced where it stands, its escapes with it, and the request goes."""
    with sites(tmp_path, SecretsMode.REDACT) as served:
        answer = served.send(way, "/upload", {"Content-Type": MULTIPART}, QP_LOWER)
        seen = served.seen(way)
        bodies = [body for _, _, body in served.tls.seen]
    records = served.records()  # the run ended: its log is whole
    assert _status(answer) == 200, answer[:300]
    assert seen == ["/upload"]
    assert records and records[-1]["secrets"] == {"github_token": 1}
    if way == "tls":  # the plain origin keeps no bodies
        [sent] = bodies
        assert b"[REDACTED:github_token]" in sent and KEY[4:].encode() not in sent


def _assert_nowhere(log: Path, answer: bytes) -> None:
    text = log.read_text()
    assert KEY not in text and KEY.lower() not in text
    assert KEY.encode() not in answer and KEY.lower().encode() not in answer


@pytest.mark.parametrize("mode", [SecretsMode.BLOCK, SecretsMode.REDACT])
def test_a_token_as_an_xml_declarations_encoding_is_not_quoted(
    tmp_path: Path, mode: SecretsMode
) -> None:
    """In plain HTTP, a body whose XML declaration names a token as its encoding is refused
    ``415`` (a charset airlock does not read) without the token in the answer, the record
    (whose reason is the refusal's) or the end-of-run record; a name that reads as a
    charset's is still quoted, and so is a coding's (inside TLS)."""
    body = f'<?xml version="1.0" encoding="{KEY}"?><a/>'.encode()
    with sites(tmp_path, mode) as served:
        answer = served.send("plain", "/upload", {"Content-Type": "application/xml"}, body)
        named = served.send(
            "plain", "/upload", {"Content-Type": "text/plain; charset=IBM1047"}, b"hi"
        )
        encoded = served.send("tls", "/upload", {"Content-Encoding": "br"}, b"hi")
        log = served.log
    assert _status(answer) == 415, answer[:300]
    assert b"not one airlock reads" in answer
    _assert_nowhere(log, answer)
    assert _status(named) == 415 and b"'IBM1047' is not one airlock reads" in named
    assert _status(encoded) == 415 and b"Content-Encoding br cannot be decoded" in encoded


@pytest.mark.parametrize("way", ["tls", "plain"])
@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Content-Type": f"text/plain; charset={KEY}"}, id="charset"),
        pytest.param({"Content-Encoding": KEY}, id="content_encoding"),
    ],
)
def test_report_does_not_quote_a_token_named_as_a_charset_or_a_coding(
    tmp_path: Path, way: str, headers: dict[str, str]
) -> None:
    """``--secrets report``: the request goes (counted), and its record says why its body was
    not read decoded (``unchecked``) without quoting the name the client wrote."""
    with sites(tmp_path, SecretsMode.REPORT) as served:
        served.send(way, "/upload", headers, b"{}")
        seen = served.seen(way)
        records = served.records
        log = served.log
    assert seen == ["/upload"]
    [record] = records()
    assert record["secrets"] == {"github_token": 1}
    assert "not shown" in record["unchecked"]
    _assert_nowhere(log, b"")


@pytest.mark.parametrize("cut", [1, 3, 4])
def test_a_part_charset_cut_by_the_streamed_start_is_not_read_as_a_piece(cut: int) -> None:
    """``--secrets report`` reads a streamed multipart body's part charsets in its first 4 KB:
    a part's ``Content-Type`` line cut there is not read as the charset it would be cut to
    (``utf-3``, which airlock does not know, left the UTF-7 part unread as text); the part
    is read as UTF-7 once its line is whole, and its key counted."""
    import asyncio

    from airlock.egress.scan import XML_DECLARATION, BodyCount
    from airlock.redact import Redactor

    head = b'--b\r\nContent-Disposition: form-data; name="f"\r\nContent-Type: text/plain; charset='
    lead = XML_DECLARATION - cut - len(head) - len(b"--b\r\n\r\n\r\n")  # ``cut`` of utf-7 in it
    body = (
        b"--b\r\n\r\n" + b"x" * lead + b"\r\n"
        + head + b"utf-7\r\n\r\nkey "
        + KEY.encode("utf-7").replace(b"_", b"+AF8-")
        + b"\r\n--b--\r\n"
    )  # fmt: skip
    assert body.index(b"utf-7") + cut == XML_DECLARATION

    async def count() -> tuple[dict[str, int], str]:
        counter = BodyCount(Redactor(), None, MULTIPART.encode())
        for at in range(0, len(body), 1024):  # the first 4096 bytes, then the rest
            await counter.add(body[at : at + 1024])
        return await counter.total(), counter.unchecked

    assert asyncio.run(count()) == ({"github_token": 1}, "")
