"""The name a TLS client asks for (SNI), read from its first bytes without changing them.

With inspection on, a ``CONNECT`` to an address or another name could carry TLS for an
inspected host (``CONNECT 160.79.104.10:443`` with SNI ``api.anthropic.com``): its requests
would pass as an opaque tunnel, flows the engine turned off included. So the client's first bytes
in such a tunnel are held until its ClientHello is whole and read for the server name
(:func:`server_name`; the server's bytes flow meanwhile, for protocols where it speaks
first); the tunnel is refused when the name is an inspected host's (see
:mod:`airlock.egress.tunnels`).

Only what is needed is parsed: TLS records of type handshake, joined until the ClientHello is
whole (it may span records), then its extensions up to ``server_name`` (RFC 6066 3).
"""

from __future__ import annotations

HANDSHAKE = 0x16
SKIPPED = (0x14, 0x15)
"""Records before the ClientHello that some servers skip (a change_cipher_spec, a warning
alert: Go's does): passed over, counted with the records, the hold kept."""
SKIPPED_LENGTH = {0x14: 1, 0x15: 2}
"""The length of a change_cipher_spec record and of an alert: one of another length before the
ClientHello, with a first record's version that is not 3.x, is another protocol (a MySQL
client's reply of 276 bytes starts ``14 01 00``)."""
CLIENT_HELLO = 1
SERVER_NAME = 0
HOST_NAME = 0
MAX_VERSION_MAJOR = 0x10
"""A first record whose version's first byte is this or more is read by no TLS server (Go
takes any version below 0x1000): it is another protocol."""
MAX_HELLO = 64 * 1024
"""The most of a ClientHello read (they are a few KB; post-quantum key shares included)."""


class NotHello(Exception):
    """The bytes are not TLS at all (another protocol): nothing in them names a host."""


class Unreadable(Exception):
    """TLS whose ClientHello cannot be read (malformed, past :data:`MAX_HELLO`, or cut into
    more than :data:`MAX_RECORDS` records): with inspection on, such a tunnel is refused, since
    the server may read a name in it that airlock could not."""


MAX_RECORDS = 16
"""The most TLS records a ClientHello may be cut into (clients send one, rarely two)."""


def _hello_body(data: bytes | bytearray) -> bytes | None:
    """The ClientHello's handshake message once whole in ``data`` (records joined), ``None``
    while more is needed. Only record headers and the message's own first four bytes are
    read until the message is whole: a hello sent a byte at a time costs a short walk a byte.

    Raises:
        NotHello: the first bytes are not a TLS record header's.
        Unreadable: a later record that is not a handshake, more than :data:`MAX_RECORDS`
            records, a first message that is no ClientHello, or none whole in
            :data:`MAX_HELLO` bytes.
    """
    if data and data[0] not in (HANDSHAKE, *SKIPPED):
        raise NotHello("not a TLS handshake record")
    if len(data) > 1 and data[1] >= MAX_VERSION_MAJOR:
        raise NotHello("not a TLS record header")
    # A first record's version is not what servers judge TLS by: OpenSSL and BoringSSL take
    # any 3.x, Go anything below 0x1000. One that is not 3.x could be another protocol whose
    # first byte is 0x14-0x16 (a MySQL packet's length, a MongoDB message's): it is TLS when
    # its first handshake record starts a ClientHello, and another protocol when it does not.
    loose = len(data) > 1 and data[1] != 3
    spans: list[tuple[int, int]] = []
    position = whole = records = 0
    while position + 5 <= len(data):
        kind = data[position]
        if kind not in (HANDSHAKE, *SKIPPED):
            if loose and not spans:
                raise NotHello("not TLS records")
            raise Unreadable("a record that is not a handshake inside the ClientHello")
        length = int.from_bytes(data[position + 3 : position + 5], "big")
        if loose and not spans and kind != HANDSHAKE and length != SKIPPED_LENGTH[kind]:
            raise NotHello("not TLS: a record shaped as no change_cipher_spec or alert")
        starts = loose and not spans and kind == HANDSHAKE and length > 0
        if starts and position + 5 < len(data) and data[position + 5] != CLIENT_HELLO:
            raise NotHello("not TLS: no ClientHello in its first handshake record")
        if position + 5 + length > len(data):
            break
        records += 1
        if records > MAX_RECORDS:
            raise Unreadable(f"a ClientHello cut into more than {MAX_RECORDS} records")
        if kind != HANDSHAKE:  # an alert or a change_cipher_spec some servers skip
            position += 5 + length
            continue
        spans.append((position + 5, position + 5 + length))
        whole += length
        position += 5 + length
    if whole >= 4:
        header = b""
        for start, end in spans:  # the message's own header may be cut over records
            header += bytes(data[start : min(end, start + 4 - len(header))])
            if len(header) == 4:
                break
        if header[0] != CLIENT_HELLO:
            raise Unreadable("the first handshake message is not a ClientHello")
        size = int.from_bytes(header[1:4], "big")
        if whole >= 4 + size:
            message = b"".join(bytes(data[start:end]) for start, end in spans)
            return message[4 : 4 + size]
    if len(data) >= MAX_HELLO:
        raise Unreadable(f"no whole ClientHello in {MAX_HELLO} bytes")
    return None


def _take(body: bytes, position: int, width: int) -> tuple[bytes, int]:
    """The field of ``width``-byte length at ``position``, and where the next one starts."""
    if position + width > len(body):
        raise Unreadable("a malformed ClientHello")
    size = int.from_bytes(body[position : position + width], "big")
    end = position + width + size
    if end > len(body):
        raise Unreadable("a malformed ClientHello")
    return body[position + width : end], end


def _name_in(body: bytes) -> str | None:
    """The host name of a ClientHello's ``server_name`` extension, or ``None``."""
    position = 2 + 32  # version, random
    _, position = _take(body, position, 1)  # session id
    _, position = _take(body, position, 2)  # cipher suites
    _, position = _take(body, position, 1)  # compression methods
    if position == len(body):
        return None  # no extensions
    extensions, _ = _take(body, position, 2)
    at = 0
    while at + 4 <= len(extensions):
        kind = int.from_bytes(extensions[at : at + 2], "big")
        data, at = _take(extensions, at + 2, 2)
        if kind == SERVER_NAME:
            names, _ = _take(data, 0, 2)
            inner = 0
            while inner + 3 <= len(names):
                name_type = names[inner]
                name, inner = _take(names, inner + 1, 2)
                if name_type == HOST_NAME:
                    return name.decode("ascii", "replace")
            return None
    return None


class NeedMore(Exception):
    """The ClientHello is not whole yet."""


def server_name(data: bytes | bytearray) -> str | None:
    """The SNI host name in the ClientHello that ``data`` starts with, or ``None`` (none).

    Raises:
        NeedMore: the ClientHello is not whole yet.
        NotHello: ``data`` is not TLS.
        Unreadable: TLS whose ClientHello cannot be read (see :class:`Unreadable`).
    """
    body = _hello_body(data)
    if body is None:
        raise NeedMore
    return _name_in(body)
