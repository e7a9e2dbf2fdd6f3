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
        (b"GET /a/b", None),
        (b"GET /a/b HTT", None),
        (b"\x16\x03\x01", False),
        (b"SSH-2.0-OpenSSH_9.6\r\n", False),
        (b"EHLO mail.example\r\n", False),
        (b"GET key\r\n", False),  # a Redis inline command
        (b"A" * 30, None),
        (b"A" * 30 + b"\x00", False),
        (b"t" * 20000, False),  # a token to the limit: no method
        (b"GET  /a HTTP/1.1\r\n", True),  # servers take runs of spaces and tabs
        (b"GET\t/a  HTTP/1.1", True),
        (b"\r\n" * 9000, True),  # empty lines past the limit: read as HTTP
        (b"GET /" + b"a" * 17000, True),  # a first line still open past the limit
        (b"\r\n\r\n", None),
    ],
)
def test_what_starts_as_http(data: bytes, expected: bool | None) -> None:
    assert starts_http(data) is expected


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


def _requests(allowed: set[str]) -> tuple[CleartextRequests, list[str]]:
    asked: list[str] = []

    def verdict(authority: str) -> str:
        asked.append(authority)
        return "" if host_of(authority) in allowed else f"refused {authority}"

    return CleartextRequests(verdict), asked


def test_every_request_of_a_kept_connection_is_judged_however_it_is_cut() -> None:
    stream = (
        b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n"
        b"POST /u HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 24\r\n\r\n"
        b"Host: evil.test\r\n\r\nxxxxx"  # a body that looks like a header: not one
        b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    for size in (1, 7, len(stream)):
        requests, asked = _requests({"ok.test"})
        reasons = [requests.feed(stream[at : at + size]) for at in range(0, len(stream), size)]
        assert reasons[-1] == "refused evil.test"
        assert asked == ["ok.test", "ok.test", "evil.test"]


@pytest.mark.parametrize(
    ("request_bytes", "why"),
    [
        (b"GET http://evil.test/x HTTP/1.1\r\nHost: ok.test\r\n\r\n", "refused evil.test"),
        (b"CONNECT evil.test:443 HTTP/1.1\r\nHost: ok.test\r\n\r\n", "refused evil.test:443"),
        (b"GET / HTTP/1.1\r\nHost: ok.test\r\nHost: evil.test\r\n\r\n", "more than one Host"),
        (b"GET / HTTP/1.1\r\n\r\n", "names no host"),
        (b"GET / HTTP/1.1\nHost: evil.test\n\n", "cannot be read"),
        (b"get / HTTP/1.1\r\nHost: evil.test\r\n\r\n", "cannot be read"),
    ],
)
def test_a_request_naming_another_host_or_none_or_unreadable_is_refused(
    request_bytes: bytes, why: str
) -> None:
    requests, _ = _requests({"ok.test"})
    assert why in requests.feed(request_bytes)
    assert why in requests.feed(b"GET / HTTP/1.1\r\nHost: ok.test\r\n\r\n")  # and stays so


def test_after_an_upgrade_the_bytes_are_not_read_as_http() -> None:
    requests, asked = _requests({"ok.test"})
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
    )
    assert requests.feed(upgrade + b"\x81\x05hello") == ""
    assert requests.feed(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == ""  # a frame's data
    assert asked == ["ok.test"]


def test_an_upgrade_to_http2_in_the_clear_is_refused() -> None:
    """HTTP/2 frames would follow, whose hosts llhttp cannot read."""
    requests, _ = _requests({"ok.test"})
    reason = requests.feed(
        b"GET / HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
    )
    assert "h2c" in reason


def test_a_request_head_is_read_up_to_a_bound() -> None:
    """A head that never ends (a header value of megabytes) ends the tunnel past the bound,
    instead of being gathered whole; a large body passes."""
    requests, _ = _requests({"ok.test"})
    assert requests.feed(b"GET / HTTP/1.1\r\nHost: ok.test\r\nX-Long: ") == ""
    reasons = [requests.feed(b"a" * 16384) for _ in range(8)]
    assert "head over" in reasons[-1]
    body, _ = _requests({"ok.test"})
    assert body.feed(b"POST / HTTP/1.1\r\nHost: ok.test\r\nContent-Length: 1048576\r\n\r\n") == ""
    assert all(body.feed(b"a" * 65536) == "" for _ in range(16))


def test_after_a_declined_upgrade_the_next_request_is_judged() -> None:
    """A server that declines an upgrade (no ``101``) reads the next request on the
    connection: it is read as one, however the bytes are cut."""
    stream = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
        b"\r\nGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    for size in (1, 5, len(stream)):
        requests, asked = _requests({"ok.test"})
        reasons = [requests.feed(stream[at : at + size]) for at in range(0, len(stream), size)]
        assert reasons[-1] == "refused evil.test"
        assert asked == ["ok.test", "evil.test"]
        assert not any(reasons[:-1])  # nothing refused before the request's head ends


def test_after_a_declined_connect_the_next_request_is_judged() -> None:
    requests, asked = _requests({"ok.test", "also.test"})
    assert requests.feed(b"CONNECT also.test:443 HTTP/1.1\r\nHost: also.test\r\n\r\n") == ""
    assert requests.feed(b"POST / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == "refused evil.test"
    assert asked == ["also.test:443", "also.test", "evil.test"]


@pytest.mark.parametrize(
    "body_header", [b"Content-Length: 5\r\n", b"Transfer-Encoding: chunked\r\n"]
)
def test_an_upgrade_with_a_body_is_refused(body_header: bytes) -> None:
    """The body would hide a request after it: ``\\x81\\x80`` read as the body, then
    ``GET … Host: evil.test``."""
    requests, _ = _requests({"ok.test"})
    reason = requests.feed(
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        + body_header
        + b"\r\n\x81\x80abcGET / HTTP/1.1\r\nHost: evil.test\r\n\r\n"
    )
    assert "upgrade with a body" in reason


def test_an_upgrade_with_an_empty_body_is_an_upgrade() -> None:
    requests, asked = _requests({"ok.test"})
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: ok.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    assert requests.feed(upgrade) == ""
    assert requests.feed(b"\x81\x85") == ""
    assert requests.feed(b"GET / HTTP/1.1\r\nHost: evil.test\r\n\r\n") == ""  # frame data
    assert requests.upgraded and asked == ["ok.test"]
