"""Request parsing: hostile and malformed requests get a clear 4xx; nothing smuggles; fuzzed input never crashes."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from airlock.egress.audit_read import read_records
from airlock.egress.http1 import (
    END,
    BadRequest,
    RequestHead,
    RequestParser,
    forwarded_head,
    redact_query,
)
from tests.egress.origin import _Site, config, exchange, running

HOSTILE = [
    (
        "both_lengths",
        b"POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n",
        400,
    ),
    (
        "two_content_lengths",
        b"POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
        400,
    ),
    (
        "bad_chunk_size",
        b"POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        400,
    ),
    (
        "chunk_size_overflow",
        b"POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n",
        400,
    ),
    (
        "obsolete_line_folding",
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nX-A: one\r\n two\r\n\r\n",
        400,
    ),
    ("space_before_colon", b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost : a\r\n\r\n", 400),
    ("bare_lf", b"GET http://127.0.0.1:{port}/ HTTP/1.1\nHost: a\n\n", 400),
    (
        "transfer_encoding_not_chunked",
        b"POST http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
        501,
    ),
    ("nul_in_header", b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\x00b\r\n\r\n", 400),
    ("origin_form_target", b"GET /etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400),
    ("https_without_connect", b"GET https://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    (
        "credentials_in_url",
        b"GET http://user:pw@127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\n\r\n",
        400,
    ),
    ("connect_without_port", b"CONNECT 127.0.0.1 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    (
        "websocket_upgrade",
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        501,
    ),
    (
        "huge_header",
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nX-Big: "
        + b"a" * 70_000
        + b"\r\n\r\n",
        431,
    ),
    ("port_zero", b"GET http://127.0.0.1:0/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("http_2_request_line", b"GET http://127.0.0.1:{port}/ HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (
        "unknown_expectation",
        b"GET http://127.0.0.1:{port}/ HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n",
        417,
    ),
]


@pytest.mark.parametrize(("data", "status"), [pytest.param(d, s, id=i) for i, d, s in HOSTILE])
def test_hostile_requests_get_a_clear_4xx_and_reach_no_one(
    site: _Site, tmp_path: Path, data: bytes, status: int
) -> None:
    """Each is answered with its status and a sentence; the origin sees nothing; the proxy lives on."""
    with running(config(tmp_path)) as (url, _):
        port = site.server_address[1]
        answer = exchange(url, data.replace(b"{port}", str(port).encode()))
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
        assert b"airlock: " in answer
        assert site.seen == []
        again = exchange(
            url,
            b"GET http://127.0.0.1:%d/ok HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % port,
        )
        assert again.startswith(b"HTTP/1.1 200 ")


def test_the_host_header_is_the_urls_not_the_clients(site: _Site, tmp_path: Path) -> None:
    """A client's Host header naming another site is replaced by the URL's host: no virtual-host hop."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (url, _):
        answer = exchange(
            url,
            b"GET http://127.0.0.1:%d/x HTTP/1.1\r\nHost: internal.admin\r\nConnection: close\r\n\r\n"
            % port,
        )
    assert answer.endswith(b"host=127.0.0.1:%d" % port)


def test_the_scheme_is_read_in_any_case(site: _Site, tmp_path: Path) -> None:
    """``Http://`` is ``http://`` (schemes are case-insensitive)."""
    with running(config(tmp_path)) as (url, _):
        port = site.server_address[1]
        answer = exchange(
            url,
            b"GET Http://127.0.0.1:%d/x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n" % port,
        )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:200]
    assert [path for path, _host in site.seen] == ["/x"]


def test_pipelined_requests_are_answered_in_order(site: _Site, tmp_path: Path) -> None:
    """Two requests in one write get two answers, in order."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (url, _):
        answer = exchange(
            url,
            b"GET http://127.0.0.1:%d/one HTTP/1.1\r\nHost: a\r\n\r\n"
            b"GET http://127.0.0.1:%d/two HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
            % (port, port),
        )
    assert answer.index(b"path=/one") < answer.index(b"path=/two")


def test_pipelined_requests_past_the_head_bound_in_one_read_are_each_answered() -> None:
    """Many small requests in one read, more than the head bound together (here 3,000 of
    about 60 bytes: 180 KB against 64 KB), each parse: a read that ends heads is not counted
    whole against the head still under way; one head past the bound still gets 431."""
    parser = RequestParser(65536)
    request = b"GET http://example.com/x HTTP/1.1\r\nHost: example.com\r\n\r\n"
    parser.feed(request * 3000 + request[:30])
    assert sum(isinstance(event, RequestHead) for event in parser.events) == 3000
    long = RequestParser(65536)
    long.feed(request * 2 + b"GET http://example.com/" + b"a" * 60000)
    with pytest.raises(BadRequest) as refused:
        long.feed(b"b" * 6000)
    assert refused.value.status == 431


def test_hop_by_hop_headers_are_dropped_and_the_body_reframed() -> None:
    """Proxy-*, Connection and what it names never reach the origin; the length is ours, and
    a request with a body asks the origin to close after it (it may leave the body unread)."""
    parser = RequestParser(65536)
    parser.feed(
        b"POST http://example.com/p?q=1 HTTP/1.1\r\nHost: evil\r\nProxy-Authorization: x\r\n"
        b"Connection: X-Secret, keep-alive\r\nX-Secret: s\r\nX-Kept: k\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nTrailer-X: t\r\n\r\n"
    )
    head = parser.events.popleft()
    assert isinstance(head, RequestHead)
    assert list(parser.events) == [b"abc", END]
    assert forwarded_head(head) == (
        b"POST /p?q=1 HTTP/1.1\r\nHost: example.com\r\nX-Kept: k\r\nConnection: close\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )


def test_to_an_upstream_proxy_the_request_names_the_host_as_the_rules_read_it() -> None:
    """Through another proxy, the request line's absolute form and Host carry the canonical
    host, never the client's spelling (an upstream proxy might read ``0127.0.0.1`` its way)."""
    parser = RequestParser(65536)
    parser.feed(b"GET http://0127.0.0.1:8080/p HTTP/1.1\r\nHost: x\r\n\r\n")
    head = parser.events.popleft()
    assert isinstance(head, RequestHead)
    assert forwarded_head(head, "87.0.0.1").startswith(
        b"GET http://87.0.0.1:8080/p HTTP/1.1\r\nHost: 87.0.0.1:8080\r\n"
    )
    v6 = RequestParser(65536)
    v6.feed(b"GET http://[0:0::1]/ HTTP/1.1\r\n\r\n")
    head = v6.events.popleft()
    assert isinstance(head, RequestHead)
    assert forwarded_head(head, "::1").startswith(b"GET http://[::1]/ HTTP/1.1\r\nHost: [::1]\r\n")


def test_a_trailer_section_is_bounded_as_the_head_is() -> None:
    """A chunked body's trailer line that never ends is refused 431 once it passes the head's
    limit (httptools would gather it whole), read by read; a body sent a chunk per read, its
    framing apart from its data, never counts against it."""
    parser = RequestParser(1000)
    parser.feed(b"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(5000):  # 50 kB of framing and data, far past 1000 bytes
        parser.feed(b"3\r\n")
        parser.feed(b"abc\r\n")
    parser.feed(b"0\r\nX-Trailer: t\r\n\r\n")
    assert parser.events[-1] is END and len(parser.events) == 5002
    parser.feed(b"POST http://a.test/ HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n")
    parser.feed(b"0\r\nX-Big: ")
    with pytest.raises(BadRequest) as refused:
        for _ in range(100):  # 100 kB at most: refused well before
            parser.feed(b"A" * 1000)
    assert refused.value.status == 431 and "exceeds 1000 bytes" in str(refused.value)


def test_an_endless_trailer_gets_431_and_a_record(site: _Site, tmp_path: Path) -> None:
    """Through the proxy: the request that sent it is answered 431, the connection closed, and
    its record says why (with the bytes that had gone upstream)."""
    cfg = config(tmp_path)
    port = site.server_address[1]
    with running(cfg) as (url, _):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(proxy_port)), timeout=10) as sock:
            sock.sendall(
                b"POST http://127.0.0.1:%d/t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"1\r\na\r\n0\r\nX-Big: " % port
            )
            answer = b""
            with contextlib.suppress(ConnectionError):
                for _ in range(64):  # 4 MB at most; the limit is 64 kB
                    sock.sendall(b"A" * 65536)
            with contextlib.suppress(ConnectionError):
                while piece := sock.recv(65536):
                    answer += piece
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
    assert b"trailer section" in answer
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert record["status"] == 431 and "trailer section" in record["error"]
    assert record["bytes_out"] > 0  # the head and the first piece had left


@pytest.mark.parametrize(
    ("path", "shown"),
    [(b"/a", "/a"), (b"/a?k=secret", "/a?k=…"), (b"/a?x&y=1&z=", "/a?x&y=…&z=…"), (b"/?", "/?")],
)
def test_query_values_are_redacted_for_the_log(path: bytes, shown: str) -> None:
    """The audit log keeps query names, never values."""
    assert redact_query(path) == shown


REQUEST_LINES = st.sampled_from(
    [
        b"GET http://a.test/ HTTP/1.1\r\n",
        b"POST http://a.test/p HTTP/1.1\r\n",
        b"CONNECT a.test:443 HTTP/1.1\r\n",
        b"GET / HTTP/1.1\r\n",
        b"HEAD http://a.test:8080/x?y=z HTTP/1.0\r\n",
    ]
)
HEADERS = st.lists(
    st.sampled_from(
        [
            b"Host: a.test\r\n",
            b"Content-Length: 5\r\n",
            b"Content-Length: 0\r\n",
            b"Transfer-Encoding: chunked\r\n",
            b"Transfer-Encoding: identity\r\n",
            b"Connection: close\r\n",
            b"Expect: 100-continue\r\n",
            b" folded\r\n",
            b"X: \xff\r\n",
        ]
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    line=REQUEST_LINES,
    headers=HEADERS,
    body=st.binary(max_size=64),
    noise=st.binary(max_size=32),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=4),
)
def test_fuzzed_requests_parse_or_are_refused_never_crash(
    line: bytes, headers: list[bytes], body: bytes, noise: bytes, cuts: list[int]
) -> None:
    """Any mix of lines, headers, body and noise, cut anywhere: events or BadRequest, nothing else."""
    data = line + b"".join(headers) + b"\r\n" + body + noise
    parser = RequestParser(1024)
    start = 0
    try:
        for cut in [*sorted(cuts), len(data)]:
            if parser.tunnel_data is not None:
                break
            parser.feed(data[start:cut])
            start = max(start, cut)
    except BadRequest as error:
        assert 400 <= error.status < 600 and error.message
        return
    for event in parser.events:
        assert isinstance(event, RequestHead | bytes) or event is END
        if isinstance(event, RequestHead):
            assert event.host and 0 < event.port < 65536
            assert not (event.chunked and event.content_length is not None)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    """Arbitrary bytes are events or a BadRequest."""
    try:
        RequestParser(1024).feed(data)
    except BadRequest as error:
        assert 400 <= error.status < 600


@pytest.mark.parametrize("port", ["\xb2", "\xb9", "4\xb3"], ids=["two", "one", "four_three"])
def test_a_port_of_superscript_digits_is_refused(port: str) -> None:
    """``"²".isdigit()`` is True and ``int("²")`` raises: a port must be ASCII digits."""
    from airlock.egress.http1 import parse_authority

    with pytest.raises(BadRequest, match="CONNECT needs host:port"):
        parse_authority(f"127.0.0.1:{port}".encode("latin-1"))


@pytest.mark.parametrize(
    "authority",
    [
        "[/bold]x:443",
        "[link=https://evil.example/]x:443",
        "[example.com]:443",
        "[127.0.0.1]:443",
        "[[::1]]:443",
        "example.com]:443",
        "a[b:443",
        "[]:443",
        "::1:443",
        "fe80::1:8443",
    ],
)
def test_a_connect_host_holds_brackets_only_around_an_ipv6_address(authority: str) -> None:
    """A name holds no ``[`` or ``]`` (a URL's host takes them only around an IPv6 address):
    any other place is a malformed ``CONNECT``, refused ``400`` before the rules see it (its
    text would otherwise be recorded and shown as a host); an IPv6 address needs them, as its
    port cannot be told apart otherwise."""
    from airlock.egress.http1 import parse_authority

    with pytest.raises(BadRequest, match="brackets only around an IPv6 address") as refused:
        parse_authority(authority.encode())
    assert refused.value.status == 400
    parser = RequestParser(1024)
    with pytest.raises(BadRequest, match="brackets only"):
        parser.feed(f"CONNECT {authority} HTTP/1.1\r\n\r\n".encode())


def test_an_ipv6_address_in_brackets_is_a_connect_host() -> None:
    from airlock.egress.http1 import parse_authority

    assert parse_authority(b"[::1]:443") == ("::1", 443)
    assert parse_authority(b"[FE80::1%eth0]:8443") == ("fe80::1%eth0", 8443)
    assert parse_authority(b"[::ffff:127.0.0.1]:80") == ("::ffff:127.0.0.1", 80)
