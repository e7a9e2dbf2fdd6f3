"""HTTP/1.1 for the proxy: client requests in (httptools, strict), forwarded heads out.

Theory of operation
-------------------
:class:`RequestParser` feeds whatever bytes the client sent to httptools (llhttp) and turns
its callbacks into a queue of events: a :class:`RequestHead`, body pieces (already de-chunked)
and an end marker, per request, in order; pipelined requests simply queue up. llhttp refuses
what request smuggling needs: both ``Content-Length`` and ``Transfer-Encoding``, two
``Content-Length``\\ s, a bad or oversized chunk size, obsolete line folding, bare LF, a space
before the colon. On top of it this module refuses a ``Transfer-Encoding`` other than exactly
``chunked`` (or any in an HTTP/1.0 request, whose framing RFC 9112 calls faulty), a head
larger than the limit, a chunked body's trailer section larger than the same limit, an
origin-form target (this is a proxy), and an ``https://`` target outside ``CONNECT``. Every
refusal is a :class:`BadRequest` carrying the status to answer (400, 431, 501) and a
sentence for the client.

A forwarded request is rebuilt, not copied: the request line in origin form (absolute form
when chaining to another proxy), ``Host`` set from the URL's host as the rules read it (never
the client's own ``Host``, nor its spelling of the URL's: the rules judged that host),
hop-by-hop headers dropped (``Connection`` and what it
names, ``Proxy-*``, ``Keep-Alive``, ``TE``, ``Trailer``, ``Upgrade``, ``Expect``), and the
body re-framed: the same ``Content-Length``, or re-chunked. So no byte the client chose
reaches the origin's framing. A request with a body asks the origin to close the connection
after it (``Connection: close``): an origin that answers without reading the body (many
ignore a body on ``OPTIONS`` or ``DELETE``) would otherwise read it as the next request.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

import httptools

from airlock.egress.framing import joined_values, named_codings, withheld

CONNECT = b"CONNECT"
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"expect",
        b"host",
        b"content-length",
    }
)
"""Headers never copied to the origin (``Host`` and ``Content-Length`` are written anew)."""

REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    417: "Expectation Failed",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    505: "HTTP Version Not Supported",
}
"""The reason phrase of each status airlock answers itself (the git gateway's ``404``, a body
that cannot be checked's ``415``, …); ``Error`` for any other."""


class BadRequest(Exception):
    """A request the proxy will not handle: answer ``status`` with ``message`` and close.
    The message is :func:`~airlock.egress.framing.withheld`: it may quote what was sent."""

    def __init__(self, status: int, message: str) -> None:
        message = withheld(message)
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class RequestHead:
    """One request's line and headers, as received (names as sent, values raw bytes)."""

    method: bytes
    target: bytes
    version: str
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    chunked: bool
    content_length: int | None
    host: str = ""
    port: int = 0
    path: bytes = b"/"
    """Path and query in origin form (plain HTTP)."""
    expect_continue: bool = False

    def header(self, name: bytes) -> bytes | None:
        """Every value of the header ``name`` (lower case), as :func:`joined_values` joins
        them."""
        return joined_values(self.headers, name)


class End:
    """The end of one request's body (one instance: :data:`END`)."""


END = End()
Event = RequestHead | bytes | End


class RequestParser:
    """Turns client bytes into :class:`RequestHead`, body ``bytes`` and :data:`END` events.

    After a ``CONNECT`` head, :attr:`tunnel_data` holds the bytes that followed it (the start
    of the tunnel) and the parser takes no more input.

    How long a head may take is the connection's to time (:class:`~airlock.egress.client.Client`),
    from its opening or its previous answer, not from the head's first byte: llhttp skips blank
    lines before a request without beginning one, so a client sending only those would never
    have begun a head.

    Args:
        max_header_bytes: the most a request's line and headers may take (and its trailers).
    """

    def __init__(self, max_header_bytes: int) -> None:
        self.events: deque[Event] = deque()
        self.max_header_bytes = max_header_bytes
        self.tunnel_data: bytes | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._size = 0
        """The request line's target and headers so far, as the head's limit counts them."""
        self.in_head = False
        """A request's first byte has come, and its head is not whole yet."""
        self._head_bytes = 0
        self._ended_head = False
        self._trailers = False
        self._chunked = False
        self._since_body = 0
        """Bytes of a chunked body read since its last body piece: its framing, then its
        trailer section, which httptools gathers whole (bounded as the head is)."""

    def feed(self, data: bytes) -> None:
        """Parse ``data``; events go to :attr:`events`.

        Raises:
            BadRequest: the bytes are not a request this proxy handles.
        """
        if self._chunked:  # counted before parsing: a body piece in this read resets it
            self._since_body += len(data)
        self._ended_head = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            head = self.events[-2] if len(self.events) >= 2 else None
            if not isinstance(head, RequestHead) or head.method != CONNECT:
                raise BadRequest(
                    501, "protocol upgrades over plain HTTP are not supported (use CONNECT)"
                ) from None
            self.tunnel_data = data[upgrade.args[0] :]
        except httptools.HttpParserError as error:
            if isinstance(error.__context__, BadRequest):  # raised by a callback below
                raise error.__context__ from None
            raise BadRequest(400, f"malformed request: {error}") from None
        if self.in_head:
            # Counted per read; a read that ended a head (pipelined requests) counts from its
            # last blank line: no head in progress holds one (a body after it counts too).
            start = data.rfind(b"\r\n\r\n") + 4 if self._ended_head else 0
            self._head_bytes += len(data) - max(start, 0)
        if self._head_bytes > self.max_header_bytes:
            raise BadRequest(431, f"request line and headers exceed {self.max_header_bytes} bytes")
        if self._since_body > self.max_header_bytes:
            raise BadRequest(
                431,
                f"the request's trailer section (or a chunk's size line) exceeds "
                f"{self.max_header_bytes} bytes",
            )

    # httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.in_head = True
        self._trailers = False
        self._url = b""
        self._headers = []
        self._size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._trailers:
            self._headers.append((bytes(name), bytes(value)))
            self._size += len(name) + len(value) + 4

    def on_headers_complete(self) -> None:
        if self._size > self.max_header_bytes:
            raise BadRequest(431, f"request line and headers exceed {self.max_header_bytes} bytes")
        parser = self._parser
        method = parser.get_method()
        head = RequestHead(
            method=method,
            target=self._url,
            version=parser.get_http_version(),
            headers=self._headers,
            keep_alive=parser.should_keep_alive(),
            chunked=False,
            content_length=None,
        )
        if head.version not in ("1.0", "1.1"):
            raise BadRequest(505, f"HTTP/{head.version} is not spoken here (HTTP/1.1 or 1.0)")
        _check_framing(head)
        if method == CONNECT:
            head.host, head.port = parse_authority(self._url)
        else:
            _resolve_target(head)
        self.in_head = False
        self._trailers = True
        self._head_bytes = 0
        self._ended_head = True
        self._chunked = head.chunked
        self.events.append(head)

    def on_body(self, body: bytes) -> None:
        self.events.append(bytes(body))
        self._since_body = 0

    def on_message_complete(self) -> None:
        self._chunked = False
        self._since_body = 0
        self.events.append(END)


def _check_framing(head: RequestHead) -> None:
    """Read the headers that frame the body (llhttp has refused two lengths, a length with a
    coding, a bad length), refusing a coding but ``chunked``, a ``Transfer-Encoding`` in
    HTTP/1.0, and an expectation but ``100-continue``.

    Raises:
        BadRequest: ``501``, ``400`` or ``417``, saying which.
    """
    for name, value in head.headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            if head.version == "1.0":  # RFC 9112 §6.1: its framing is faulty
                raise BadRequest(
                    400,
                    "Transfer-Encoding in an HTTP/1.0 request: refused (HTTP/1.0 has no "
                    "chunked framing; servers read its body apart)",
                )
            if value.strip().lower() != b"chunked":
                raise BadRequest(
                    501,
                    f"Transfer-Encoding {named_codings([value])} is not supported (only chunked)",
                )
            head.chunked = True
        elif lowered == b"content-length":
            head.content_length = int(value)
        elif lowered == b"expect":
            if value.strip().lower() != b"100-continue":
                raise BadRequest(417, "only Expect: 100-continue is understood")
            head.expect_continue = True


def parse_authority(authority: bytes) -> tuple[str, int]:
    """``host:port`` of a ``CONNECT`` (port required), as ``(host, port)``. Brackets are
    taken only around an IPv6 address, as in a URL: a name holds none.

    A refusal says what is wrong without quoting the authority: a client may have put a
    password there (``user:pa$$@host:443``), of any characters, which no pattern finds.

    Raises:
        BadRequest: not ``host:port``, or a bracket elsewhere (``[example.com]:443``,
            ``[/bold]x:443``), or an IPv6 address without them (``::1:443``).
    """
    text = authority.decode("latin-1")
    host, colon, port = text.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    misplaced = "[" in host or "]" in host or (bracketed and ":" not in host)
    if misplaced or (not bracketed and ":" in host):  # an unbracketed IPv6: where is its port?
        why = "a bracket elsewhere" if misplaced else "a colon in the host"
        raise BadRequest(
            400,
            f"CONNECT needs host:port (brackets only around an IPv6 address): {why} "
            "(the authority is not quoted)",
        )
    if not colon or not host:
        why = "no port" if not colon else "no host"
    elif not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        why = "the port is not a number from 1 to 65535"
    else:
        return host.lower(), int(port)
    raise BadRequest(400, f"CONNECT needs host:port: {why} (the authority is not quoted)")


NOT_QUOTED = "(the URL is not quoted)"
"""What a refusal of a plain request's URL says in place of the URL: its user information,
path or query may hold a password, of any characters, which no pattern finds (as
:func:`~airlock.egress.framing.without_userinfo` and the inspected refusals hold)."""


def _resolve_target(head: RequestHead) -> None:
    target = head.target
    scheme = target[:8].lower()
    if not scheme.startswith(b"http://"):
        if scheme.startswith(b"https://"):
            raise BadRequest(
                400, "https:// URLs go through CONNECT (set HTTPS_PROXY, not only HTTP_PROXY)"
            )
        raise BadRequest(
            400,
            "this is a forward proxy: send the full URL (http://host/path), or CONNECT host:port",
        )
    try:
        url = httptools.parse_url(b"http://" + target[7:])  # the scheme in any case
        host = url.host
    except httptools.HttpParserInvalidURLError:
        url, host = _underscored(target)
    if not host:
        raise BadRequest(400, f"no host in the URL {NOT_QUOTED}")
    if url.userinfo:
        raise BadRequest(400, "credentials in a proxied URL are refused (user:password@host)")
    head.host = host.decode("latin-1").lower()
    if url.port == 0:
        raise BadRequest(400, f"port 0 in the URL {NOT_QUOTED}")
    head.port = url.port or 80
    path = url.path or b"/"
    head.path = path + b"?" + url.query if url.query is not None else path


def _underscored(target: bytes) -> tuple[Any, bytes]:
    """The URL of a plain request whose host holds ``_`` (``http://my_svc:8080/``), which
    httptools refuses although such names are in use (a container's, a service's): read with
    each ``_`` of its authority taken for a letter, its host then taken back from the target
    (the same length, at the same place). The rules and ``CONNECT`` read such names alike.

    Raises:
        BadRequest: the URL is malformed without its ``_`` too (or holds none).
    """
    rest = target[7:]
    end = min((at for at in map(rest.find, (b"/", b"?", b"#")) if at >= 0), default=len(rest))
    authority = rest[:end]
    try:
        if b"_" not in authority:
            raise httptools.HttpParserInvalidURLError
        url = httptools.parse_url(b"http://" + authority.replace(b"_", b"x") + rest[end:])
    except httptools.HttpParserInvalidURLError:
        raise BadRequest(400, f"malformed URL: not http://host[:port]/path {NOT_QUOTED}") from None
    start = authority.rfind(b"@") + 1
    start += authority[start : start + 1] == b"["
    return url, authority[start : start + len(url.host or b"")]


def forwarded_head(
    head: RequestHead, absolute: str | None = None, *, host: str | None = None
) -> bytes:
    """The request line and headers to send upstream (see the module's docstring).

    ``absolute``: to another proxy, the host as the rules read it, for the request line in
    absolute form and ``Host`` (the upstream proxy then reads the address that was checked,
    not the client's spelling of it). ``host``: to the destination, the host as the rules
    read it, for ``Host``: the origin serves the name that was judged and dialled
    (``localhost``, not ``LOCALHOST.``; ``127.0.0.1``, not ``0x7f.1``; an IDN's A-label), not
    another spelling of it, which a front end might route apart."""
    named = connection_tokens(head.headers)
    text = absolute if absolute is not None else host if host is not None else head.host
    name = text.encode("latin-1")
    if ":" in text:
        name = b"[" + name + b"]"
    authority = name if head.port == 80 else name + b":%d" % head.port
    target = b"http://" + authority + head.path if absolute is not None else head.path
    lines = [head.method + b" " + target + b" HTTP/1.1"]
    lines.append(b"Host: " + authority)
    for name, value in head.headers:
        lowered = name.lower()
        if lowered in HOP_BY_HOP or lowered in named or lowered.startswith(b"proxy-"):
            continue
        lines.append(name + b": " + value)
    if not head.keep_alive or head.chunked or head.content_length:
        lines.append(b"Connection: close")  # the client's (the answer says so), or a body's
    if head.chunked:
        lines.append(b"Transfer-Encoding: chunked")
    elif head.content_length is not None:
        lines.append(b"Content-Length: %d" % head.content_length)
    lines.append(b"\r\n")
    return b"\r\n".join(lines)


def connection_tokens(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The header names a ``Connection`` (or ``Proxy-Connection``) header lists, lower-cased."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() in (b"connection", b"proxy-connection"):
            for token in value.split(b","):
                tokens.add(token.strip().lower())
    return frozenset(tokens)


ROUTED_AND_FRAMED = frozenset({b"host", b"content-length", b"transfer-encoding"})
"""Request headers a ``Connection`` naming them does not drop (:func:`hop_by_hop_request`)."""


def hop_by_hop_request(headers: list[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The lower-cased names of a request's headers that stay on the client's hop when its
    head is passed on (inside inspected TLS; :func:`forwarded_head` rebuilds the head and
    leaves the same out): what its ``Connection`` (or ``Proxy-Connection``) names (RFC 9110
    §7.6.1), ``Keep-Alive``, ``TE`` (§10.1.4: hop by hop), and every ``Proxy-*`` (the
    client's word to this proxy: ``Proxy-Authorization`` is never an origin's).

    ``Connection`` itself is the caller's to rewrite, and a header that routes or frames the
    request (:data:`ROUTED_AND_FRAMED`) stays even when ``Connection`` names it: the host
    was checked by it, and the body's end found by it, so the origin must read the same;
    dropped, an origin would read the body as a request of its own. A server reached
    directly frames the body by them whatever ``Connection`` says, so keeping them (and
    leaving the option out, :func:`connection_options`) sends on what the client meant."""
    dropped = {b"keep-alive", b"te"} | connection_tokens(headers)
    dropped.update(name.lower() for name, _ in headers if name.lower().startswith(b"proxy-"))
    return frozenset(dropped - ROUTED_AND_FRAMED - {b"connection"})


CONTROL_OPTIONS = frozenset({b"close", b"keep-alive"})
"""``Connection`` options that name no header: they say whether the connection is kept."""


def connection_options(headers: list[tuple[bytes, bytes]]) -> list[bytes]:
    """The options of a request's ``Connection`` lines (lower-cased, in order, once each)
    that may go on with it to the next hop: ``close``, ``keep-alive`` and those naming a
    header of the client's own, never one this module lists in :data:`HOP_BY_HOP` (the
    headers that frame or route the request, ``Content-Length``, ``Transfer-Encoding``,
    ``Host``, or that only this hop reads, ``TE``, ``Trailer``, ``Upgrade``, ``Expect``,
    ``Proxy-*``). A next hop that honours ``Connection`` (RFC 9110 §7.6.1) removes every
    header it names: without ``Content-Length`` it would read the body as a request of its
    own, which airlock never judged; without ``Host`` it would route the request by another
    name. Plain forwarding (:func:`forwarded_head`) sends none of the client's options; the
    inspector, which passes a request's headers on, sends these."""
    options: list[bytes] = []
    for name, value in headers:
        if name.lower() != b"connection":
            continue
        for token in (part.strip().lower() for part in value.split(b",")):
            if not token or token in options:
                continue
            if token in CONTROL_OPTIONS or not (token in HOP_BY_HOP or token.startswith(b"proxy-")):
                options.append(token)
    return options


def header_safe(text: str) -> str:
    """``text`` fit for a header's value: printable ASCII (``?`` for the rest), 300 at most."""
    return "".join(char if 32 <= ord(char) < 127 else "?" for char in text)[:300]


def simple_response(status: int, body: str, extra: tuple[tuple[str, str], ...] = ()) -> bytes:
    """A complete ``text/plain`` response that closes the connection."""
    data = body.encode("utf-8")
    lines = [
        f"HTTP/1.1 {status} {REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(data)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in extra),
        "",
        "",
    ]
    return "\r\n".join(lines).encode("latin-1", "replace") + data


def redact_query(path: bytes) -> str:
    """``/p?a=1&b`` → ``/p?a=…&b``: names kept, values dropped (the audit log's path)."""
    text = path.decode("latin-1")
    base, mark, query = text.partition("?")
    if not mark:
        return base
    parts = []
    for part in query.split("&"):
        name, equals, _ = part.partition("=")
        parts.append(f"{name}=…" if equals else name)
    return f"{base}?{'&'.join(parts)}"
