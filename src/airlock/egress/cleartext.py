"""HTTP sent in the clear inside a ``CONNECT`` tunnel (``curl -p http://…``, proxy agents that
tunnel every request): a front end at the tunnel's address (a CDN's, which serves many sites)
routes each request by its ``Host`` header, or by its target when that is absolute, so a
tunnel to an allowed host could reach any site the same front end serves. Each request is
read as it passes (llhttp, the plain proxy's parser; nothing is kept or copied) and the host
it names is held to a verdict, as the tunnel's TLS server name is
(:func:`airlock.egress.tunnels._name_check`).

What llhttp cannot read, once the bytes began as HTTP, ends the tunnel: a server more lenient
than llhttp (a bare line feed, a second ``Host``) might read a host in it. After an
``Upgrade`` (a WebSocket) or a ``CONNECT``, the bytes that follow are told apart as a
tunnel's first bytes are (:func:`starts_http`): a server that declined reads a request
there, which is read and judged like any; the new protocol's bytes (a WebSocket client's
frames never start like a request line) go on unread, on the connection the upgrade's host
was checked for. An upgrade with a body is refused: llhttp stops at its head, while a
server that declines reads the body, and a request after it, which would go unread.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httptools

from airlock.policy.hosts import normalize_host

METHOD = re.compile(rb"[\r\n]*[!#$%&'*+.^_`|~0-9A-Za-z-]+([ \t])?")
"""A request's method (any token, as servers read one), after empty lines servers skip, and
the space or tab after it."""
FIRST_LINE_LIMIT = 16 * 1024
"""Bytes held to tell whether a tunnel's first line is an HTTP request; past them, bytes that
could still be one are read as one (llhttp refuses what it cannot read)."""

MAX_HEAD = 64 * 1024
"""The longest request head read in a tunnel (the proxy's own default for plain requests)."""

Verdict = Callable[[str], str]
"""The reason to refuse a named host (``host`` or ``host:port`` as sent), or ``""``."""


def starts_http(data: bytes | bytearray) -> bool | None:
    """Whether ``data`` begins with an HTTP request line (a method, a space or tab, and
    ``HTTP/`` on the line, however many spaces are between); ``None``: too few bytes to tell.
    A first line without ``HTTP/`` is another protocol's (SMTP's ``EHLO``, Redis's ``GET
    key``); one still open at :data:`FIRST_LINE_LIMIT` is taken for HTTP."""
    full = len(data) >= FIRST_LINE_LIMIT
    if not data.strip(b"\r\n"):  # empty lines only, so far
        return True if full else None
    found = METHOD.match(data)
    if found is None:
        return False
    if found.group(1) is None:  # a token so far: no method runs to the limit
        return None if not full and found.end() == len(data) else False
    end = data.find(b"\n", found.end())
    line = data[found.end() : len(data) if end < 0 else end]
    if b"HTTP/" in line:
        return True
    if end < 0:
        return True if full else None
    return False


class CleartextRequests:
    """The requests of one tunnel's client, read as they pass: :meth:`feed` says why the tunnel
    must end (a request names a host ``verdict`` refuses, names none, or cannot be read),
    or ``""``."""

    __slots__ = (
        "_after",
        "_body",
        "_h2c",
        "_head_size",
        "_hosts",
        "_in_head",
        "_parser",
        "_url",
        "_verdict",
        "reason",
        "upgraded",
    )

    def __init__(self, verdict: Verdict) -> None:
        self._verdict = verdict
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._hosts: list[bytes] = []
        self._h2c = False
        self._body = False
        self._in_head = False
        self._head_size = 0
        self._after: bytearray | None = None
        """The bytes after an ``Upgrade`` or ``CONNECT``, while too few to tell whether a
        request comes next (``None``: none is pending)."""
        self.reason = ""
        """Why the tunnel was refused (kept: later bytes are refused too)."""
        self.upgraded = False
        """The bytes after an ``Upgrade`` or ``CONNECT`` are another protocol's: the rest
        is not read."""

    def on_message_begin(self) -> None:
        self._url = b""
        self._hosts = []
        self._h2c = False
        self._body = False
        self._in_head = True
        self._head_size = 0

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"host":
            self._hosts.append(value)
        elif lowered == b"upgrade" and b"h2c" in value.lower():
            self._h2c = True
        elif lowered == b"transfer-encoding" or (
            lowered == b"content-length" and value.strip(b" \t0")
        ):
            self._body = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        if not self.reason:
            self.reason = self._judge()

    def _judge(self) -> str:
        """The verdict on one request's head: its absolute target's host, then its ``Host``."""
        if self._h2c:  # HTTP/2 frames would follow, whose hosts llhttp cannot read
            return "a request in the clear in this tunnel asks to switch to HTTP/2 (h2c)"
        method = self._parser.get_method()
        named: list[str] = []
        if method == b"CONNECT":
            named.append(self._url.decode("latin-1"))
        elif not self._url.startswith(b"/") and self._url != b"*":
            try:
                url = httptools.parse_url(self._url)
            except httptools.HttpParserInvalidURLError:
                return (
                    "a request in the clear in this tunnel has a target that cannot be read "
                    f"({self._url[:80]!r})"
                )
            if url.host:
                named.append(url.host.decode("latin-1"))  # the verdict reads the host alone
        if len(self._hosts) > 1:
            return "a request in the clear in this tunnel has more than one Host header"
        if not self._hosts and not named:
            return "a request in the clear in this tunnel names no host (no Host header)"
        named += [value.decode("latin-1").strip() for value in self._hosts]
        for authority in named:
            reason = self._verdict(authority)
            if reason:
                return reason
        return ""

    def feed(self, data: bytes | bytearray) -> str:
        """Read the next bytes the client sends; why the tunnel must end, or ``""``."""
        if self.reason or self.upgraded:
            return self.reason
        if self._after is not None:
            return self._follow(data)
        try:
            self._parser.feed_data(bytes(data))
            if self._in_head:  # a head still open after these bytes: all of them were head
                self._head_size += len(data)
                if self._head_size > MAX_HEAD:
                    self.reason = (
                        f"a request in the clear in this tunnel has a head over {MAX_HEAD} bytes"
                    )
        except httptools.HttpParserUpgrade as upgrade:
            if self.reason:
                return self.reason
            if self._body:
                self.reason = (
                    "a request in the clear in this tunnel asks to upgrade with a body: a "
                    "server that declines reads the body, and what follows it as a request"
                )
                return self.reason
            self._after = bytearray()
            return self._follow(data[upgrade.args[0] :])
        except httptools.HttpParserError as error:
            self.reason = self.reason or (
                f"the HTTP sent in the clear in this tunnel cannot be read ({error}): a server "
                "might read another host in it"
            )
        return self.reason

    def _follow(self, data: bytes | bytearray) -> str:
        """Read bytes after an ``Upgrade`` or ``CONNECT``: once they tell, a request's are
        read as one (from a parser of their own), another protocol's are not read. Until
        they tell, they go on: no request line has ended in them."""
        after = self._after
        assert after is not None
        after += data
        http = starts_http(after)
        if http is None:
            return ""
        self._after = None
        if not http:
            self.upgraded = True
            return ""
        self._parser = httptools.HttpRequestParser(self)
        return self.feed(after)


def host_of(authority: str) -> str:
    """The host of ``host``, ``host:port`` or ``[v6]:port``, in canonical form (an invalid one
    trimmed and lower-cased: it equals no valid host)."""
    text = authority.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return normalize_host(text)
