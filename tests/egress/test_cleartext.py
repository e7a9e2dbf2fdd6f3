"""HTTP in the clear inside a tunnel: each request's host read as it passes (llhttp)."""

from __future__ import annotations

import pytest

from airlock.egress.cleartext import CleartextRequests, host_of, starts_http


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET / HTTP/1.1\r\n", True),
        (b"\r\nPOST http://x/ HTTP/1.0\r\n", True),
        (b"get / HTTP/1.1", True),  # llhttp refuses it later: the tunnel ends
        (b"GE", None),
        (b"GET /a/b", None),  # a version may follow; a server acts on a line once it ends
        (b"GET /a/b\r\n", True),  # HTTP/0.9, which nginx answers at the end of the line
        (b"GET\xa0/nbsp\xa0HTTP/1.1\r\n", True),  # Python's http.server splits on \xa0
        (b"GET\x1c/b\x1cHTTP/1.1\r\n", True),
        (b"0032git-upload-pack /repo.git\x00host=example.com\x00", False),  # git://
        (b"RETR /pub/file\r\n", False),  # not GET: no server reads it as HTTP/0.9
        (b"GET /a\r\nHost: evil.test\r\n", True),  # HTTP/0.9: llhttp reads it, and refuses
        (b"GET http://evil.test/\r\n", True),
        (b"GET * RTSP/1.0\r\n", True),
        (b"GET /a ICE/1.0\r\n", True),
        (b"GET /a http/1.1\r\n", True),
        (b" GET /b HTTP/1.1\r\n", True),  # lenient servers skip spaces before a request
        (b"\x0bGET\x0b/b\x0cHTTP/1.1\r\n", True),  # and take these as spaces
        (b"CONNECT evil.test:443\r\n", True),
        (b"FOO bar", None),
        (b"\x16\x03\x01", False),
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),
        (b"EHLO mail.example\r\n", False),
        (b"GET key\r\n", True),  # a Redis inline command, read as HTTP/0.9 (and refused)
        (b"GET key value\r\n", True),  # a known method's line: llhttp reads it (and refuses)
        (b"GET http://evil.test/ x\r\n", True),  # nginx may take it for HTTP/0.9
        (b"GET\r/cr\rHTTP/1.1\r\n", True),  # Python's http.server splits on a lone CR
        (b"GET /nul?\x00 HTTP/1.1\r\n", True),  # and reads a NUL (llhttp refuses it)
        (b"ls -la\r", False),  # a terminal's line after an upgrade: not held for a line feed
        (b"ls\r", False),
        (b"PURGE /x\r\n", True),  # Node reads any of llhttp's methods without a version
        (b"PROPFIND /y\r\n", True),
        (b"PURGE\xa0/x\xa0HTTP/1.1\r\n", True),
        (b"purge /x\r\n", False),  # no server reads a lower-case method without a version
        (b"get key\r\n", False),  # memcached
        (b"CONNECT\r\naccept-version:1.2\r\n", False),  # STOMP: no target
        (b'CONNECT {"verbose":false}\r\n', False),  # NATS: no target llhttp reads
        (b"OPTIONS sip:a@b.example SIP/2.0\r\n", False),  # SIP: a version, not HTTP's
        (b"OPTIONS rtsp://a.example/s RTSP/1.0\r\n", True),
        (b"\r\n", True),  # gopher's and finger's empty line: llhttp passes it and reads on
        (b"A\x85abcd", False),  # a WebSocket client's compressed frame, not final
        (b"\x81\x85abcd", False),  # and a final one
        (b"A" * 30, None),
        (b"A" * 30 + b"\x00", False),
        (b"t" * 20000, False),  # a token to the limit: no method
        (b"GET  /a HTTP/1.1\r\n", True),  # servers take runs of spaces and tabs
        (b"GET\t/a  HTTP/1.1", True),
        (b"\r\n" * 9000, True),  # empty lines: read as HTTP
        (b"GET /" + b"a" * 17000, True),  # a first line still open past the limit
        (b"\r\n\r\n", True),
        (b" \t", None),
    ],
)
def test_what_starts_as_http(data: bytes, expected: bool | None) -> None:
    assert starts_http(data) is expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET http://evil.test/x", True),  # HTTP/0.9 cut short: a server reads it at the close
        (b"FOO bar", False),
        (b"GE", False),
        (b"", False),
    ],
)
def test_what_starts_as_http_when_the_client_closed_after_it(data: bytes, expected: bool) -> None:
    assert starts_http(data, ended=True) is expected


@pytest.mark.parametrize(
    ("authority", "host"),
    [
        ("Example.COM.", "example.com"),
        ("a.test:8080", "a.test"),
        ("[::1]:80", "::1"),
        ("::1", "::1"),
    ],
)
def test_host_of_an_authority(authority: str, host: str) -> None:
    assert host_of(authority) == host


class _Tunnel:
    """A tunnel's client side as the relay runs it: each piece fed to the reader, what it lets
    through kept in :attr:`sent`; hosts in ``allowed`` pass the verdict."""

    def __init__(self, allowed: set[str]) -> None:
        self.allowed = allowed
        self.asked: list[str] = []
        self.sent = bytearray()
        self.requests = CleartextRequests(self.verdict)

    def verdict(self, authority: str) -> str:
        self.asked.append(authority)
        return "" if host_of(authority) in self.allowed else f"refused {authority}"

    def send(self, data: bytes) -> str:
        passed, reason = self.requests.feed(data)
        assert not (passed and reason)
        self.sent += passed
        return reason

    def close(self) -> str:
        """The client closes its side: what the reader still holds goes on or is refused."""
        passed, reason = self.requests.end()
        self.sent += passed
        return reason

    def send_cut(self, stream: bytes, size: int) -> list[str]:
        return [self.send(stream[at : at + size]) for at in range(0, len(stream), size)]


def test_every_request_of_a_kept_connection_is_judged_however_it_is_cut() -> None:
    stream = (
        b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n"
        b"POST /u HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 24\r\n\r\n"
        b"Host: evil.test\r\n\r\nxxxxx"  # a body that looks like a header: not one
        b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    for size in (1, 7, len(stream)):
        tunnel = _Tunnel({"ok.test"})
        reasons = tunnel.send_cut(stream, size)
        assert reasons[-1] == "refused evil.test"
        assert tunnel.asked == ["ok.test", "ok.test", "evil.test"]
        assert b"GET / HTTP/1.1\r\nHost: evil" not in tunnel.sent  # the refused head stayed


def test_a_head_goes_on_only_once_read_whole_and_judged() -> None:
    """Nothing of a head passes before its end: a server cannot act on a line not judged."""
    head = b"GET /a HTTP/1.1\r\nHost: ok.test\r\n\r\n"
    tunnel = _Tunnel({"ok.test"})
    for at in range(len(head) - 1):
        assert tunnel.send(head[at : at + 1]) == "" and tunnel.sent == b""
    assert tunnel.send(head[-1:]) == "" and tunnel.sent == head
    body = b"POST /u HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 6\r\n\r\n"
    assert tunnel.send(body + b"{") == "" and tunnel.sent == head + body + b"{"
    assert tunnel.send(b'"a":') == "" and tunnel.sent.endswith(b'{"a":')  # a body streams


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (b"GET http://evil.test/x HTTP/1.1\r\nHost: ok.test\r\n\r\n", "refused evil.test"),
        (b"CONNECT evil.test:443 HTTP/1.1\r\nHost: ok.test\r\n\r\n", "refused evil.test:443"),
        (b"GET / HTTP/1.1\r\nHost: ok.test\r\nHost: evil.test\r\n\r\n", "more than one Host"),
        (b"GET / HTTP/1.1\r\n\r\n", "names no host"),
        (b"GET / HTTP/1.1\nHost: evil.test\n\n", "cannot be read"),
        (b"get / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "cannot be read"),
        (b"GET /a\r\nHost: ok.test\r\n\r\n", "HTTP/0.9"),  # no version: servers differ
        (b"GET /a HTTP/2.0\r\nHost: ok.test\r\n\r\n", "HTTP/2.0"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "cannot be read"),  # HTTP/2, prior knowledge
        (b" GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "cannot be read"),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 37\r\n\r\n"
            b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",  # read as one by a server ignoring the length
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 38\r\n\r\n"
            b"\x1cGET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 29\r\n\r\n"
            b"GET zz\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",  # HTTP/0.9, with headers after it
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 37\r\n\r\n"
            b"GET\r/x\rHTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",  # Python's http.server splits on a lone CR
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 20054\r\n\r\n"
            + b" " * 20000
            + b"GET /x HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",  # spaces before a request line: skipped
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 31\r\n\r\n"
            b"GET http://evil.test/x HTTP/1.1\r\nGET /b HTTP/1.1\r\nHost: ok.test\r\n\r\n",
            "body that starts as a request",  # its line ended by the next request's
        ),
        (
            b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 40059\r\n\r\n"
            b"GET /" + b"a" * 40000 + b" HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "body that starts as a request",  # a line up to 64 KB: Python reads it
        ),
    ],
)
def test_a_request_naming_another_host_or_none_or_unreadable_is_refused(
    request_bytes: bytes, why: str
) -> None:
    tunnel = _Tunnel({"ok.test"})
    assert why in tunnel.send(request_bytes)
    assert why in tunnel.send(b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n")  # and stays so
    assert tunnel.sent == b""


def test_a_version_less_line_is_held_and_goes_nowhere() -> None:
    """A server answers ``GET http://evil.test/`` (HTTP/0.9) at the end of the line: llhttp
    waits for headers, so the line is held; the client closing refuses it."""
    tunnel = _Tunnel({"ok.test"})
    assert tunnel.send(b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\nGET http://evil.test/\r\n") == ""
    assert tunnel.sent == b""  # the allowed request waits with it: a client sends heads whole
    assert "HTTP/0.9" in tunnel.close()  # judged as it stands when the client closes
    assert tunnel.sent == b""


def test_what_is_held_when_the_client_closes_is_told_as_it_ends() -> None:
    """A server may act on a head cut short by the client's close (Python's reads the
    headers it got): it is judged as it stands; a body's first bytes, and what follows an
    upgrade, are told as ended; what may go on does."""
    complete = b"GET /a HTTP/1.1\r\nHost: ok.test\r\n\r\n"
    cases = {
        b"GET /b HTTP/1.1\r\nHost: ok.test": (True, ""),
        b"POST /b HTTP/1.1\r\nHost: ok.test\r\nTransfer-Encoding: chunked\r\n": (True, ""),
        b"GET /b HTTP/1.1\r\nHost: evil.te": (False, "refused evil.te"),
        b"GET /b HTTP/1.1\r\nHo": (False, "cannot be read as it stands"),
        b"GET /b HT": (False, "cannot be read as it stands"),
    }
    for partial, (passes, why) in cases.items():
        tunnel = _Tunnel({"ok.test"})
        assert tunnel.send(complete) == "" and tunnel.send(partial) == ""
        assert tunnel.sent == complete
        assert why in tunnel.close() and (why or not tunnel.requests.reason)
        assert tunnel.sent == (complete + partial if passes else complete)

    body = _Tunnel({"ok.test"})
    head = b"POST /u HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 100\r\n\r\n"
    assert body.send(head + b"HELLO") == "" and body.sent == head
    assert body.close() == "" and body.sent == head + b"HELLO"
    request_body = _Tunnel({"ok.test"})
    assert request_body.send(head + b"GET /x") == ""
    assert "body that starts as a request" in request_body.close()
    assert request_body.sent == head

    upgraded = _Tunnel({"ok.test"})
    upgrade = b"GET /t HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    assert upgraded.send(upgrade + b"EHLO x") == "" and upgraded.sent == upgrade
    assert upgraded.close() == "" and upgraded.sent == upgrade + b"EHLO x"


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": {"match_all": {}}}',
        b"hello",
        b"Host: evil.test\r\n\r\n",
        b"GET",
        b"x" * 40000,
        b"Visit https://example.com/a or /b\n",
        b"var a = 1" + b" + 1" * 10000,  # minified code: one long first line
        b"GET /a/b c HTTP/1.1\r\n",  # three words before the version: no request line
    ],
    ids=["json", "short_text", "header_like", "shorter_than_a_line", "long", "prose", "js", "odd"],
)
def test_a_body_that_does_not_start_as_a_request_passes(body: bytes) -> None:
    stream = b"GET /_search HTTP/1.1\r\nHost: ok.test\r\nContent-Length: %d\r\n\r\n" % len(body)
    stream += body + b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n"
    for size in (1, 1000, len(stream)):
        tunnel = _Tunnel({"ok.test"})
        assert not any(tunnel.send_cut(stream, size)) and tunnel.sent == stream


def test_after_an_upgrade_the_bytes_are_not_read_as_http() -> None:
    tunnel = _Tunnel({"ok.test"})
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert tunnel.send(upgrade + b"\x81\x05hello") == ""
    assert tunnel.send(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == ""  # a frame's data
    assert tunnel.asked == ["ok.test"]
    assert tunnel.sent == upgrade + b"\x81\x05hello" + b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"


def test_an_upgrade_to_http2_in_the_clear_is_refused() -> None:
    """HTTP/2 frames would follow, whose hosts llhttp cannot read."""
    tunnel = _Tunnel({"ok.test"})
    reason = tunnel.send(
        b"GET / HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
    )
    assert "h2c" in reason


def test_a_request_head_is_read_up_to_a_bound() -> None:
    """A head that never ends (a header value of megabytes) ends the tunnel past the bound,
    instead of being gathered whole; a large body passes."""
    tunnel = _Tunnel({"ok.test"})
    assert tunnel.send(b"GET / HTTP/1.1\r\nHost: ok.test\r\nX-Long: ") == ""
    reasons = [tunnel.send(b"a" * 16384) for _ in range(8)]
    assert "head over" in reasons[-1]
    body = _Tunnel({"ok.test"})
    assert body.send(b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 1048576\r\n\r\n") == ""
    assert all(body.send(b"a" * 65536) == "" for _ in range(16))
    assert len(body.sent) > 1048576


def test_after_a_declined_upgrade_the_next_request_is_judged() -> None:
    """A server that declines an upgrade (no ``101``) reads the next request on the
    connection: it is read as one, however the bytes are cut."""
    stream = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    for size in (1, 5, len(stream)):
        tunnel = _Tunnel({"ok.test"})
        reasons = tunnel.send_cut(stream, size)
        assert reasons[-1] == "refused evil.test"
        assert tunnel.asked == ["ok.test", "evil.test"]
        assert not any(reasons[:-1])  # nothing refused before the request's head ends
        assert b"evil" not in tunnel.sent


@pytest.mark.parametrize(
    "after",
    [
        b" GET /b HTTP/1.1\r\nHost: evil.test\r\n\r\n",  # Python's http.server skips the space
        b"GET\x0b/b\x0bHTTP/1.1\r\nHost: evil.test\r\n\r\n",
        b"GET http://evil.test/\r\n",  # HTTP/0.9, answered at the end of the line by nginx
        b"GET\x1c/b\x1cHTTP/1.1\r\nHost: evil.test\r\n\r\n",
        b"GET\xa0/b\xa0HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        b"GET zz\r\nHost: evil.test\r\n\r\n",
        b"GET\r/b\rHTTP/1.1\r\nHost: evil.test\r\n\r\n",
    ],
)
def test_after_a_declined_upgrade_what_a_lenient_server_reads_goes_nowhere(after: bytes) -> None:
    tunnel = _Tunnel({"ok.test"})
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    reason = tunnel.send(upgrade + after) or tunnel.close()
    assert reason and b"evil" not in tunnel.sent


def test_after_a_connect_in_the_clear_tls_has_its_server_name_judged() -> None:
    from tests.egress.test_hello import _client_hello

    connect = b"CONNECT ok.test:443 HTTP/1.1\r\nHost: ok.test:443\r\n\r\n"
    refused = _Tunnel({"ok.test"})
    assert refused.send(connect + _client_hello("evil.test")) == "refused evil.test"
    allowed = _Tunnel({"ok.test"})
    hello = _client_hello("ok.test")
    assert allowed.send(connect + hello[:10]) == ""
    assert allowed.send(hello[10:]) == "" and allowed.sent == connect + hello
    assert allowed.requests.upgraded


def test_after_a_declined_connect_the_next_request_is_judged() -> None:
    tunnel = _Tunnel({"ok.test", "also.test"})
    assert tunnel.send(b"CONNECT also.test:443 HTTP/1.1\r\nHost: also.test\r\n\r\n") == ""
    assert tunnel.send(b"POST / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == "refused evil.test"
    assert tunnel.asked == ["also.test:443", "also.test", "evil.test"]


@pytest.mark.parametrize(
    "body_header", [b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"]
)
def test_an_upgrade_with_a_body_is_refused(body_header: bytes) -> None:
    """The body would hide a request after it: ``\\x81\\x80`` read as the body, then
    ``GET … Host: evil.test``."""
    tunnel = _Tunnel({"ok.test"})
    reason = tunnel.send(
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        + body_header
        + b"\r\n\x81\x80abcGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    assert "upgrade with a body" in reason


def test_an_upgrade_with_an_empty_body_is_an_upgrade() -> None:
    tunnel = _Tunnel({"ok.test"})
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert tunnel.send(upgrade) == ""
    assert tunnel.send(b"\x81\x85") == ""
    assert tunnel.send(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == ""  # frame data
    assert tunnel.requests.upgraded and tunnel.asked == ["ok.test"]


def test_a_judged_head_goes_on_before_its_body() -> None:
    """A client that waits for ``100 Continue`` before its body gets it: the head, judged,
    goes on; only the body's first bytes wait until they tell."""
    tunnel = _Tunnel({"ok.test"})
    head = b"PUT /up HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 6\r\nExpect: 100-continue\r\n\r\n"
    assert tunnel.send(head) == "" and tunnel.sent == head
    assert tunnel.send(b"GE") == "" and tunnel.sent == head  # could start a request line
    assert tunnel.send(b"TS 1") == "" and tunnel.sent == head + b"GETS 1"  # the body ended
    refused = _Tunnel({"ok.test"})
    assert refused.send(head.replace(b"5", b"6") + b"GE") == ""
    assert "body that starts as a request" in refused.send(b"T /a")  # HTTP/0.9, once it ends


def test_a_pipelined_body_is_not_taken_for_a_head() -> None:
    """One read holding a request's long body and the start of the next request: the body
    does not count toward the next head's bound."""
    tunnel = _Tunnel({"ok.test"})
    first = b"POST /u HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 70000\r\n\r\n" + b"{" * 70000
    assert tunnel.send(first + b"GET /b HTTP/1.1\r\n") == "" and tunnel.sent == b""
    assert tunnel.send(b"Host: ok.test\r\n\r\n") == ""
    assert tunnel.sent == first + b"GET /b HTTP/1.1\r\nHost: ok.test\r\n\r\n"
