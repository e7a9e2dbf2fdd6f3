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
CLIENT_HELLO = 1
SERVER_NAME = 0
HOST_NAME = 0
MAX_HELLO = 64 * 1024
"""The most of a ClientHello read (they are a few KB; post-quantum key shares included)."""


class NotHello(Exception):
    """The bytes are not a TLS ClientHello (another protocol, or a malformed one)."""


def _hello_body(data: bytes) -> bytes | None:
    """The ClientHello's handshake message once whole in ``data`` (records joined), ``None``
    while more is needed.

    Raises:
        NotHello: a record that is not a handshake, or a first message that is no ClientHello.
    """
    message = b""
    position = 0
    while position + 5 <= len(data):
        if data[position] != HANDSHAKE:
            raise NotHello("not a TLS handshake record")
        length = int.from_bytes(data[position + 3 : position + 5], "big")
        if position + 5 + length > len(data):
            break
        message += data[position + 5 : position + 5 + length]
        position += 5 + length
        if len(message) >= 4:
            if message[0] != CLIENT_HELLO:
                raise NotHello("the first handshake message is not a ClientHello")
            size = int.from_bytes(message[1:4], "big")
            if len(message) >= 4 + size:
                return message[4 : 4 + size]
    if data and data[0] != HANDSHAKE:
        raise NotHello("not a TLS handshake record")
    return None


def _take(body: bytes, position: int, width: int) -> tuple[bytes, int]:
    """The field of ``width``-byte length at ``position``, and where the next one starts."""
    if position + width > len(body):
        raise NotHello("a ClientHello cut short")
    size = int.from_bytes(body[position : position + width], "big")
    end = position + width + size
    if end > len(body):
        raise NotHello("a ClientHello cut short")
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


def server_name(data: bytes) -> str | None:
    """The SNI host name in the ClientHello that ``data`` starts with, or ``None`` (none).

    Raises:
        NeedMore: the ClientHello is not whole yet (under :data:`MAX_HELLO`).
        NotHello: ``data`` is not a TLS ClientHello (or one past :data:`MAX_HELLO`).
    """
    body = _hello_body(data)
    if body is None:
        if len(data) >= MAX_HELLO:
            raise NotHello(f"no whole ClientHello in {MAX_HELLO} bytes")
        raise NeedMore
    return _name_in(body)
