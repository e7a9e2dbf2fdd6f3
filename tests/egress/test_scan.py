"""Secrets counted in a body fed in pieces: the same counts wherever the pieces are cut."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.egress.flows import redact_query
from airlock.egress.scan import (
    SecretScanner,
    SecretsMode,
    Uncheckable,
    check_gathered,
    count_secrets,
    redact_body,
)
from airlock.redact import Redactor
from airlock.redact.samples import KINDS, plant

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
AWS = "AKIAIOSFODNN7EXAMPLF"
REDACTOR = Redactor()
BODY = json.dumps({"a": "x" * 3000 + " token " + KEY, "k": AWS, "b": "y" * 2500}).encode() * 3


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40))
def test_counts_do_not_depend_on_the_cuts(sizes: list[int]) -> None:
    """Fed in pieces of any sizes, with small segments, the counts are the whole body's."""
    scanner = SecretScanner(REDACTOR, segment=2000, overlap=300)
    at = 0
    for size in sizes * 10:
        if at >= len(BODY):
            break
        scanner.feed(BODY[at : at + size])
        at += size
    scanner.feed(BODY[at:])
    assert scanner.finish() == {"github_token": 3, "aws_access_key_id": 3}


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=4000), min_size=1, max_size=40))
def test_counts_of_a_forwarded_body_do_not_depend_on_the_cuts(sizes: list[int]) -> None:
    """Fed while forwarded (segments scanned in a worker thread beside the loop), a body split
    anywhere, keys across segment and piece boundaries included, gets the whole body's counts."""
    body = BODY * 10  # 130 KB: the last window is scanned in a worker as well

    async def forward() -> dict[str, int]:
        scanner = SecretScanner(REDACTOR, segment=2000, overlap=300)
        at = 0
        for size in sizes * 100:
            if at >= len(body):
                break
            await scanner.add(body[at : at + size])
            at += size
        await scanner.add(body[at:])
        return await scanner.total()

    assert asyncio.run(forward()) == {"github_token": 30, "aws_access_key_id": 30}


def test_json_escaped_key_is_counted() -> None:
    """A key written with JSON \\u escapes is still found (the engine reads JSON escapes)."""
    escaped = json.dumps({"t": KEY}).replace("_", "\\u005f").encode()
    assert count_secrets(REDACTOR, escaped) == {"github_token": 1}


def test_redacted_body_keeps_its_json() -> None:
    """Redaction replaces the value and the body stays valid JSON of the same shape."""
    body, counts = redact_body(REDACTOR, json.dumps({"t": f"key {KEY}", "n": 1}).encode())
    assert counts == {"github_token": 1}
    assert KEY.encode() not in body
    assert set(json.loads(body)) == {"t", "n"}


def test_empty_body_has_no_secrets() -> None:
    """Nothing fed, nothing found."""
    assert SecretScanner(REDACTOR).finish() == {}


@pytest.mark.parametrize(
    ("target", "shown"),
    [
        ("/a", "/a"),
        ("/a?k=secret&q=2", "/a?k=…&q=…"),
        ("/a?flag&x=", "/a?flag&x=…"),
        ("/v1/messages?beta=true", "/v1/messages?beta=…"),
    ],
)
def test_query_values_are_redacted(target: str, shown: str) -> None:
    """Query names stay, values go."""
    assert redact_query(target) == shown


PIECES = [
    KEY,
    AWS,
    "password=Zk3Pq9Lm2Xw7abcQ;",
    '"token": "Q7vK2mZ9xR4tL8pW3nB6yH1cF5gJ0dSq"',
    "postgres://admin:Zk3Pq9Lm2Xw7@db.internal:5432/app",
    "\\u0067hp_Gmgdxr6SUtPeZ4KIonrmzAPslTyCmq4Gbu6c",
    "api_key=Q7vK2mZ9xR4tL8pW3nB6yH1cF5gJ0dS" * 2,
    "plain words and numbers 12345 ",
    "lorem ipsum dolor sit amet " * 20,
]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(PIECES), st.sampled_from([" ", "\n", ";", "\\n", ","])),
        max_size=60,
    )
)
def test_find_is_what_redact_stream_replaces(parts: list[tuple[str, str]]) -> None:
    """The engine's find (used by the scanner) names the spans redact_stream replaces."""
    body = "".join(piece + separator for piece, separator in parts).encode()
    report = REDACTOR.redact_stream(io.BytesIO(body), io.BytesIO())
    found = [(hit.kind, hit.start, hit.end) for hit in REDACTOR.find(body)]
    assert found == [(f.kind, f.start, f.end) for f in report.findings]
    scanner = SecretScanner(REDACTOR, segment=700, overlap=300)
    for at in range(0, len(body), 333):
        scanner.feed(body[at : at + 333])
    assert scanner.finish() == report.counts()


def test_decoded_undoes_gzip_and_deflate_in_order() -> None:
    import gzip
    import zlib

    from airlock.egress.scan import decoded

    body = b"hello " * 100
    assert decoded(gzip.compress(body), b"gzip") == body
    assert decoded(zlib.compress(body), b"deflate") == body
    raw = zlib.compressobj(wbits=-15)
    assert decoded(raw.compress(body) + raw.flush(), b"Deflate") == body  # raw deflate too
    both = gzip.compress(zlib.compress(body))
    assert decoded(both, b"deflate, gzip") == body
    assert decoded(body, b"identity") is body


@pytest.mark.parametrize(
    ("encoding", "body", "status"),
    [
        (b"br", b"xx", 415),
        (b"gzip, zstd", b"xx", 415),
        (b"gzip", b"not gzip", 400),
    ],
)
def test_decoded_refuses_what_it_cannot_check(encoding: bytes, body: bytes, status: int) -> None:
    from airlock.egress.scan import Uncheckable, decoded

    with pytest.raises(Uncheckable) as raised:
        decoded(body, encoding)
    assert raised.value.status == status


def test_decoded_stops_a_bomb_at_the_limit() -> None:
    import gzip

    from airlock.egress.scan import Uncheckable, decoded

    with pytest.raises(Uncheckable) as raised:
        decoded(gzip.compress(b"\0" * 200_000), b"gzip", limit=100_000)
    assert raised.value.status == 413


def test_stream_decoder_feeds_the_scan_decoded_and_says_what_it_could_not() -> None:
    import gzip

    from airlock.egress.scan import StreamDecoder

    body = b"token " * 5000
    packed = gzip.compress(body)
    decoder = StreamDecoder(b"gzip")
    out = b"".join(decoder.feed(packed[i : i + 100]) for i in range(0, len(packed), 100))
    assert out == body and decoder.unchecked == ""
    assert StreamDecoder(b"br").feed(b"xx") == b""
    assert "br" in StreamDecoder(b"br").unchecked
    assert StreamDecoder(None).feed(b"as is") == b"as is"


def test_stream_decoder_undoes_every_coding_in_turn() -> None:
    """``gzip, deflate`` (gzip applied first) is undone as :func:`decoded` undoes it, fed in
    pieces, a raw deflate body among them; a coding it cannot undo stops it, saying so."""
    import gzip
    import zlib

    from airlock.egress.scan import StreamDecoder, decoded

    body = b"token " * 5000
    raw = zlib.compressobj(wbits=-15)
    for packed, encoding in [
        (zlib.compress(gzip.compress(body)), b"gzip, deflate"),
        (gzip.compress(zlib.compress(body)), b"deflate, gzip"),
        (gzip.compress(raw.compress(body) + raw.flush()), b"deflate, gzip"),
    ]:
        decoder = StreamDecoder(encoding)
        out = b"".join(decoder.feed(packed[i : i + 100]) for i in range(0, len(packed), 100))
        assert out == body == decoded(packed, encoding) and decoder.unchecked == ""
    stopped = StreamDecoder(b"gzip, br")
    assert stopped.feed(b"xx") == b"" and "br" in stopped.unchecked


AWS_SECRET = "k9Qz+3vTq/Lm2Wx8Yp0Rn5Hs7Dj4Fg6Bc1Va3Ne2"
GITHUB = "ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"


def test_a_form_encoded_secret_is_found_blocked_and_redacted_in_place() -> None:
    """``aws_secret_access_key=…%2B…%2F…`` (what every form encoder writes) and ``ghp%5F…``:
    found decoded, blocked, and under redact replaced where they stand in the encoded body."""
    from urllib.parse import urlencode

    from airlock.egress.scan import SecretsMode, check_gathered
    from airlock.redact import Redactor

    redactor = Redactor()
    body = urlencode({"aws_secret_access_key": AWS_SECRET, "note": "a b/c", "t": GITHUB}).encode()
    body = body.replace(b"ghp_", b"ghp%5F")
    assert check_gathered(redactor, SecretsMode.BLOCK, body)[:2] == (
        None,
        {"aws_secret_access_key": 1, "github_token": 1},
    )
    redacted, found, decoded = check_gathered(redactor, SecretsMode.REDACT, body)
    assert redacted == (
        b"aws_secret_access_key=[REDACTED:aws_secret_access_key]&note=a+b%2Fc"
        b"&t=[REDACTED:github_token]"
    )
    assert found == {"aws_secret_access_key": 1, "github_token": 1} and not decoded


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    + "MIIEpAIBAAKCAQEA7x+9/" * 3
    + "\n-----END RSA PRIVATE KEY-----\n"
)
FORM = b"application/x-www-form-urlencoded"


@pytest.mark.parametrize("content_type", [FORM, FORM + b"; charset=UTF-8", b"text/plain, " + FORM])
def test_a_form_written_with_plus_for_spaces_is_read_as_its_reader_reads_it(
    content_type: bytes,
) -> None:
    """``curl --data-urlencode``, ``requests``' ``data=`` and HTML forms write a space as ``+``
    (and a ``+`` as ``%2B``): a PEM key and a named AWS secret key written so are found,
    blocked, redacted where they stand, and counted when forwarded as they come."""
    from urllib.parse import urlencode

    body = urlencode({"content": PEM, "note": f"aws_secret_access_key = {AWS_SECRET}"}).encode()
    assert b"BEGIN+RSA+PRIVATE+KEY" in body and b"aws_secret_access_key+%3D+" in body
    kinds = {"private_key_pem": 1, "aws_secret_access_key": 1}
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, content_type)[:2] == (
        None,
        kinds,
    )
    redacted, found, _ = check_gathered(REDACTOR, SecretsMode.REDACT, body, None, content_type)
    assert found == kinds
    assert redacted == (
        b"content=[REDACTED:private_key_pem]"
        b"&note=aws_secret_access_key+%3D+[REDACTED:aws_secret_access_key]"
    )

    assert _counted(body, None, content_type, cut=7) == (kinds, "")


def test_plus_is_a_space_only_in_a_form() -> None:
    """Outside a form a ``+`` is itself: a key holding one, beside an escape, is found as it
    is, and a JSON body's ``+`` never hides one."""
    body = json.dumps({"url": "/a%20b", "note": f"aws_secret_access_key = {AWS_SECRET}"})
    found = check_gathered(REDACTOR, SecretsMode.BLOCK, body.encode(), None, b"application/json")
    assert found[:2] == (None, {"aws_secret_access_key": 1})
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, b"a+b=c+d", None, FORM)[:2] == (
        b"a+b=c+d",
        {},
    )


def test_a_query_written_with_plus_for_spaces_is_read_that_way_too() -> None:
    from urllib.parse import urlencode

    from airlock.egress.scan import path_secrets

    target = "/v1/models?" + urlencode({"q": f"aws_secret_access_key = {AWS_SECRET}"})
    assert "+%3D+" in target
    assert path_secrets(REDACTOR, target, "/v1/models?q=…")[1] == {"aws_secret_access_key": 1}


def test_a_secret_found_both_ways_counts_once() -> None:
    """A key written plainly beside an unrelated escape is one secret, not two."""
    from airlock.egress.scan import SecretsMode, check_gathered
    from airlock.redact import Redactor

    body = f'{{"url": "https://example.com/a%20b", "key": "{GITHUB}"}}'.encode()
    redacted, found, _ = check_gathered(Redactor(), SecretsMode.REDACT, body)
    assert found == {"github_token": 1}
    assert redacted == body.replace(GITHUB.encode(), b"[REDACTED:github_token]")


def test_too_many_escapes_to_redact_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    from airlock.egress import scan
    from airlock.redact import Redactor

    monkeypatch.setattr(scan, "MAX_ESCAPES", 3)
    with pytest.raises(scan.Uncheckable) as raised:
        scan.check_gathered(Redactor(), scan.SecretsMode.REDACT, b"%41%42%43%44")
    assert raised.value.status == 413


@settings(max_examples=40, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from(
            [
                "".join(f"%{ord(char):02X}" for char in GITHUB),  # every character escaped
                GITHUB.replace("_", "%5F"),
                GITHUB,
                "postgres://admin:Zk3Pq9Lm2Xw7@db.internal:5432/app",
                "aws_secret_access_key=k9Qz%2B3vTq%2FLm2Wx8Yp0Rn5Hs7Dj4Fg6Bc1Va3Ne2",
                "50%25 off, a%20b ",
                "x" * 900,
            ]
        ),
        max_size=30,
    ),
    cut=st.integers(min_value=1, max_value=700),
)
def test_a_streamed_body_is_counted_as_block_judges_it(parts: list[str], cut: int) -> None:
    """A body with percent escapes, whatever its type (a JSON string holding ``%67%68%70…``),
    fed in pieces, escapes cut between them, with small segments: ``--secrets report``'s
    count is what ``--secrets block`` refuses it for."""
    from airlock.egress.scan import SecretsMode, check_gathered

    body = json.dumps({"content": " ".join(parts)}).encode()
    scanner = SecretScanner(REDACTOR, segment=1500, overlap=300, escapes=True)
    for at in range(0, len(body), cut):
        scanner.feed(body[at : at + cut])
    assert scanner.finish() == check_gathered(REDACTOR, SecretsMode.BLOCK, body)[1]


def test_a_raw_deflate_body_is_decoded_as_it_streams() -> None:
    """``Content-Encoding: deflate`` without zlib's header (raw deflate, as some clients send
    it) is decoded for the count as :func:`decoded` decodes it, fed in any pieces."""
    import zlib

    from airlock.egress.scan import StreamDecoder, decoded

    body = json.dumps({"content": f"my key {GITHUB}"}).encode()
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(body) + packer.flush()
    assert decoded(raw, b"deflate") == body
    for size in (1, 2, 7, len(raw)):
        for data in (raw, zlib.compress(body)):
            decoder = StreamDecoder(b"deflate")
            out = b"".join(decoder.feed(data[at : at + size]) for at in range(0, len(data), size))
            assert (out, decoder.unchecked) == (body, "")
    nonsense = StreamDecoder(b"deflate")
    assert nonsense.feed(b"neither zlib nor raw deflate") == b""
    assert "not valid deflate" in nonsense.unchecked


def test_every_gzip_member_is_checked_and_nothing_after_the_last_goes() -> None:
    """``gzip(harmless) + gzip(secret)`` is decoded whole (as gzip readers do); bytes after
    the compressed data are refused; a key in a gzip header's comment field is found."""
    import gzip
    import struct
    import zlib

    from airlock.egress.scan import SecretsMode, Uncheckable, check_gathered
    from airlock.redact import Redactor

    redactor = Redactor()
    two = gzip.compress(b"hello ") + gzip.compress(f"key {GITHUB}".encode())
    assert check_gathered(redactor, SecretsMode.BLOCK, two, b"gzip")[0] is None
    with pytest.raises(Uncheckable) as raised:
        check_gathered(redactor, SecretsMode.BLOCK, gzip.compress(b"hi") + b"trailing", b"gzip")
    assert raised.value.status == 400
    deflated = zlib.compress(b"hi") + b"trailing"
    with pytest.raises(Uncheckable):
        check_gathered(redactor, SecretsMode.BLOCK, deflated, b"deflate")
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(b"harmless") + packer.flush()
    header = b"\x1f\x8b\x08\x10" + struct.pack("<I", 0) + b"\x00\xff" + f"{GITHUB}\0".encode()
    trailer = struct.pack("<II", zlib.crc32(b"harmless"), len(b"harmless"))
    commented = header + raw + trailer
    assert gzip.decompress(commented) == b"harmless"
    assert check_gathered(redactor, SecretsMode.BLOCK, commented, b"gzip")[:2] == (
        None,
        {"github_token": 1},
    )


def test_a_gzip_header_comment_is_found_with_escapes_in_the_body_too() -> None:
    import struct
    import zlib

    from airlock.egress.scan import SecretsMode, check_gathered
    from airlock.redact import Redactor

    text = b"a=%41"
    packer = zlib.compressobj(wbits=-15)
    raw = packer.compress(text) + packer.flush()
    header = b"\x1f\x8b\x08\x10" + struct.pack("<I", 0) + b"\x00\xff" + f"{GITHUB}\0".encode()
    body = header + raw + struct.pack("<II", zlib.crc32(text), len(text))
    assert check_gathered(Redactor(), SecretsMode.BLOCK, body, b"gzip")[0] is None
    redacted, found, decoded = check_gathered(Redactor(), SecretsMode.REDACT, body, b"gzip")
    assert redacted == text and found == {"github_token": 1} and decoded


def test_the_stream_decoder_reads_every_gzip_member() -> None:
    import gzip

    from airlock.egress.scan import StreamDecoder

    body = gzip.compress(b"first ") + gzip.compress(b"second")
    decoder = StreamDecoder(b"gzip")
    out = b"".join(decoder.feed(body[i : i + 7]) for i in range(0, len(body), 7))
    assert out == b"first second" and decoder.unchecked == ""


def _counted(
    body: bytes, encoding: bytes | None, content_type: bytes | None = None, cut: int = 1000
) -> tuple[dict[str, int], str]:
    """``--secrets report``'s count of ``body`` fed in pieces of ``cut`` bytes, and why it
    was not read decoded to its end (``unchecked``)."""
    from airlock.egress.scan import BodyCount

    async def count() -> tuple[dict[str, int], str]:
        counter = BodyCount(REDACTOR, encoding, content_type)
        for at in range(0, len(body), cut):
            await counter.add(body[at : at + cut])
        return await counter.total(), counter.unchecked

    return asyncio.run(count())


def _named(name: str, text: bytes) -> bytes:
    """``text`` in gzip whose header names the file ``name``."""
    import gzip

    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", filename=name, mtime=0) as out:
        out.write(text)
    return packed.getvalue()


@pytest.mark.parametrize(
    ("body", "unchecked"),
    [
        pytest.param(f'{{"t": "{KEY}"}}'.encode(), "the body is not valid gzip", id="not_gzip"),
        pytest.param(
            gzip.compress(b'{"a": 1}') + f'{{"t": "{KEY}"}}'.encode(),
            "bytes after the gzip data",
            id="bytes_after",
        ),
        pytest.param(_named(f"{KEY}.txt", b'{"a": 1}'), "", id="file_name"),
    ],
)
def test_a_compressed_body_is_counted_as_its_bytes_too(body: bytes, unchecked: str) -> None:
    """Under ``--secrets report`` a body with ``Content-Encoding: gzip`` leaves as its bytes:
    a key in them is counted when the decoding cannot reach it (a body that is not gzip,
    bytes after the gzip data, a gzip header's file name), as ``block`` counts it, and why
    the body was not read decoded to its end is said."""
    assert _counted(body, b"gzip") == ({"github_token": 1}, unchecked)


def test_a_body_decoded_past_the_gathered_limit_is_still_counted() -> None:
    """A 66 KB gzip upload of 65 MiB of zeros and then a key: counted (a streamed count
    holds nothing of what it decoded), nothing left unchecked."""
    import zlib

    packer = zlib.compressobj(9, zlib.DEFLATED, 31)
    body = b"".join(packer.compress(bytes(1 << 20)) for _ in range(65))
    body += packer.compress(f'{{"t": "{KEY}"}}'.encode()) + packer.flush()
    assert len(body) < 70_000
    assert _counted(body, b"gzip") == ({"github_token": 1}, "")


def test_a_streamed_decoding_stops_at_its_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """One deflate stream is decoded whole past the floor (it cannot give more than about
    1032 times what was sent); codings nested in one another stop at the floor, and any
    body at the ceiling; either way ``unchecked`` says so."""
    import gzip

    from airlock.egress import scan

    zeros = gzip.compress(bytes(8 << 20))
    whole = scan.StreamDecoder(b"gzip", floor=1 << 20)
    assert sum(map(len, whole.pieces(zeros))) == 8 << 20 and whole.unchecked == ""
    nested = scan.StreamDecoder(b"gzip, gzip", floor=1 << 20)
    assert sum(map(len, nested.pieces(gzip.compress(zeros)))) == 1 << 20
    assert nested.unchecked == f"the body decoded passed {1 << 20} bytes: the rest not read"
    assert list(nested.pieces(b"more")) == []
    capped = scan.StreamDecoder(b"gzip", floor=1 << 20, ceiling=3 << 20)
    assert sum(map(len, capped.pieces(zeros))) == 3 << 20
    assert "passed 3145728 bytes" in capped.unchecked
    assert all(
        len(piece) <= scan.DECODE_STEP for piece in scan.StreamDecoder(b"gzip").pieces(zeros)
    )


def test_a_token_spelled_in_escapes_is_left_out_of_the_logged_path() -> None:
    from airlock.egress.scan import path_secrets
    from airlock.redact import Redactor

    escaped = "".join(f"%{ord(char):02x}" for char in GITHUB)
    logged, found = path_secrets(Redactor(), f"/x/{escaped}", f"/x/{escaped}")
    assert found == {"github_token": 1}
    assert GITHUB not in logged and escaped not in logged


def _every_reading(target: str) -> dict[str, int]:
    """The secrets a scan of every reading of ``target`` finds, with no precheck."""
    import urllib.parse
    from collections import Counter

    counts: Counter[str] = Counter()
    unquote, unquote_plus = urllib.parse.unquote, urllib.parse.unquote_plus
    for text in (target, unquote(target, errors="replace"), unquote_plus(target, errors="replace")):
        counts |= Counter(hit.kind for hit in REDACTOR.find(text.encode("utf-8", "replace")))
    return dict(counts)


@settings(max_examples=300, deadline=None)
@given(
    seed=st.integers(min_value=0, max_value=2**32),
    kind=st.sampled_from(sorted(KINDS)),
    place=st.sampled_from(["/v1/x/{}", "/v1/x?q={}", "/v1/x?{}"]),
    escaped=st.booleans(),
)
def test_the_path_precheck_passes_every_secret_the_engine_finds(
    seed: int, kind: str, place: str, escaped: bool
) -> None:
    """A secret of any kind, in any context the corpus plants it in, written in a path, a
    query's value or a query as sent or percent-escaped, is counted: the precheck that spares
    an ordinary path the scan never stops one the engine would find."""
    import random
    import urllib.parse

    from airlock.egress.scan import path_secrets

    text = plant(random.Random(seed), kind).text
    target = place.format(urllib.parse.quote(text, safe="/=&:@") if escaped else text)
    assert path_secrets(REDACTOR, target, target)[1] == _every_reading(target)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/messages?password=Xk9!pQ2@rT7z",
        "/v1/messages?db=postgres://admin:Xk9!pQ2@rT7z@db.internal:5432/app",
        "/v1/messages/pwd:Xk9!pQ2@rT7z",
        "/v1/messages?%70assword%3DXk9!pQ2%40rT7z",
    ],
)
def test_a_password_in_a_target_is_counted(target: str) -> None:
    """A password or a database URL's, in a query's value or the path (no run of token
    characters in it), is found."""
    from airlock.egress.scan import path_secrets

    assert path_secrets(REDACTOR, target, target)[1] == _every_reading(target) != {}


@pytest.mark.parametrize(
    "target",
    [
        "/v1/messages?beta=true",
        "/v1/models?limit=20",
        "/api/eval/sdk-x",
    ],
)
def test_an_ordinary_path_is_not_scanned(target: str) -> None:
    """Paths like the agent's own hold nothing the precheck looks for: no scan."""
    from urllib.parse import unquote

    from airlock.egress.scan import could_hold_secrets

    assert not any(could_hold_secrets(text) for text in (target, unquote(target)))


@pytest.mark.parametrize(
    ("target", "gone"),
    [
        ("/v1/messages/password=Xk9!pQ2@rT7z", "pQ2@rT7z"),
        ("/v1/x/%70assword%3DXk9!pQ2%40rT7z", "pQ2"),
        ("/v1/x/postgres://admin:Xk9!pQ2@db.internal/app", "Xk9!pQ2"),
        (f"/v1/x/[REDACTED:{GITHUB.lower()}]/password=Xk9!pQ2@rT7z", GITHUB.lower()[4:]),
    ],
)
def test_every_secret_found_in_a_path_leaves_the_logged_path(target: str, gone: str) -> None:
    """The logged path has each secret the engine finds replaced by its marker, not only the
    runs of token characters: a password's punctuation keeps no part of it in the log."""
    from airlock.egress.scan import path_secrets

    logged, found = path_secrets(REDACTOR, target, target)
    assert found
    assert gone not in logged and "[REDACTED" in logged


def test_header_values_are_scanned_but_the_sign_in_ones() -> None:
    """Every request header but the sign-in ones is read, as ``name: value`` in one pass:
    each secret counted and replaced where it stands in its value; ``Authorization``,
    ``Proxy-Authorization``, ``X-Api-Key`` and ``Cookie`` are left as they are, in any case;
    a secret reaching into a header's name cannot be replaced."""
    from airlock.egress.scan import header_secrets

    key = KEY.encode()
    headers = [
        (b"Host", b"api.example.com"),
        (b"authorization", b"Bearer " + key),
        (b"X-API-KEY", key),
        (b"Cookie", b"session=" + key),
        (b"Proxy-Authorization", b"Basic " + key),
        (b"X-Debug", key),
        (b"Referer", b"https://example.org/?token=" + key + b"&a=1"),
        (b"User-Agent", b"curl/8.5.0"),
    ]
    found, redacted = header_secrets(REDACTOR, headers)
    assert found == {"github_token": 2}
    marker = b"[REDACTED:github_token]"
    assert redacted == [
        *headers[:5],
        (b"X-Debug", marker),
        (b"Referer", b"https://example.org/?token=" + marker + b"&a=1"),
        headers[7],
    ]
    clean = headers[:5] + headers[7:]
    assert header_secrets(REDACTOR, clean) == ({}, clean)
    assert header_secrets(REDACTOR, []) == ({}, [])
    assert header_secrets(REDACTOR, [(b"X-" + key, b"1")]) == ({"github_token": 1}, None)


def test_a_target_is_scanned_for_the_users_own_rules() -> None:
    """A rule of the user's own may find what the precheck does not look for."""
    from airlock.egress.scan import path_secrets
    from airlock.redact.patterns import Rule

    mine = Redactor([Rule("employee_id", r"emp(?P<secret>[0-9]{6})", "emp")])
    logged, found = path_secrets(mine, "/v1/x/emp123456", "/v1/x/emp123456")
    assert found == {"employee_id": 1} and "123456" not in logged


@pytest.mark.parametrize(
    ("content_type", "start", "codec"),
    [
        (b"application/json; charset=utf-16", b'{"a', "utf-16"),
        (b'text/plain; Charset = "UTF-32LE"', b"", "utf-32-le"),
        (b"application/json; charset=utf-7", b"{", "utf-7"),  # +AGc- is g
        (b"text/plain; charset=ISO-2022-JP", b"GITH", "iso2022_jp"),  # ESC ( B is nothing
        (b"text/plain; charset=csISO2022KR", b"GITH", "iso2022_kr"),
        (b"text/plain; charset=hz-gb-2312", b"GITH", "hz"),  # ~ and a newline are nothing
        (b"text/plain; charset=shift_jis", b"GITH", None),  # no shift reads as nothing
        (b"application/json", "{".encode("utf-16"), "utf-16"),
        (b"application/json", '{"'.encode("utf-16-be"), "utf-16-be"),
        (None, "{".encode("utf-32"), "utf-32"),
        (b"application/json; charset=utf-8", b'{"a', None),
        (b"application/json; charset=latin-1", b'{"a', None),
        (None, b'{"ab', None),
        # a quoted charset's quoted pairs undone, as RFC 9110 reads them
        (b'application/json; charset="utf\\-7"', b"{", "utf-7"),
        (b'application/json; charset="\\u\\t\\f\\-\\7"', b"{", "utf-7"),
        (b"application/json; charset='cp037'", b"", "cp037"),  # EBCDIC: no letter as itself
        # in another parameter's quoted value: a reader searching the value takes it
        (b'multipart/form-data; boundary="x; charset=utf-7"', b"", "utf-7"),
        # an XML declaration's encoding: in ASCII, in EBCDIC, or none in EBCDIC (EBCDIC then)
        (b"application/xml", b'<?xml version="1.0" encoding="UTF-16"?>', "utf-16"),
        (None, '<?xml version="1.0" encoding="IBM037"?><a/>'.encode("cp037"), "cp037"),
        (None, '<?xml version="1.0"?><a/>'.encode("cp500"), "cp037"),
        (b"text/xml; charset=utf-8", b'<?xml version="1.0" encoding="latin-1"?>', None),
        # RFC 2231, as Werkzeug, Django and Python's email read it
        (b"application/x-www-form-urlencoded; charset*=utf-8''utf-7", b"", "utf-7"),
        (b"application/x-www-form-urlencoded; charset*=''utf%2D7", b"", "utf-7"),
        (b"text/plain; charset*0=utf; charset*1=-7", b"", "utf-7"),
        (b"text/plain; charset*0*=''utf; charset*1*=%2D7", b"", "utf-7"),
        # ASCII reads as itself, but another byte reads as ASCII (Mac Arabic's 0xDF is _)
        (b"text/plain; charset=mac_arabic", b"", "mac-arabic"),
        (b"text/plain; charset=raw_unicode_escape", b"", "raw-unicode-escape"),
        # names other readers use that Python has no codec of that name for
        (b"application/octet-stream; charset=binary", b"", None),
        (b"text/plain; charset=Windows-31J", b"", None),
        # a part's own charset in a multipart body
        (
            b"multipart/form-data; boundary=b",
            b"--b\r\nContent-Disposition: form-data; name=q\r\n"
            b"Content-Type: text/plain; charset=utf-7\r\n\r\nx\r\n--b--\r\n",
            "utf-7",
        ),
        # an XML declaration padded with spaces (XML allows it) still names its encoding
        (None, b'<?xml version="1.0"' + b" " * 600 + b'encoding="utf-7"?><a/>', "utf-7"),
    ],
)
def test_wide_charset(content_type: bytes | None, start: bytes, codec: str | None) -> None:
    """A body whose text ASCII is not in, named by a charset its readers may take or told by
    its first bytes."""
    from airlock.egress.scan import wide_charset

    assert wide_charset(content_type, start) == codec


@pytest.mark.parametrize(
    ("content_type", "start", "why"),
    [
        (b"application/json; charset=IBM1047", b"", "'IBM1047' is not one airlock reads"),
        (b"application/json; charset=utf-7-imap", b"", "'utf-7-imap' is not one airlock"),
        (b"application/json; charset=base64", b'{"a', "'base64' is not one"),  # not of text
        (b"application/json; charset=no-such", b'{"a', "'no-such' is not one"),
        (b"application/xml", b'<?xml version="1.0" encoding="IBM1047"?>', "'IBM1047'"),
        (b"text/plain; charset=utf-7", b'<?xml encoding="cp037"?>', "more than one reading"),
        (b"application/xml", b'<?xml version="1.0" encoding="utf-8\x00"?>', "not one airlock"),
        (None, b'<?xml version="1.0"' + b" " * 5000, "does not end in 4096 bytes"),
    ],
)
def test_a_charset_airlock_does_not_read_is_refused(
    content_type: bytes, start: bytes, why: str
) -> None:
    """A charset Python has no codec for may still be one the origin's reader knows (iconv's
    IBM1047 and UTF-7-IMAP read a key that is no ASCII in the body): ``redact`` and ``block``
    refuse it (``415``), ``report`` counts the body as its bytes and says it was not read as
    text."""
    from airlock.egress.scan import WideText, wide_charset

    with pytest.raises(Uncheckable) as refused:
        wide_charset(content_type, start)
    assert refused.value.status == 415 and why in refused.value.why
    body = start + "ghp_".encode("utf-16-le") + b"x" * 600
    with pytest.raises(Uncheckable):
        check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, content_type)
    counted = WideText(REDACTOR, content_type)
    asyncio.run(counted.add(body))
    assert asyncio.run(counted.total()) == {}
    assert why in counted.unchecked


def test_a_key_in_ebcdic_is_found_by_the_charset_or_the_xml_declaration() -> None:
    """EBCDIC reads no ASCII letter as itself: a key in it is found read as text, named by
    ``charset=cp037`` or by an XML declaration in EBCDIC with no charset at all."""
    document = f'<?xml version="1.0" encoding="IBM037"?><t>{GITHUB}</t>'.encode("cp037")
    assert GITHUB.encode() not in document
    for content_type in (b"application/xml; charset=cp037", b"application/xml", None):
        assert check_gathered(REDACTOR, SecretsMode.BLOCK, document, None, content_type)[0] is None


@pytest.mark.parametrize("cut", [1, 3, 1000])
def test_a_utf16_body_is_counted_as_it_streams(cut: int) -> None:
    """``--secrets report``'s count of a UTF-16 body fed in any pieces is what ``block``
    refuses it for; a UTF-8 body is counted once."""
    from airlock.egress.scan import SecretsMode, check_gathered

    def count(body: bytes, content_type: bytes) -> dict[str, int]:
        return _counted(body, None, content_type, cut)[0]

    text = json.dumps({"content": f"my key {GITHUB}"})
    wide = text.encode("utf-16")
    assert count(wide, b"application/json") == {"github_token": 1}
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, wide)[1] == {"github_token": 1}
    assert count(text.encode(), b"application/json") == {"github_token": 1}


@pytest.mark.parametrize("codec", ["utf-16", "utf-32"])
@pytest.mark.parametrize("cut", [1, 3, 1000])
def test_a_wide_body_without_a_byte_order_mark_is_counted_as_it_streams(
    codec: str, cut: int
) -> None:
    """A body whose charset is ``utf-16`` or ``utf-32`` and that has no byte-order mark is
    read in the machine's order as it streams, as a gathered body is: ``report`` counts what
    ``block`` refuses (the count used to fail on the missing mark)."""
    import sys

    from airlock.egress.scan import SecretsMode, check_gathered

    body = json.dumps({"content": f"my key {GITHUB}"}).encode(f"{codec}-{sys.byteorder[0]}e")
    content_type = f"application/json; charset={codec}".encode()
    assert not body.startswith((b"\xff\xfe", b"\xfe\xff"))
    assert _counted(body, None, content_type, cut) == ({"github_token": 1}, "")
    gathered = check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, content_type)
    assert gathered[:2] == (None, {"github_token": 1})


def test_a_body_its_charset_cannot_read_is_counted_as_its_bytes() -> None:
    """``charset=punycode`` reads ASCII alone: a body with other bytes is counted as its
    bytes, ``unchecked`` saying it could not be read as text; gathered, it is refused ``415``."""
    from airlock.egress.scan import SecretsMode, Uncheckable, check_gathered

    body = b"\xff " + f"key {GITHUB}".encode()
    content_type = b"text/plain; charset=punycode"
    counted, unchecked = _counted(body, None, content_type)
    assert counted == {"github_token": 1}
    assert unchecked.startswith("the body cannot be read as its charset")
    for mode in (SecretsMode.REDACT, SecretsMode.BLOCK):
        with pytest.raises(Uncheckable) as refused:
            check_gathered(REDACTOR, mode, body, None, content_type)
        assert refused.value.status == 415


@pytest.mark.parametrize(
    ("charset", "cut_by"),
    [("iso-2022-jp", b"\x1b(B"), ("iso-2022-jp", b"\x1b(J"), ("hz-gb-2312", b"~\n")],
)
def test_a_key_cut_by_shift_sequences_is_read_as_its_charset_reads_it(
    charset: str, cut_by: bytes
) -> None:
    """A key cut in two by a shift sequence its charset reads as nothing is read whole: counted
    as it streams, refused under ``block``, and refused under ``redact``, which cannot replace
    it where it stands."""
    from airlock.egress.scan import SecretsMode, Uncheckable, check_gathered

    body = b"GITHUB_TOKEN=" + GITHUB[:10].encode() + cut_by + GITHUB[10:].encode() + b"\n"
    content_type = f"text/plain; charset={charset}".encode()
    assert GITHUB in body.decode(charset) and count_secrets(REDACTOR, body) == {}
    assert _counted(body, None, content_type, 3) == ({"github_token": 1}, "")
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, content_type)[:2] == (
        None,
        {"github_token": 1},
    )
    with pytest.raises(Uncheckable) as refused:
        check_gathered(REDACTOR, SecretsMode.REDACT, body, None, content_type)
    assert refused.value.status == 403 and refused.value.secrets == {"github_token": 1}


def test_redact_refuses_a_secret_it_cannot_replace_where_it_stands() -> None:
    """A UTF-16 body holding a key: ``redact`` fails closed with ``403`` and the count; one
    holding none leaves as it came."""
    from airlock.egress.scan import SecretsMode, Uncheckable, check_gathered

    body = json.dumps({"content": f"my key {GITHUB}"}).encode("utf-16")
    with pytest.raises(Uncheckable) as refused:
        check_gathered(REDACTOR, SecretsMode.REDACT, body, None, b"text/plain; charset=utf-16")
    assert refused.value.status == 403 and refused.value.secrets == {"github_token": 1}
    assert "cannot be replaced" in refused.value.why and GITHUB not in refused.value.why
    harmless = json.dumps({"content": "hello"}).encode("utf-16")
    assert check_gathered(REDACTOR, SecretsMode.REDACT, harmless) == (harmless, {}, False)


def _multipart(*parts: tuple[str, bytes]) -> bytes:
    """A ``multipart/form-data`` body (boundary ``XyZ``) of ``(content type, content)`` parts."""
    out = b""
    for number, (kind, content) in enumerate(parts):
        out += (
            (
                f'--XyZ\r\nContent-Disposition: form-data; name="f{number}"; filename="f{number}"'
                f"\r\nContent-Type: {kind}\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    return out + b"--XyZ--\r\n"


ENV_FILE = f"GITHUB_TOKEN={GITHUB}\n"
UTF16_PART = ("text/plain; charset=utf-16", ENV_FILE.encode("utf-16"))
BINARY_PART = ("application/octet-stream", bytes(range(256)) * 8)


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-32-le"])
@settings(max_examples=15, deadline=None)
@given(cut=st.integers(min_value=1, max_value=700), at=st.integers(min_value=0, max_value=3000))
def test_a_utf16_part_among_other_bytes_is_counted_as_it_streams(
    codec: str, cut: int, at: int
) -> None:
    """A form's file part in UTF-16 or UTF-32 among other parts, wherever it falls and however
    the body is cut, with small segments: ``--secrets report`` counts its key (the window is
    read with its NULs left out too), as ``block`` refuses it."""
    from airlock.egress.scan import SecretsMode, check_gathered

    body = _multipart(
        ("text/plain", b"x" * at),
        BINARY_PART,
        ("text/plain; charset=" + codec, ENV_FILE.encode(codec)),
    )
    assert count_secrets(REDACTOR, body) == {}
    scanner = SecretScanner(REDACTOR, segment=1500, overlap=300, escapes=True, nuls=True)
    for start in range(0, len(body), cut):
        scanner.feed(body[start : start + cut])
    assert scanner.finish() == {"github_token": 1}
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, body)[:2] == (None, {"github_token": 1})
    assert _counted(body, None, b"multipart/form-data; boundary=XyZ") == ({"github_token": 1}, "")


def test_redact_refuses_a_utf16_part_it_cannot_replace_and_replaces_the_rest() -> None:
    """Under ``redact`` a key in a form's UTF-16 part is refused ``403`` (it cannot be replaced
    where it stands), beside a plain key too; a plain key beside binary bytes that hold text
    with NULs is replaced as ever."""
    from airlock.egress.scan import SecretsMode, Uncheckable, check_gathered

    plain = ("text/plain", f"key={KEY}".encode())
    for parts in [(UTF16_PART,), (plain, UTF16_PART)]:
        with pytest.raises(Uncheckable) as refused:
            check_gathered(REDACTOR, SecretsMode.REDACT, _multipart(*parts))
        assert refused.value.status == 403 and "cannot be replaced" in refused.value.why
        assert refused.value.secrets == {"github_token": len(parts)}
    names = ("application/zip", "\0".join(["archive", "README.md", "notes.txt"]).encode("utf-16"))
    body = _multipart(BINARY_PART, names, plain)
    redacted, found, decoded = check_gathered(REDACTOR, SecretsMode.REDACT, body)
    assert redacted == body.replace(KEY.encode(), b"[REDACTED:github_token]")
    assert found == {"github_token": 1} and not decoded
    harmless = _multipart(BINARY_PART, names)
    assert check_gathered(REDACTOR, SecretsMode.REDACT, harmless) == (harmless, {}, False)


def _form(size: int) -> bytes:
    """A form of about ``size`` bytes, with percent escapes and a key (``ghp%5F…``)."""
    filler = "&note=" + "a b/c " * (size // 6)
    return f"t={GITHUB}{filler}".replace("ghp_", "ghp%5F").encode()


CHECKED_COPIES = [
    pytest.param("redact", _form(100_000), None, id="escapes_decoded"),
    pytest.param(
        "redact", json.dumps({"k": KEY, "x": "y" * 100_000}).encode(), None, id="redacted"
    ),
    pytest.param(
        "block",
        json.dumps({"content": "hello " * 20_000}).encode("utf-16"),
        b"application/json; charset=utf-16",
        id="wide_text",
    ),
    pytest.param(
        "block",
        b"--XyZ\r\n\r\n" + ("hello " * 20_000).encode("utf-16") + b"\r\n--XyZ--\r\n",
        b"multipart/form-data; boundary=XyZ",
        id="without_nuls",
    ),
]


@pytest.mark.parametrize(("mode", "body", "content_type"), CHECKED_COPIES)
def test_the_copies_a_check_makes_are_charged_before_they_are_made(
    mode: str, body: bytes, content_type: bytes | None
) -> None:
    """A body held within a budget that others leave no room in for the copies its check
    would make (the body decoded of its escapes, the redacted body, the text of a UTF-16 body)
    is refused ``503`` saying why, before they are made; one whose copies alone would pass
    the whole budget is refused ``413`` (waiting would not help). With room, the check gives
    what it gives without a budget, and what it took is given back but the body that
    leaves."""
    from airlock.egress.scan import (
        BUSY_CHECKED,
        Budget,
        Held,
        SecretsMode,
        Uncheckable,
        check_gathered,
    )

    secrets = SecretsMode(mode)
    budget = Budget(20 * len(body))
    others = Held(budget)
    assert others.take(budget.total - len(body) - 1_000)  # other requests' bodies
    held = Held(budget)
    assert held.take(len(body))  # the body, gathered
    with pytest.raises(Uncheckable) as refused:
        check_gathered(REDACTOR, secrets, body, None, content_type, held.grow)
    assert refused.value.status == 503 and refused.value.why == BUSY_CHECKED
    assert "send it again shortly" in refused.value.why
    held.settle(len(body))
    assert held.size == len(body)

    alone = Held(Budget(len(body) + 1_000))  # its copies alone pass the whole budget
    assert alone.take(len(body))
    with pytest.raises(Uncheckable) as never:
        check_gathered(REDACTOR, secrets, body, None, content_type, alone.grow)
    assert never.value.status == 413 and "on their own" in never.value.why
    alone.settle(len(body))
    assert alone.size == len(body)

    roomy = Held(Budget(20 * len(body)))
    roomy.take(len(body))
    checked = check_gathered(REDACTOR, secrets, body, None, content_type, roomy.grow)
    assert roomy.size > len(body) + 10_000  # its copies were charged
    assert checked == check_gathered(REDACTOR, secrets, body, None, content_type)
    leaving = checked[0]
    roomy.settle(len(body), len(leaving) if leaving is not None and leaving is not body else 0)
    assert roomy.size == len(body) + (len(leaving) if leaving not in (None, body) else 0)


def test_a_body_without_secrets_is_not_copied() -> None:
    """Under ``redact`` a body with no secret leaves as the very object it came as, nothing
    charged for it; one with a secret leaves as a copy charged to the budget, byte for byte."""
    from airlock.egress.scan import Budget, Held, SecretsMode, check_gathered

    clean = json.dumps({"x": "y" * 200_000}).encode()
    held = Held(Budget(1 << 30))
    assert check_gathered(REDACTOR, SecretsMode.REDACT, clean, grow=held.take)[0] is clean
    assert held.size == 0
    keyed = clean[:-2] + f' {KEY}"}}'.encode()
    redacted = check_gathered(REDACTOR, SecretsMode.REDACT, keyed, grow=held.take)[0]
    assert redacted is not None and b"[REDACTED:github_token]" in redacted
    assert held.size == len(redacted)


def test_the_escape_map_holds_a_few_bytes_an_escape() -> None:
    """200,000 percent escapes are mapped back in a compact table, the body decoded in one
    copy: the scan's memory stays a few times the body's size (Python objects for each
    escape cost some 50 MB here)."""
    import tracemalloc

    from airlock.egress.scan import escaped_hits

    body = b"ab%2F" * 200_000  # a 1 MB body
    escaped_hits(REDACTOR, body[:5_000])  # the engine's caches, warm
    tracemalloc.start()
    try:
        hits = escaped_hits(REDACTOR, body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * len(body), peak
    assert hits is not None and list(hits) == []


def test_a_gathered_body_is_scanned_a_window_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine is never asked for the hits of a whole large body at once (a body dense
    with secrets would hold one object per hit): counted, or read with its escapes decoded,
    it is scanned a window at a time, as it is redacted."""
    from airlock.egress.scan import escaped_hits
    from airlock.redact.engine import CHUNK, OVERLAP, Redactor

    looked_at: list[int] = []
    hits = Redactor._hits

    def spy(self: Redactor, window: bytes, scan_from: int, safe: int) -> object:
        looked_at.append(len(window))
        return hits(self, window, scan_from, safe)

    monkeypatch.setattr(Redactor, "_hits", spy)
    body = (b"x" * 999 + b" " + KEY.encode() + b" ") * 3_000  # 3 MB, a key every kB
    assert count_secrets(REDACTOR, body) == {"github_token": 3_000}
    assert looked_at and max(looked_at) <= CHUNK + 2 * OVERLAP
    looked_at.clear()
    found = escaped_hits(REDACTOR, body.replace(b"ghp_", b"ghp%5F"))
    assert looked_at and max(looked_at) <= CHUNK + 2 * OVERLAP
    assert found is not None and len(list(found)) == 3_000


def test_more_secrets_than_can_be_redacted_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past ``MAX_SPANS`` secrets in a body with percent escapes, ``redact`` refuses it
    ``413`` saying why, with the counts; ``block`` refuses it as any body with a secret,
    every one counted; a streamed count (``report``) still counts them all."""
    from airlock.egress import scan

    monkeypatch.setattr(scan, "MAX_SPANS", 3)
    body = b"&".join(b"k%d=%s" % (n, KEY.encode()) for n in range(5)) + b"&n=a%20b"
    with pytest.raises(scan.Uncheckable) as refused:
        scan.check_gathered(REDACTOR, scan.SecretsMode.REDACT, body)
    assert refused.value.status == 413
    assert "secrets to redact in place" in refused.value.why
    assert refused.value.secrets == {"github_token": 5}
    assert scan.check_gathered(REDACTOR, scan.SecretsMode.BLOCK, body)[:2] == (
        None,
        {"github_token": 5},
    )
    scanner = SecretScanner(REDACTOR, escapes=True)
    scanner.feed(body)
    assert scanner.finish() == {"github_token": 5}
    monkeypatch.setattr(scan, "MAX_SPANS", 5)  # at the cap: redacted in place
    redacted = scan.check_gathered(REDACTOR, scan.SecretsMode.REDACT, body)[0]
    assert redacted is not None and redacted.count(b"[REDACTED:github_token]") == 5


@pytest.mark.parametrize(
    "codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"]
)
def test_wide_text_read_in_steps_is_the_text_read_whole(
    codec: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A UTF-16 or UTF-32 body read a step at a time (each step charged) is the text it reads
    as whole: byte-order marks, none (the machine's order), surrogates and bad bytes
    wherever the steps cut."""
    import random

    from airlock.egress import scan

    rng = random.Random(codec)
    units = [b"\x00", b"\xd8", b"\xdc", b"\xff", b"\xfe", b"A", b"\x01", b"\xff\xfe", b"\xfe\xff"]
    units += [b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"]  # UTF-32's marks
    for _ in range(400):
        body = b"".join(rng.choice(units) for _ in range(rng.randrange(30)))
        monkeypatch.setattr(scan, "DECODE_STEP", rng.choice([1, 2, 3, 5, 8]))
        held = scan.Held(scan.Budget())
        text = scan._as_utf8(body, codec, held.take)
        assert text == body.decode(codec, errors="replace").encode("utf-8"), body
        assert held.size == len(text)


def test_a_compressed_body_decoded_past_the_budget_is_refused_by_who_holds_it() -> None:
    """Decoding a gzip body is charged step by step: past a budget other requests hold, it is
    ``503`` (send it again shortly); past the whole budget on its own, ``413``."""
    from airlock.egress.scan import BUSY_DECODED, Budget, Held, Uncheckable, decoded

    body = gzip.compress(b"0" * 4_000_000)
    budget = Budget(5_000_000)
    others = Held(budget)
    assert others.take(3_000_000)
    refused = Held(budget)
    with pytest.raises(Uncheckable) as busy:
        decoded(body, b"gzip", grow=refused.grow)
    assert (busy.value.status, busy.value.why) == (503, BUSY_DECODED)
    refused.release()
    others.release()
    alone = Held(Budget(1_000_000))
    with pytest.raises(Uncheckable) as never:
        decoded(body, b"gzip", grow=alone.grow)
    assert never.value.status == 413 and "on their own" in never.value.why
    assert decoded(body, b"gzip", grow=Held(budget).grow) == b"0" * 4_000_000


@pytest.mark.parametrize("codec", ["utf-32-le", "percent-escaped"])
def test_the_name_beside_a_value_is_seen_across_a_segment_cut(codec: str) -> None:
    """The left context kept across a segment cut holds the name a value is found by
    (``AWS_SECRET_ACCESS_KEY=…``) in UTF-32 and percent-escaped text too, wherever the cut
    falls: the counts are the whole body's."""
    line = "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI8K7MDENGnbPxRfiCYzXAMPLEKEY\n"
    for pad in range(0, 400, 3):
        text = "x " * 1000 + " " * pad + line + "y " * 1000
        if codec == "percent-escaped":
            body = "".join(f"%{ord(c):02X}" for c in text).encode()
        else:
            body = text.encode(codec)
        scanner = SecretScanner(REDACTOR, segment=2000, overlap=300, escapes=True, nuls=True)
        for at in range(0, len(body), 1000):
            scanner.feed(body[at : at + 1000])
        assert scanner.finish() == {"aws_secret_access_key": 1}, pad


def test_a_key_in_a_unicode_escape_body_is_counted_as_block_judges_it() -> None:
    """``charset=unicode_escape`` reads ``\\x5f`` as ``_``: the body is read decoded, so
    ``report`` counts the key ``block`` refuses."""
    from airlock.egress.scan import SecretsMode, check_gathered

    body = json.dumps({"k": KEY}).replace("_", "\\x5f").encode()
    content_type = b"application/json; charset=unicode_escape"

    assert _counted(body, None, content_type, cut=3)[0] == {"github_token": 1}
    blocked = check_gathered(REDACTOR, SecretsMode.BLOCK, body, content_type=content_type)
    assert blocked[:2] == (None, {"github_token": 1})


def test_a_redacted_compressed_body_keeps_the_most_of_each_kind_either_way() -> None:
    """Keys in a gzip header's file name (read as the body came) and in its data (read
    decoded): ``redact`` reports the most of each kind either way, as ``block`` does."""
    from airlock.egress.scan import SecretsMode, check_gathered

    other = "ghp_" + "zY9xW7vU5tS3rQ1pO9nM7lK5jI3hG1fE9dC"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", filename=f"{KEY} {other}", mtime=0) as file:
        file.write(json.dumps({"k": KEY}).encode())
    body = buffer.getvalue()
    redacted = check_gathered(REDACTOR, SecretsMode.REDACT, body, b"gzip")
    blocked = check_gathered(REDACTOR, SecretsMode.BLOCK, body, b"gzip")
    assert redacted[1] == blocked[1] == {"github_token": 2}
    assert redacted[0] is not None and KEY.encode() not in redacted[0]


def _two_readings(secret: bytes) -> bytes:
    """A ``deflate`` body that reads as zlib data (64 KiB of filler) and as raw deflate (a
    byte, then ``secret``): zlib's header and its stored block's lengths read as a raw stored
    block of one byte, and the raw stream goes on, compressed, inside the zlib block's
    content."""
    packer = zlib.compressobj(wbits=-15)
    raw_rest = b"\x00\x00\xff\xff" + packer.compress(secret) + packer.flush()  # compressed
    content = raw_rest.ljust(0xFFFE, b"-")
    zlib_start = b"\x78\x01" + b"\x00" + struct.pack("<HH", 0xFFFE, 0x0001)
    zlib_end = b"\x01\x00\x00\xff\xff" + struct.pack(">I", zlib.adler32(content))
    return zlib_start + content + zlib_end


def test_a_deflate_body_that_reads_two_ways_is_refused_and_said() -> None:
    """One body, two readings: zlib's (filler, no secret) and raw deflate's (a key), which a
    reader that takes ``deflate`` as raw reads. ``redact`` and ``block`` refuse it; ``report``
    says it was not read to its end. A body zlib made reads one way only."""
    from airlock.egress.scan import StreamDecoder, decoded, reads_raw

    secret = f'{{"t":"{GITHUB}"}}'.encode()
    body = _two_readings(secret)
    assert GITHUB.encode() not in zlib.decompress(body)
    assert secret in zlib.decompressobj(wbits=-15).decompress(body)
    assert reads_raw(body)
    with pytest.raises(Uncheckable) as refused:
        decoded(body, b"deflate")
    assert refused.value.status == 400 and "raw deflate" in refused.value.why
    stream = StreamDecoder(b"deflate")
    for at in range(0, len(body), 1000):
        stream.feed(body[at : at + 1000])
    assert "raw deflate" in stream.unchecked
    plain = zlib.compress(b'{"a": 1}' * 10_000)
    assert not reads_raw(plain) and decoded(plain, b"deflate") == b'{"a": 1}' * 10_000
    quiet = StreamDecoder(b"deflate")
    quiet.feed(plain)
    assert quiet.unchecked == ""


@pytest.mark.parametrize(
    "body",
    [
        f'name,value\r\n"AWS_SECRET_ACCESS_KEY=""{AWS_SECRET}"""\r\n',
        f'<v text="AWS_SECRET_ACCESS_KEY=&quot;{AWS_SECRET}&quot;"/>',
        json.dumps({"file": f'"AWS_SECRET_ACCESS_KEY=""{AWS_SECRET}"""\n'}),
    ],
    ids=["csv_cell", "xml_attribute", "csv_in_json"],
)
def test_a_named_secret_in_a_csv_cell_or_an_xml_attribute_is_handled(body: str) -> None:
    """Uploaded as a CSV file, an XML attribute or a CSV file inside a JSON request: blocked,
    redacted where it stands, and counted when forwarded as it comes."""

    data = body.encode()
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, data)[:2] == (
        None,
        {"aws_secret_access_key": 1},
    )
    redacted, found, _ = check_gathered(REDACTOR, SecretsMode.REDACT, data)
    assert found == {"aws_secret_access_key": 1}
    assert redacted is not None and AWS_SECRET.encode() not in redacted
    assert b"[REDACTED:aws_secret_access_key]" in redacted

    assert _counted(data, None, cut=5)[0] == {"aws_secret_access_key": 1}
