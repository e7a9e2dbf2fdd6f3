"""HTTP sent in the clear inside a ``CONNECT`` tunnel (``curl -p http://…``, proxy agents that
tunnel every request): a front end at the tunnel's address (a CDN's, which serves many sites)
routes each request by its ``Host`` header, or by its target when that is absolute, so a
tunnel to an allowed host could reach any site the same front end serves. Each request is
read as it passes (llhttp, the plain proxy's parser) and the host it names is held to a
verdict, as the tunnel's TLS server name is (:func:`airlock.egress.tunnels._name_check`).

A request's head goes on only once llhttp has read it whole and the verdict allows it: a
server cannot act on a line airlock has not judged (nginx answers a version-less ``GET
http://other.example/`` line at once, without waiting for headers). What llhttp cannot read
ends the tunnel, since a server more lenient than llhttp (a bare line feed, a second
``Host``) might read a host in it; so does a request without an ``HTTP/1.x`` version, and a
body, sized by its ``Content-Length``, whose first line is a request line
(:func:`starts_request`: a server that ignores the length would read it as the next
request); so does a host named with user information or in text no host is written in
(:func:`unnamed`), which its refusal does not quote (it may be a password). Only those
first bytes of a body wait; its head has gone on, so a client waiting for ``100 Continue``
gets it.

A tunnel's first bytes, and the bytes after an ``Upgrade`` (a WebSocket) or a ``CONNECT``,
are told apart by :func:`opening`: TLS has its server name judged; what a server might read
as a request line (:func:`starts_http`, lenient servers' spaces included) is read as HTTP,
so a server that declined an upgrade reads nothing airlock did not; another protocol's
bytes (a WebSocket client's frames never start like a request line) go on unread. An
upgrade with a body is refused: llhttp stops at its head, while a server that declines
reads the body, and a request after it.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable

import httptools

from airlock.egress.hello import NeedMore, NotHello, Unreadable, server_name
from airlock.policy.hosts import HostError, normalize_host, parse_host

SPACES = b" \t\x0b\x0c\x1c\x1d\x1e\x1f\x85\xa0"
"""What lenient servers take between a request line's words (and skip before it): Python's
``str.split`` splits on all of these (the request line read as Latin-1), and on a carriage
return inside the line too."""
LATIN1_SPACES = re.compile(b"[\x85\xa0]")
"""Spaces only after a method a server knows: a WebSocket client's compressed frame, not
final, starts ``A`` or ``B`` and a byte that can be one of these (its masked length)."""
METHODS = frozenset(
    b"DELETE GET HEAD POST PUT CONNECT OPTIONS TRACE PATCH PURGE QUERY SOURCE PRI COPY LOCK"
    b" MKCOL MOVE PROPFIND PROPPATCH SEARCH UNLOCK BIND REBIND UNBIND ACL REPORT MKACTIVITY"
    b" CHECKOUT MERGE M-SEARCH NOTIFY SUBSCRIBE UNSUBSCRIBE MKCALENDAR LINK UNLINK DESCRIBE"
    b" ANNOUNCE SETUP PLAY PAUSE TEARDOWN GET_PARAMETER SET_PARAMETER REDIRECT RECORD FLUSH".split()
)
"""The methods llhttp knows (HTTP's, WebDAV's, RTSP's), as written: Node reads a line of one
without a version (HTTP/0.9) and the headers after it, as nginx and Python's ``http.server``
do ``GET``'s."""
TARGET_START = re.compile(rb"[/*0-9A-Za-z]")
"""How a target llhttp reads starts: a path, ``*``, a scheme or an authority."""
METHOD = re.compile(
    rb"[\r\n" + SPACES + rb"]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)([\r" + SPACES + rb"]+)?"
)
"""A request's method (any token, as servers read one), after the empty lines and spaces
lenient servers skip, and the spaces after it."""
WORDS = re.compile(rb"[^\r" + SPACES + rb"]+")
"""The words of a request line."""
VERSION = re.compile(rb"(?:HTTP|RTSP|ICE)/", re.IGNORECASE)
"""A protocol version llhttp (or a lenient server) reads on a request line."""
REQUEST_METHOD = re.compile(rb"[A-Z][A-Z_-]*")
"""A method as servers that ignore a body's length would read the next request's."""
FIRST_LINE_LIMIT = 16 * 1024
"""Bytes held to tell whether a tunnel's first line is an HTTP request; past them, bytes that
could still be one are read as one (llhttp refuses what it cannot read)."""
BODY_LINE_LIMIT = 64 * 1024 + 1
"""Bytes of a body held to tell whether its first line is a request line: the longest
request line Python's ``http.server`` reads."""

MAX_HEAD = 64 * 1024
"""The longest request head read in a tunnel (the proxy's own default for plain requests)."""
MAX_HELD = MAX_HEAD + 256 * 1024
"""The most bytes held while a head is open: the head, and the read it began in (the end of
the request before it, a body's, is held with it)."""

BODY_REQUEST = (
    "a request in the clear in this tunnel has a body that starts as a request does: a "
    "server that ignores its Content-Length would read it as one"
)
"""Why a request whose body's first line is a request line is refused."""

Verdict = Callable[[str], str]
"""The reason to refuse a named host (``host`` or ``host:port`` as sent), or ``""``."""


def starts_http(data: bytes | bytearray, *, ended: bool = False) -> bool | None:
    """Whether ``data`` begins with what a server might read as an HTTP request line: a
    method, spaces, and on the line a protocol version (``HTTP/``, ``RTSP/``, ``ICE/``), or a
    method llhttp knows (:data:`METHODS`) and a target on a line that ends (HTTP/0.9, which
    Node, nginx and Python's ``http.server`` read, and llhttp then refuses; ``GET`` and any
    words), or empty lines (llhttp passes them and reads on); ``None``: too few bytes to
    tell. A line of another method is another protocol's once it holds a line
    end, a carriage return or a NUL without a version (SMTP's ``EHLO host``, SSH's banner,
    git's ``git-upload-pack /repo``, a terminal's ``ls`` after an upgrade): no server routes
    such a line. One still open at :data:`FIRST_LINE_LIMIT` is taken for HTTP; ``ended``:
    the client closed its side, so the line ends with ``data``."""
    full = len(data) >= FIRST_LINE_LIMIT
    if not data.strip(b"\r\n" + SPACES):  # empty lines and spaces only, so far
        if b"\n" in data:  # llhttp reads on (and passes empty lines: gopher's, finger's)
            return True
        return False if ended else (True if full else None)
    found = _method(data)
    if found is None:
        return False
    if found.group(2) is None:  # a token so far: no method runs to the limit
        return None if not (full or ended) and found.end() == len(data) else False
    end = data.find(b"\n", found.end())
    if end < 0 and ended:
        end = len(data)
    line = bytes(data[found.end() : len(data) if end < 0 else end])
    if VERSION.search(line):
        return True
    if found.group(1) in METHODS:
        if end < 0:
            return True if full else None
        words = WORDS.findall(line)
        if found.group(1) == b"GET":  # nginx reads spaces in an HTTP/0.9 target
            return bool(words)
        return len(words) == 1 and TARGET_START.match(words[0]) is not None
    if end >= 0 or b"\r" in data[found.start(2) :] or b"\x00" in line:
        return False
    return True if full else None


def starts_request(data: bytes | bytearray, *, ended: bool = False) -> bool | None:
    """Whether a body's first bytes would be read as a request by a server that ignores the
    body's length (Python's ``http.server`` among them): an upper-case method, a target, and
    a version or (``GET``) nothing after it; ``None``: too few bytes to tell, up to
    :data:`BODY_LINE_LIMIT`; ``ended``: the body ends with ``data`` (what follows it, the
    next request's line end included, would end its line). Narrower than
    :func:`starts_http`: a body is usually text, and only a request line in its first line
    matters."""
    if not data.strip(b"\r\n" + SPACES):  # servers skip empty lines before a request
        return None if len(data) < BODY_LINE_LIMIT and not ended else False
    found = _method(data)
    if found is None:
        return False
    method = found.group(1)
    if found.group(2) is None:  # a token so far
        if found.end() < len(data) or len(data) >= BODY_LINE_LIMIT or ended:
            return False
        return None if REQUEST_METHOD.fullmatch(method) else False
    if not REQUEST_METHOD.fullmatch(method):
        return False
    end = data.find(b"\n", found.end())
    if end < 0:
        if not ended:
            return None if len(data) < BODY_LINE_LIMIT else False
        end = len(data)
    words = WORDS.findall(data, found.end(), end)
    if len(words) == 2:
        return VERSION.match(words[1]) is not None
    return method == b"GET" and len(words) == 1


def _method(data: bytes | bytearray) -> re.Match[bytes] | None:
    """The method (group 1) and the spaces after it (group 2), with which a request line
    would start; ``None``: no token starts ``data``."""
    found = METHOD.match(data)
    if (
        found is not None
        and found.group(2) is not None
        and found.group(1) not in METHODS
        and LATIN1_SPACES.search(found.group(2))
    ):
        return None
    return found


class Opening(enum.Enum):
    """What a tunnel's first bytes (or those after an upgrade) are, by :func:`opening`."""

    MORE = "too few bytes to tell"
    HTTP = "HTTP in the clear: read request by request"
    OPAQUE = "another protocol, or TLS whose server name passed: not read"


def opening(data: bytes | bytearray, verdict: Verdict, *, ended: bool = False) -> Opening | str:
    """Tell what ``data`` starts: TLS (its server name judged by ``verdict``), HTTP, or
    another protocol; a string: why the tunnel is refused. ``ended``: the client closed its
    side after ``data``, which must be told now (a ClientHello cut short goes on as it is:
    no server reads a name in it)."""
    try:
        name = server_name(data)
    except NeedMore:
        return Opening.OPAQUE if ended else Opening.MORE
    except NotHello:
        http = starts_http(data, ended=ended)
        if http is None:
            return Opening.MORE
        return Opening.HTTP if http else Opening.OPAQUE
    except Unreadable as error:
        return (
            f"the TLS in this tunnel starts with {error}: refused (the server might read "
            "another host's name in it)"
        )
    return (verdict(name) if name else "") or Opening.OPAQUE


class CleartextRequests:
    """The requests of one tunnel's client, read as they pass (a
    :class:`~airlock.egress.relay.Watch`): :meth:`feed` says what may go on now and why the
    tunnel must end (a request names a host ``verdict`` refuses, names none, or cannot be
    read)."""

    __slots__ = (
        "_after",
        "_body",
        "_body_start",
        "_fresh",
        "_h2c",
        "_head_size",
        "_held",
        "_hosts",
        "_in_head",
        "_length",
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
        self._length = False
        self._in_head = False
        self._head_size = 0
        """The head's bytes so far: what its callbacks carried in the read it began in, then
        every read while it is open."""
        self._fresh = False
        """The head began in the read being parsed."""
        self._held = bytearray()
        """Bytes read but not yet let through: a head not yet whole, or a body whose start
        cannot be told yet."""
        self._body_start: bytearray | None = None
        """The first bytes of a body sized by its length, while too few to tell whether they
        start as a request does (``None``: none is pending)."""
        self._after: bytearray | None = None
        """The bytes after an ``Upgrade`` or ``CONNECT``, while too few to tell what they
        are (``None``: none is pending)."""
        self.reason = ""
        """Why the tunnel was refused (kept: later bytes are refused too)."""
        self.upgraded = False
        """The bytes after an ``Upgrade`` or ``CONNECT`` are another protocol's: the rest
        is not read."""

    def on_message_begin(self) -> None:
        self._url = b""
        self._hosts = []
        self._h2c = False
        self._body = self._length = False
        self._in_head = True
        self._head_size = 0
        self._fresh = True

    def on_url(self, url: bytes) -> None:
        self._url += url
        if self._fresh:
            self._head_size += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._fresh:
            self._head_size += len(name) + len(value) + 4  # ": " and CRLF
        lowered = name.lower()
        if lowered == b"host":
            self._hosts.append(value)
        elif lowered == b"upgrade" and b"h2c" in value.lower():
            self._h2c = True
        elif lowered == b"transfer-encoding":
            self._body = True
        elif lowered == b"content-length" and value.strip(b" \t0"):
            self._body = self._length = True

    def on_headers_complete(self) -> None:
        self._in_head = False
        if self._length:
            self._body_start = bytearray()
        if not self.reason:
            self.reason = self._judge()

    def on_body(self, body: bytes) -> None:
        if self._body_start is None or self.reason:
            return
        self._body_start += body[:BODY_LINE_LIMIT]
        self._tell_body(ended=False)

    def on_message_complete(self) -> None:
        # a body that ends before its first line does: the next request's line end ends it
        if self._body_start is not None:
            self._tell_body(ended=True)

    def _tell_body(self, *, ended: bool) -> None:
        """Tell the body's first bytes (:attr:`_body_start`) once they can be, ``ended``
        there or not: a request line refuses the tunnel (:func:`starts_request`)."""
        assert self._body_start is not None
        request = starts_request(self._body_start, ended=ended)
        if request is None:
            return
        self._body_start = None
        if request and not self.reason:
            self.reason = BODY_REQUEST

    def _judge(self) -> str:
        """The verdict on one request's head: its version, its absolute target's host, then
        its ``Host``."""
        if self._h2c:  # HTTP/2 frames would follow, whose hosts llhttp cannot read
            return "a request in the clear in this tunnel asks to switch to HTTP/2 (h2c)"
        version = self._parser.get_http_version()
        if version not in ("1.0", "1.1"):
            return (
                f"a request in the clear in this tunnel is HTTP/{version}: only HTTP/1.0 "
                "and HTTP/1.1 requests are read"
            )
        method = self._parser.get_method()
        named: list[str] = []
        if method == b"CONNECT":
            named.append(self._url.decode("latin-1"))
        elif not self._url.startswith(b"/") and self._url != b"*":
            try:
                url = httptools.parse_url(self._url)
            except httptools.HttpParserInvalidURLError:  # not quoted: it may hold a password
                return "a request in the clear in this tunnel has a target that cannot be read"
            if url.host:
                named.append(url.host.decode("latin-1"))  # the verdict reads the host alone
        if len(self._hosts) > 1:
            return "a request in the clear in this tunnel has more than one Host header"
        if not self._hosts and not named:
            return "a request in the clear in this tunnel names no host (no Host header)"
        named += [value.decode("latin-1").strip() for value in self._hosts]
        for authority in named:
            reason = unnamed(authority) or self._verdict(authority)
            if reason:
                return reason
        return ""

    def feed(self, data: bytes | bytearray) -> tuple[bytes | bytearray, str]:
        """Read the next bytes the client sends: the bytes that may go on now (held ones
        first), and why the tunnel must end, or ``""``."""
        if self.reason:
            return b"", self.reason
        if self.upgraded:
            return data, ""
        if self._after is not None:
            return self._follow(data)
        self._fresh = False
        try:
            self._parser.feed_data(bytes(data))
            if self._in_head:
                if not self._fresh:  # the head was open before this read: all of it is head
                    self._head_size += len(data)
                if self._head_size > MAX_HEAD or len(self._held) + len(data) > MAX_HELD:
                    self.reason = self.reason or (
                        f"a request in the clear in this tunnel has a head over {MAX_HEAD} bytes"
                    )
        except httptools.HttpParserUpgrade as upgrade:
            if self._body and not self.reason:
                self.reason = (
                    "a request in the clear in this tunnel asks to upgrade with a body: a "
                    "server that declines reads the body, and what follows it as a request"
                )
            if self.reason:
                return b"", self.reason
            at = upgrade.args[0]
            self._held += data[:at]
            head, self._held = self._held, bytearray()
            self._after = bytearray()
            rest, reason = self._follow(data[at:])
            return (b"", reason) if reason else (head + rest, "")
        except httptools.HttpParserError as error:
            self.reason = self.reason or (
                f"the HTTP sent in the clear in this tunnel cannot be read ({error}): a server "
                "might read another host in it"
            )
        if self.reason:
            return b"", self.reason
        return self._release(data)

    def _release(self, data: bytes | bytearray) -> tuple[bytes | bytearray, str]:
        """What of the held bytes and ``data`` may go on: all but a head still open (held
        whole, with what came before it in the same read) or the first bytes of a body not
        yet told (the last of the stream: its head, judged, goes on, so a client waiting for
        ``100 Continue`` gets it)."""
        if self._in_head:
            keep = len(self._held) + len(data)
        else:
            keep = 0 if self._body_start is None else len(self._body_start)
        if not keep:
            if self._held:
                self._held += data
                data, self._held = self._held, bytearray()
            return data, ""
        self._held += data
        cut = len(self._held) - keep
        passed = self._held[:cut]
        del self._held[:cut]
        return passed, ""

    def end(self) -> tuple[bytes | bytearray, str]:
        """The client closed its side: the bytes still held that may go on, told as they
        end (a server may act on them at the close), and why the rest may not, or ``""``.

        What follows an upgrade is told as a tunnel's first bytes are; a body's first line
        is judged as ended; a head not yet whole is judged as if it ended there (its line
        and headers as they stand: ``Host: evil.te`` is judged, an unfinished line is
        refused). Bytes that went on before are not called back: answers to them still
        come.
        """
        if self.reason:
            return b"", self.reason
        passed: bytes | bytearray = b""
        if self._after is not None:
            passed, reason = self._follow(b"", ended=True)
            if reason:
                return b"", reason
        return bytes(passed) + self._ended(), self.reason

    def _ended(self) -> bytes:
        """The held bytes that may go on at the client's close (:meth:`end`); sets
        :attr:`reason` when they may not."""
        if self._body_start is not None:
            self._tell_body(ended=True)
        elif self._in_head:
            # the head as it stands, ended: its last line's end, then the head's
            ending = b"\r\n" if self._held.endswith(b"\r\n") else b"\r\n\r\n"
            try:
                self._parser.feed_data(ending)
            except httptools.HttpParserUpgrade:
                pass
            except httptools.HttpParserError as error:
                self.reason = self.reason or (
                    f"the client in this tunnel closed its side in the middle of a request "
                    f"sent in the clear that cannot be read as it stands ({error}): not sent"
                )
            if self._in_head and not self.reason:  # pragma: no cover - two line ends end a head
                self.reason = "a request in the clear in this tunnel was cut off: not sent"
        if self.reason:
            self._held = bytearray()
            return b""
        held, self._held = bytes(self._held), bytearray()
        return held

    def _follow(
        self, data: bytes | bytearray, *, ended: bool = False
    ) -> tuple[bytes | bytearray, str]:
        """Read bytes after an ``Upgrade`` or ``CONNECT``, held until :func:`opening`
        tells what they are (``ended``: now, the client having closed its side): a
        request's are read as one (by a parser of their own), another protocol's go on
        unread."""
        after = self._after
        assert after is not None
        after += data
        kind = opening(after, self._verdict, ended=ended)
        if kind is Opening.MORE:
            return b"", ""
        self._after = None
        if kind is Opening.HTTP:
            self._parser = httptools.HttpRequestParser(self)
            return self.feed(after)
        if kind is Opening.OPAQUE:
            self.upgraded = True
            return after, ""
        self.reason = kind
        return b"", kind


HOST_TEXT = re.compile(r"[A-Za-z0-9._\-\[\]:%]*")
"""What a host name, an address and a port are written with (``%`` for an IPv6 zone)."""


def unnamed(authority: str) -> str:
    """Why ``authority`` (a ``Host`` header's value, a ``CONNECT``'s or an absolute target's
    host, as sent) names no host, or ``""``: user information (``user:password@``), or text
    that is not a host name or an address with an optional port. Such text is refused
    unquoted (it may be a password the redaction engine cannot know), before the verdict,
    whose reason and record would name it. Text of a host's characters only
    (:data:`HOST_TEXT`) is left to the verdict, which names it (cut, when longer than a
    host name can be)."""
    text = authority.strip()
    if "@" in text:
        return (
            "a request in the clear in this tunnel names a host with user information "
            "(user:password@): not quoted, refused"
        )
    if HOST_TEXT.fullmatch(text):  # judged (and named) by the verdict, however long
        return ""
    if text.startswith("[") and "]" in text:
        host, port = text[1 : text.index("]")], text[text.index("]") + 1 :]
        if port and not port.startswith(":"):
            host = text  # text after the brackets: not a host
        port = port.removeprefix(":")
    elif text.count(":") == 1:
        host, port = text.split(":", 1)
    else:  # a name, or an IPv6 address without brackets
        host, port = text, ""
    try:
        parse_host(host)
    except HostError:
        valid = False
    else:
        valid = not port or (port.isascii() and port.isdigit() and len(port) <= 5)
    if valid:
        return ""
    return (
        "a request in the clear in this tunnel names a host that is not a host name or an "
        "address (with an optional port): not quoted, refused"
    )


def host_of(authority: str) -> str:
    """The host of ``host``, ``host:port`` or ``[v6]:port``, in canonical form (an invalid one
    trimmed and lower-cased: it equals no valid host)."""
    text = authority.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    return normalize_host(text)
