"""The server name a TLS client asks for, read from a real ClientHello (Python's ssl)."""

from __future__ import annotations

import ssl

import pytest

from airlock.egress.hello import MAX_HELLO, MAX_RECORDS, NeedMore, NotHello, Unreadable, server_name


def _client_hello(name: str | None) -> bytes:
    """The first bytes a TLS client sends for ``name`` (``None``: no SNI)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=name)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def test_the_name_is_read() -> None:
    assert server_name(_client_hello("api.anthropic.com")) == "api.anthropic.com"


def test_no_name_is_none() -> None:
    assert server_name(_client_hello(None)) is None


def test_a_hello_split_over_records_and_reads() -> None:
    """A ClientHello may span TLS records (fragmented), and arrive a byte at a time."""
    hello = _client_hello("localhost")
    body = hello[5:]
    half = len(body) // 2
    split = b"".join(
        b"\x16" + hello[1:3] + len(part).to_bytes(2, "big") + part
        for part in (body[:half], body[half:])
    )
    assert server_name(split) == "localhost"
    for end in (1, 5, len(split) - 1):
        with pytest.raises(NeedMore):
            server_name(split[:end])


@pytest.mark.parametrize(
    "data", [b"GET / HTTP/1.1\r\n\r\n", b"SSH-2.0-OpenSSH_9.6\r\n"], ids=["http", "ssh"]
)
def test_other_protocols_are_no_hello(data: bytes) -> None:
    with pytest.raises(NotHello):
        server_name(data)


def test_tls_that_is_no_readable_hello_is_unreadable() -> None:
    """A handshake that is not a ClientHello, or a hello cut into too many records: TLS that
    airlock cannot read, refused by the tunnel's check (never let through as not TLS)."""
    with pytest.raises(Unreadable):
        server_name(b"\x16\x03\x01\x00\x04\x02\x00\x00\x00")
    body = _client_hello("localhost")[5:]
    records = b"".join(b"\x16\x03\x01\x00\x01" + body[i : i + 1] for i in range(MAX_RECORDS + 1))
    with pytest.raises(Unreadable):
        server_name(records)


def test_a_hello_never_whole_stops_at_the_limit() -> None:
    record = b"\x16\x03\x01\x40\x00" + b"\x00" * 0x4000
    first = b"\x16\x03\x01\x40\x00" + b"\x01\xff\xff\xff" + b"\x00" * (0x4000 - 4)
    endless = first + record * (MAX_HELLO // len(record) + 1)
    with pytest.raises(NeedMore):
        server_name(endless[: MAX_HELLO - 1])
    with pytest.raises(Unreadable):
        server_name(endless)


def test_alert_and_change_cipher_spec_records_before_the_hello_are_passed_over() -> None:
    """Go's TLS skips a warning alert before the ClientHello: the name after it is read."""
    alert = b"\x15\x03\x01\x00\x02\x01\x5a"
    ccs = b"\x14\x03\x03\x00\x01\x01"
    assert server_name(alert + ccs + _client_hello("localhost")) == "localhost"
    with pytest.raises(NeedMore):
        server_name(alert)


@pytest.mark.parametrize(
    "data",
    [
        b"\x16\x00\x00\x01\x85\xa6\xff\x01",  # a MySQL client's reply: length 0x16, sequence 1
        b"\x16\x01\x00\x00\x01\x00\x00\x00",  # a MongoDB message of 0x116 bytes
        b"\x16\x10\x01\x00\x05",  # a version no TLS server reads (Go's limit: 0x1000)
        b"\x14\x01\x00\x01\x85\xa6\xff\x01",  # a MySQL client's reply of 276 bytes
    ],
)
def test_another_protocol_whose_first_byte_is_a_handshakes_is_not_tls(data: bytes) -> None:
    """The record header must carry a TLS version: a protocol whose first byte happens to be
    0x16 is not held for a ClientHello that never comes, nor refused as unreadable TLS."""
    with pytest.raises(NotHello):
        server_name(data)


@pytest.mark.parametrize("version", [b"\x03\x05", b"\x03\xff", b"\x00\x01", b"\x0f\xff"])
def test_a_first_record_of_any_version_a_server_takes_is_read(version: bytes) -> None:
    """OpenSSL and BoringSSL take any 3.x in the first record's header, Go anything below
    0x1000: a ClientHello sent so is read for its name (else a tunnel to an allowed address
    carried TLS for a denied name, unread), after a warning alert sent so too."""
    hello = _client_hello("evil.test")
    assert server_name(hello[:1] + version + hello[3:]) == "evil.test"
    alert = b"\x15" + version + b"\x00\x02\x01\x5a"
    assert server_name(alert + hello[:1] + version + hello[3:]) == "evil.test"
    with pytest.raises(Unreadable):  # TLS so sent that cannot be read is refused, not passed
        server_name(b"\x16" + version + b"\x00\x04\x01\x00\x00\x00")
