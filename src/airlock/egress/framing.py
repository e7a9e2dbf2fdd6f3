"""HTTP/1.1 heads and body framing, read from a stream: the inspector's and the git gateway's.

Theory of operation
-------------------
:func:`read_head` reads one request or response head, a line at a time (each must end in
CRLF: one ending in a bare LF is refused as it comes, not waited on for a CRLF CRLF that never
comes), at most :data:`MAX_HEAD` bytes, into a :class:`Head`; the CRs and LFs before a request
line are skipped as llhttp skips them (``\\rGET`` is a ``GET``). :meth:`Head.framing` says how
the body that follows is delimited, refusing what request smuggling needs (both
``Content-Length`` and ``Transfer-Encoding``, several lengths, a coding other than
``chunked``, a coding in an HTTP/1.0 request), and :func:`body_pieces` yields that body as it
arrives, as the bytes on the wire (chunked stays chunked) paired with the content among them.
Every refusal is an :class:`HttpError` carrying the status the client gets: ``4xx`` for a
request, ``502`` for a response (the origin's fault).

A request's bytes are passed on as the client wrote them, so each of them is first read by
llhttp, the strict parser the plain proxy reads requests with (:mod:`airlock.egress.http1`), in
a :class:`RequestCheck` that goes with the :class:`Head`: the head by :func:`read_head`, the
body by :func:`body_pieces` before each piece is handed on. What llhttp refuses is refused here
with ``400`` and its words: a bare CR or LF, a NUL or other control character in a header
line, a chunk extension or trailer that is malformed (or a trailer that frames), a malformed
version or request line, ``Content-Length`` twice, a request that ends elsewhere than this
module found its end. A response's head, passed on as the origin wrote it, is read by llhttp's
response parser too, as the plain proxy relays responses: a header line holding a bare CR,
which a lenient client reads as two lines (one of them a ``Content-Length`` this module never
saw), is the origin's fault, not the client's answer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable

import httptools

MAX_HEAD = 64 * 1024
"""The longest request or response head accepted."""
PIECE = 256 * 1024
"""Bytes read at a time from a body."""
HOP_BY_HOP = frozenset({b"proxy-connection", b"proxy-authorization", b"keep-alive"})
"""Headers of a client's request that are not sent on to the origin."""

Framing = tuple[str, int]
"""``("length", n)``, ``("chunked", 0)``, ``("close", 0)`` (until end of stream) or
``("none", 0)``."""


BODILESS = frozenset({"GET", "HEAD"})
"""Methods whose request is refused with a body (:func:`refuse_a_body_on_get`)."""


def refuse_a_body_on_get(method: str, framing: Framing) -> None:
    """Refuse a ``GET`` or ``HEAD`` that has a body (a length or chunks): a server that does
    not read one (nothing says what it means there) takes it for the next request on the
    connection, which airlock never judged, or a request of the sandbox's own ahead of the
    next one airlock adds a token to.

    Raises:
        HttpError: ``400``, saying so.
    """
    if method in BODILESS and (framing[0] == "chunked" or framing[1] > 0):
        raise HttpError(
            400,
            f"a body on a {method} request: refused (a server that does not read one would "
            "take it for a request of its own, which airlock never judged)",
        )


TOKEN_LIKE = re.compile(r"[A-Za-z0-9_+/=-]{16,}")
"""A run of 16 or more token characters: what a key or token looks like."""


def withheld(message: str) -> str:
    """``message`` with each run of :data:`TOKEN_LIKE` characters that holds a digit left out
    (its length said).

    What a client or an origin sent, quoted in a refusal (a bad chunk size, a Host header, a
    request target), goes into the answer, the audit log and the report: a token written
    there (by mistake, or to get it into the log) must not be. Short values stay, to say
    what was wrong."""
    if len(message) < 16 or TOKEN_LIKE.search(message) is None:
        return message
    return TOKEN_LIKE.sub(_withhold, message)


def _withhold(found: re.Match[str]) -> str:
    """A run with a digit in it (``Transfer-Encoding`` stays, a token has digits)."""
    text = found.group()
    if any(char.isdigit() for char in text):
        return f"<{len(text)} characters withheld>"
    return text


def joined_values(headers: list[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """Every value of the header ``name`` (lower case), joined with ``, `` as a list header's
    lines are (servers join them, or read the first); ``None`` when there is none."""
    values = [value for key, value in headers if key.lower() == name]
    return b", ".join(values) if values else None


class HttpError(Exception):
    """A request or response that cannot be forwarded; ``status`` is what the client gets.
    The message says what was wrong without quoting what a client sent (a password has any
    characters: no pattern can find it in a quote); :func:`withheld` is applied to it too."""

    def __init__(self, status: int, message: str) -> None:
        message = withheld(message)
        super().__init__(message)
        self.status = status
        self.message = message


class RequestCheck:
    """One request read by llhttp as it passes, so what the plain proxy's parser refuses is
    refused here too (see the module's docstring); it only checks, and keeps nothing."""

    __slots__ = ("_begun", "_parser", "complete")

    def __init__(self) -> None:
        self._begun = 0
        self.complete = False
        """llhttp found the end of the request."""
        self._parser = httptools.HttpRequestParser(self)

    def on_message_begin(self) -> None:
        self._begun += 1

    def on_message_complete(self) -> None:
        self.complete = True

    def feed(self, data: bytes) -> None:
        """Read the request's next bytes (before they are passed on).

        Raises:
            HttpError: ``400``: llhttp refuses them, or finds a second request in them.
        """
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.complete = True  # CONNECT or Upgrade: the request is whole
        except httptools.HttpParserError as error:
            raise HttpError(400, f"malformed request: {error}") from None
        if self._begun > 1:
            raise HttpError(400, "malformed request: its body runs into another request")

    def finish(self) -> None:
        """The request's last byte was read.

        Raises:
            HttpError: ``400``: llhttp did not find the request's end there.
        """
        if not self.complete:
            raise HttpError(400, "malformed request: it does not end where its framing says")


class Head:
    """A parsed request or response head: its first line's parts and its header lines."""

    __slots__ = ("check", "first", "headers", "raw_size", "request")

    def __init__(
        self,
        first: list[bytes],
        headers: list[tuple[bytes, bytes]],
        raw_size: int,
        check: RequestCheck | None = None,
        *,
        request: bool = True,
    ):
        self.first = first
        self.headers = headers
        self.raw_size = raw_size
        self.check = check
        """For a request, the :class:`RequestCheck` that read its head; :func:`body_pieces`
        reads the body with it."""
        self.request = request
        """A request's head (a refusal is the client's ``4xx``); else a response's, whose
        faults are the origin's (``502``)."""

    def joined(self, name: bytes) -> bytes | None:
        """Every value of header ``name`` (lower case), as :func:`joined_values` joins them."""
        return joined_values(self.headers, name)

    def get(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (lower case), or ``None``."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found

    def framing(self) -> Framing:
        """How the body is delimited: ``("length", n)``, ``("chunked", 0)`` or ``("none", 0)``.

        Raises:
            HttpError: Both ``Content-Length`` and ``Transfer-Encoding``, several different
                lengths, a length that is not a number, a coding other than ``chunked``, or
                ``Transfer-Encoding`` in HTTP/1.0, which has no chunked framing (RFC 9112
                §6.1: the framing is faulty; Go's server and client ignore the header there:
                its server would read the chunks as the next request, its client read the
                body to the close). ``400`` (``501`` for a coding) for a request, ``502`` for
                a response: the origin's fault.
        """
        bad = 400 if self.request else 502
        lengths = {v.strip() for k, v in self.headers if k.lower() == b"content-length"}
        codings = [v for k, v in self.headers if k.lower() == b"transfer-encoding"]
        if lengths and codings:
            raise HttpError(bad, "both Content-Length and Transfer-Encoding: refused (smuggling)")
        if codings:
            if self.first[2 if self.request else 0] == b"HTTP/1.0":
                what = "request" if self.request else "response"
                raise HttpError(
                    bad,
                    f"Transfer-Encoding in an HTTP/1.0 {what}: refused (HTTP/1.0 has no "
                    f"chunked framing; {'servers' if self.request else 'clients'} read its "
                    "body apart)",
                )
            if [c.strip().lower() for c in codings] != [b"chunked"]:
                raise HttpError(
                    501 if self.request else bad,
                    f"unsupported Transfer-Encoding {named_codings(codings)} (only chunked)",
                )
            return "chunked", 0
        if len(lengths) > 1:
            raise HttpError(bad, "several different Content-Length values")
        if lengths:
            text = lengths.pop()
            if not text.isdigit() or len(text) > 15:
                raise HttpError(bad, "bad Content-Length: not a number of at most 15 digits")
            return "length", int(text)
        return "none", 0

    def keeps_alive(self) -> bool:
        """Whether the client wants the connection kept after this request (HTTP/1.1 default).

        ``Connection`` is read as servers read it: a list of tokens over every line of it,
        ``close`` in any of them ending the connection (``x-close-y`` is no ``close``, nor
        ``x-keep-alive-y`` a ``keep-alive``)."""
        tokens = {
            token.strip().lower()
            for value in (v for k, v in self.headers if k.lower() == b"connection")
            for token in value.split(b",")
        }
        if b"close" in tokens:
            return False
        return self.first[2] != b"HTTP/1.0" or b"keep-alive" in tokens

    def serialize(self, *, drop: frozenset[bytes] = HOP_BY_HOP) -> bytes:
        """The head as sent on, without the headers named in ``drop`` (lower case)."""
        lines = [b" ".join(self.first)]
        lines += [k + b": " + v for k, v in self.headers if k.lower() not in drop]
        return b"\r\n".join(lines) + b"\r\n\r\n"


async def read_head(reader: asyncio.StreamReader, *, request: bool) -> Head | None:
    """Read one head; ``None`` on a clean end of stream before any byte (or blank lines).

    A request's head is read by llhttp too (:class:`RequestCheck`), which stays on
    :attr:`Head.check` for the body; a response's head is read by llhttp's response parser
    (:func:`_check_response_head`), so that no line a lenient client would read apart (a
    bare CR, a control character) is passed on as one header.

    Raises:
        HttpError: Too long, malformed (anything llhttp refuses), a line ending in a bare LF,
            or obsolete line folding: ``4xx`` for a request, ``502`` for a response.
    """
    raw = await _head_bytes(reader, request=request)
    if raw is None:
        return None
    bad = 400 if request else 502
    # A request line starts after the CRs and LFs llhttp skips (blank lines between requests,
    # RFC 9112 §2.2): ``\rGET`` is a GET to it, and so to a server (nginx skips them too),
    # which must not be judged, recorded and sent on as a method of its own.
    lines = (raw[:-4].lstrip(b"\r\n") if request else raw[:-4]).split(b"\r\n")
    check = None
    if request:
        check = RequestCheck()
        check.feed(raw)
    else:
        _check_response_head(raw)
    first = lines[0].split(b" ", 2)
    version = first[-1] if request else first[0]
    if len(first) != 3 or not version.startswith(b"HTTP/1."):
        raise HttpError(bad, _malformed_first_line(first, version, request=request))
    headers = []
    for number, line in enumerate(lines[1:], 2):
        if line[:1] in (b" ", b"\t"):
            raise HttpError(bad, "obsolete line folding in a header: refused")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise HttpError(
                bad, f"malformed header line (line {number} of the head: not `Name: value`)"
            )
        headers.append((name, value.strip()))
    return Head(first, headers, len(raw), check, request=request)


async def _head_bytes(reader: asyncio.StreamReader, *, request: bool) -> bytes | None:
    """A head's bytes up to its blank line, read a line at a time, at most :data:`MAX_HEAD`;
    ``None`` at the end of the stream before any line but blank ones.

    Each line must end in CRLF, and is refused as it comes when it does not: a head whose
    lines end in a bare LF never holds the CRLF CRLF that ends a head, so waiting for that
    left the client without an answer until the connection's idle limit. Blank lines before
    a request are skipped, a bare LF among them too (llhttp skips them alike), within the
    same bound.

    Raises:
        HttpError: A line ending in a bare LF, the stream's end inside the head, or a head
            longer than :data:`MAX_HEAD` (``431``; ``502`` for a response).
    """
    bad = 400 if request else 502
    what = "request" if request else "response"
    parts: list[bytes] = []
    size = 0
    begun = False
    while True:
        try:
            line = await reader.readuntil(b"\n")
        except asyncio.IncompleteReadError as error:
            if not begun and not error.partial.strip():
                return None
            raise HttpError(bad, f"connection closed in the middle of a {what} head") from None
        except asyncio.LimitOverrunError:  # a line longer than the stream holds
            raise _too_long(what) from None
        size += len(line)
        if size > MAX_HEAD:
            raise _too_long(what)
        if not line.endswith(b"\r\n") and not (request and not begun and line == b"\n"):
            if request:  # refused in llhttp's words, as a bare LF it reads is
                RequestCheck().feed(b"".join(parts) + line)
            raise HttpError(
                bad,
                f"malformed {what} head: a line ends in a bare LF (line {len(parts) + 1}; "
                "HTTP/1.1 ends each with CRLF)",
            )
        parts.append(line)
        if line in (b"\r\n", b"\n"):  # a blank line (a bare LF only before a request)
            if begun:
                return b"".join(parts)
            if not request:
                raise HttpError(bad, "malformed first line: a blank line (a status line expected)")
        else:
            begun = True


def _too_long(what: str) -> HttpError:
    """The refusal of a head past :data:`MAX_HEAD`: ``431`` for a request, ``502`` for a
    response."""
    return HttpError(431 if what == "request" else 502, f"{what} head longer than {MAX_HEAD} bytes")


class _Ignored:
    """Callbacks for a parser that only checks (:func:`_check_response_head`)."""


def _check_response_head(raw: bytes) -> None:
    """Have llhttp read a response's head, as the plain proxy relays responses
    (:mod:`airlock.egress.response`): what it refuses (a bare CR inside a line, a NUL or
    other control character, a space before a colon, a bad length) is the origin's fault.

    Raises:
        HttpError: ``502``, with llhttp's words.
    """
    try:
        httptools.HttpResponseParser(_Ignored()).feed_data(raw)
    except httptools.HttpParserUpgrade:
        pass  # a 101's head is whole
    except httptools.HttpParserError as error:
        raise HttpError(502, f"malformed response head: {error}") from None


VERSION_WORD = re.compile(rb"[A-Z]{2,8}/[0-9]{1,2}(?:\.[0-9]{1,2})?")
"""A protocol version as a first line names one (``HTTP/2.0``, ``RTSP/1.0``): said in a
refusal, as nothing else of the line is."""

CODING_NAMES = frozenset(
    b"chunked gzip x-gzip deflate compress x-compress br zstd identity".split()
)
"""The transfer codings a refusal names (what else a ``Transfer-Encoding`` holds is not
quoted: it could be anything, a password too)."""


def _malformed_first_line(first: list[bytes], version: bytes, *, request: bool) -> str:
    """Why a head's first line is refused, without quoting it: a request line holds the
    target, whose query or path may hold a password; only its version is named, when it is
    one (:data:`VERSION_WORD`)."""
    what = "request line" if request else "status line"
    shape = "METHOD TARGET HTTP/1.x" if request else "HTTP/1.x STATUS REASON"
    if len(first) == 3 and VERSION_WORD.fullmatch(version):
        return (
            f"malformed first line: a {what} of {version.decode('ascii')}, which is not read "
            f"here (only {shape})"
        )
    return f"malformed first line: not a {what} ({shape})"


def named_codings(codings: list[bytes]) -> str:
    """The codings of ``Transfer-Encoding`` lines as a refusal names them: each known one
    (:data:`CODING_NAMES`) by its name, anything else as ``<not quoted>``."""
    names = [
        word.decode("ascii") if word in CODING_NAMES else "<not quoted>"
        for value in codings
        for word in (part.strip().lower() for part in value.split(b","))
    ]
    return "'" + ", ".join(names) + "'"


async def body_pieces(
    reader: asyncio.StreamReader, framing: Framing, check: RequestCheck | None = None
) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield ``(raw, payload)`` pairs of a body as it arrives: the bytes as on the wire (chunked
    stays chunked) and the body's content among them (empty for size lines and trailers).

    Args:
        reader: The stream the body comes from.
        framing: How it is delimited (:meth:`Head.framing`).
        check: A request's :attr:`Head.check`: each piece is read by it before it is yielded,
            and the request must end where the body does.

    Raises:
        HttpError: The stream ended early, a chunked body is malformed, or ``check`` refuses.
    """
    async for raw, payload in _pieces(reader, framing, check):
        if check is not None:
            check.feed(raw)
        yield raw, payload
    if check is not None:
        check.finish()


async def _pieces(
    reader: asyncio.StreamReader, framing: Framing, check: RequestCheck | None
) -> AsyncIterator[tuple[bytes, bytes]]:
    kind, length = framing
    if kind == "length":
        async for data in _sized(reader, length, "a body"):
            yield data, data
    elif kind == "chunked":
        async for pair in _chunked(reader, check):
            yield pair
    elif kind == "close":
        while data := await reader.read(PIECE):
            yield data, data


async def _sized(reader: asyncio.StreamReader, size: int, what: str) -> AsyncIterator[bytes]:
    """Yield the next ``size`` bytes as they arrive, in pieces of at most ``PIECE``."""
    left = size
    while left:
        data = await reader.read(min(PIECE, left))
        if not data:
            raise HttpError(400, f"connection closed in the middle of {what}")
        left -= len(data)
        yield data


async def _line(
    reader: asyncio.StreamReader, check: RequestCheck | None, unchecked: bytes = b""
) -> bytes:
    """A line of a chunked body, CRLF included: read up to its LF, so that one ending in a
    bare LF is refused as it comes (waiting for a CRLF that never came left the client
    without an answer); in llhttp's words for a request (``check``, which has read all but
    ``unchecked`` of the body before the line)."""
    try:
        line = await reader.readuntil(b"\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise HttpError(400, "bad or missing line in a chunked body") from error
    if not line.endswith(b"\r\n"):
        if check is not None:
            check.feed(unchecked + line)
        raise HttpError(400, "a line of a chunked body ends in a bare LF (CRLF required)")
    return line


async def _chunked(
    reader: asyncio.StreamReader, check: RequestCheck | None
) -> AsyncIterator[tuple[bytes, bytes]]:
    """Yield a chunked body's ``(raw, payload)`` pairs, checking every size line and CRLF
    (a line that ends in a bare LF in ``check``'s words: :func:`_line`).

    The last chunk's line, the trailers and the blank line after them come as one piece: they
    are checked whole before any of them is passed on (a destination that reads the last
    chunk's line and then a closed connection might take the body as complete).
    """
    while True:
        line = await _line(reader, check)
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpError(400, "bad chunk size: not a hexadecimal number of at most 15 digits")
        size = int(size_text, 16)
        if size == 0:
            end = [line]
            while end[-1] != b"\r\n":  # trailers, then the blank line
                end.append(await _line(reader, check, b"".join(end)))
                if sum(map(len, end)) > MAX_HEAD:
                    raise HttpError(431, f"trailers longer than {MAX_HEAD} bytes")
            yield b"".join(end), b""
            return
        yield line, b""
        async for data in _sized(reader, size, "a chunk"):
            yield data, data
        if await _line(reader, check) != b"\r\n":
            raise HttpError(400, "a chunk longer than its size")
        yield b"\r\n", b""


def without_userinfo(target: str) -> str:
    """``target`` with what could be user information (``user:password@``) left out, as the
    audit log and a refusal show it: in a target that is not a path (``postgres://…``,
    ``host:port``, ``//…``), all before the last ``@`` ahead of its query (after its
    ``scheme://``, kept) becomes ``…`` (a password may hold ``/``: the ``@`` after it ends
    it). A path (one ``/`` first: ``/@scope/pkg``) is left as it is."""
    if target.startswith("/") and not target.startswith("//"):
        return target
    before, mark, query = target.partition("?")
    at = before.rfind("@")
    if at < 0:
        return target
    scheme = before.find("://")
    start = scheme + 3 if 0 <= scheme < at else 2 if before.startswith("//") else 0
    return before[:start] + "…" + before[at:] + mark + query


def origin_path(target: str) -> str:
    """The path of a request target (an absolute-form target loses its scheme and host,
    which end at the first ``/``, ``?`` or ``#``: ``https://h?/v1/x`` is ``/?/v1/x``)."""
    if target[:8].lower().startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        end = next((index for index, char in enumerate(rest) if char in "/?#"), len(rest))
        tail = rest[end:]
        return tail if tail.startswith("/") else "/" + tail
    return target or "/"


NAMED_VALUE = re.compile(
    r"(?:p(?:ass|wd)|secret|token|key|auth|credential|webhook|sig|-----|\s-[pu]|--user)"
    r"[a-z0-9_.\-]*(?:[=:>\s\\\"'`\]\x1b]|[?+]=)"
)
"""In lower case, a word that names a value the redaction engine finds beside it, then what
comes between them: ``password=``, ``db_pwd:``, ``api_key\\u003d`` (an escape),
``"token":``, ``<secret>``, ``key is``, ``sig=``, ``curl -u``, a key file's ``-----BEGIN``."""


def could_hold_secrets(target: str) -> bool:
    """Whether the redaction engine could find a secret in ``target`` (one reading of a
    request target), judged cheaply so that an ordinary path is not scanned: a run of token
    characters (:data:`TOKEN_LIKE`: a key or token, bare or beside a vendor's name), a URL
    (``://``, a ``:`` before an ``@``: ``user:password@``), a backslash (escapes, which the
    engine reads decoded), or a value beside a name (:data:`NAMED_VALUE`)."""
    if TOKEN_LIKE.search(target) is not None or "\\" in target or "://" in target:
        return True
    at = target.rfind("@")
    if at > 0 and ":" in target[:at]:
        return True
    return NAMED_VALUE.search(target.lower()) is not None


async def write_in_pieces(
    writer: asyncio.StreamWriter, body: bytes, handed: Callable[[int], None]
) -> None:
    """Hand ``body`` to ``writer`` :data:`PIECE` bytes at a time, each once the one before it
    has mostly gone: written whole, the transport (and TLS, an encrypted copy) would hold what
    the socket did not take at once beside the body, memory no budget counts. ``handed`` is
    told each piece's length as it goes (what left, should the exchange fail; activity)."""
    view = memoryview(body)
    transport = writer.transport
    for start in range(0, len(view), PIECE):
        piece = view[start : start + PIECE]
        writer.write(piece)
        handed(len(piece))
        if transport.get_write_buffer_size() > PIECE:
            await writer.drain()
