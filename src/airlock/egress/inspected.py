"""One inspected client connection: each request classified, enforced, forwarded and recorded.

Theory of operation
-------------------
:class:`InspectedConnection` serves the requests of one client connection whose TLS the
:class:`~airlock.egress.inspect.Inspector` terminated, one after another on the kept-alive
connection. For each request it:

1. parses the head (``egress.framing``: a bounded size; every byte of the request read by
   llhttp, the plain proxy's strict parser, as it passes, so a bare CR or LF, a control
   character in a header, a malformed chunk extension, trailer, version or request line,
   ``Content-Length`` twice, obsolete line folding, both ``Content-Length`` and
   ``Transfer-Encoding``, or a bad chunk size are refused with ``400`` and the connection
   closed: no smuggling); a target must be a path, ``*`` for ``OPTIONS``, or a URL naming this
   connection's host and port (:meth:`InspectedConnection.check_target`), never another
   destination, and a URL goes on as the path the flows judged; an HTTP/1.1 request must have
   one ``Host``, naming this host (RFC 9112 §3.2), and it goes on as the name the request
   is classified and allowed by, which the origin's TLS names
   (:meth:`InspectedConnection.as_judged`); the headers a ``Connection`` names stay on the
   client's hop (RFC 9110 §7.6.1), as do ``TE``, ``Keep-Alive`` and ``Proxy-*``, but for
   those that route or frame the request (:func:`~airlock.egress.http1.hop_by_hop_request`),
   and ``Connection`` goes on without the options that name those
   (:func:`~airlock.egress.http1.connection_options`); a request to
   switch protocols (``Upgrade``: a WebSocket) is refused ``501`` at once, since what would
   follow cannot be read (:meth:`InspectedConnection.check_upgrade`). No refusal quotes what
   the request holds (a password may have any characters, which no pattern finds): only the
   path as the audit log shows it (query values, user information and the redaction
   engine's findings left out);
2. names the request's flow (``egress.flows.classify``) and asks the engine's decisions whether
   that flow may leave (``egress.flows.enforce``); a refused request gets a ``403`` whose body
   names the flow and what turned it off (at once, the connection closed, when the client
   waits for ``100 Continue`` before its body); its target and its headers (but the sign-in
   ones) are read for secrets (``egress.scan.header_secrets``);
3. sends the request to the origin over TLS verified against the system's CAs (plus
   ``--upstream-ca``), on one upstream connection kept for the client connection, streaming the
   body while the redaction engine counts its secrets (``--secrets report``; a chunked body
   framed anew, its chunk extensions and trailers left out, as plain HTTP sends it); with
   ``--secrets redact`` or ``block`` the body is gathered first (up to ``MAX_GATHERED``, and
   within ``GATHER_BUDGET`` across the run's connections, its decoded form while it is
   checked too: ``503`` past it; held once, and sent a piece at a time, so memory follows
   that budget), then redacted or refused; each piece is charged to the run's upload budget (``--max-upload-mb``) before
   it leaves, and one that does not fit cuts the request there. As in plain forwarding
   (``egress.forwarding``), a request with a body goes with ``Connection: close`` and its
   upstream connection is not kept after it (an origin that answers without reading the body
   would read it as the next request), and a body sized by its length whose first line is a
   request line (:func:`~airlock.egress.cleartext.starts_request`) is refused ``400`` before
   any of the request leaves;
4. streams the answer back as it comes, its head without the origin's hop-by-hop headers and
   with airlock's own ``Connection`` (:func:`~airlock.egress.response.hop_by_hop`; an
   unasked ``101`` is a ``502``; an HTTP/1.0 client gets a chunked body decoded), and writes
   one audit record (:func:`record_of`; its
   ``secrets`` are the target's, the headers' and the body's, and ``unchecked`` says why a
   streamed body was not read decoded to its end, when it was not). Each piece relayed
   either way is activity for the proxy's idle limit (an answer streamed for longer goes
   on), and the origin's status and the bytes relayed so far stay in the record of an answer
   that fails part-way.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import ssl
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import httptools

from airlock._tasks import create_task
from airlock.egress.ca import origin_tls_hint
from airlock.egress.cleartext import BODY_LINE_LIMIT, starts_request
from airlock.egress.connection import YIELD_EVERY, Upstream, UpstreamProtocol, stale
from airlock.egress.flows import redact_query, refusal_body
from airlock.egress.forwarding import BODY_REQUEST
from airlock.egress.framing import (
    PIECE,
    Framing,
    Head,
    HttpError,
    RequestCheck,
    body_pieces,
    origin_path,
    read_head,
    refuse_a_body_on_get,
    without_userinfo,
    write_in_pieces,
)
from airlock.egress.http1 import (
    REASONS,
    connection_options,
    connection_tokens,
    hop_by_hop_request,
)
from airlock.egress.response import DROPPED_FOR_HTTP10, client_connection, cut_off, hop_by_hop
from airlock.egress.scan import (
    BUSY,
    MAX_GATHERED,
    TOO_LARGE,
    BodyCount,
    Held,
    SecretsMode,
    Uncheckable,
    blocked_reason,
    check_gathered,
    check_in_worker,
    header_refusal,
    header_secrets,
    path_refusal,
    path_secrets,
)
from airlock.policy.hosts import HostError, bracketed, parse_host

if TYPE_CHECKING:
    from airlock.egress.inspect import Inspector

Dial = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
"""Opens a plain TCP connection to a host and port (the proxy's dialler, with its address
checks); the inspector adds TLS on top."""

IDLE_TIMEOUT = 120.0
"""Seconds a kept-alive client connection may wait for its next request."""

_CLIENT_CERTIFICATE = (
    "airlock cannot present the client's certificate: to reach it, leave {host} "
    "uninspected (not in --inspect or airlock.inspect), so that the client's own TLS goes "
    "to it through a tunnel"
)
"""What reaches an origin that asks for a client certificate (mutual TLS): airlock, between
the client and the origin, never has the client's key."""


def origin_hint(error: BaseException, host: str) -> str:
    """What to add to the TLS ``error`` of an exchange with the origin ``host``: the
    certificate that did not verify, the client certificate it asked for (TLS 1.3 says so;
    TLS 1.2's alert, a handshake failure, has other causes too), why its TLS failed in
    words (:func:`~airlock.egress.ca.origin_tls_hint`), or nothing."""
    said = origin_tls_hint(error, host)
    if said:
        return said
    reason = getattr(error, "reason", None) if isinstance(error, ssl.SSLError) else None
    if reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED":
        return "; the origin asks for a client certificate, and " + _CLIENT_CERTIFICATE.format(
            host=host
        )
    if reason == "SSLV3_ALERT_HANDSHAKE_FAILURE":
        return "; if the origin asks for a client certificate, " + _CLIENT_CERTIFICATE.format(
            host=host
        )
    return ""


_NO_BODY_STATUS = frozenset({204, 304})
LAST_CHUNK = b"0\r\n\r\n"


def record_of(**fields: Any) -> dict[str, Any]:
    """One audit record of an inspected request, with every field the contract names."""
    record: dict[str, Any] = {
        "type": "request",
        "time": 0.0,
        "inspected": True,
        "method": "",
        "host": "",
        "port": 0,
        "path": "",
        "status": 0,
        "flow": "unclassified",
        "decision": "allow",
        "reason": "",
        "bytes_out": 0,
        "bytes_in": 0,
        "secrets": {},
        "duration_ms": 0.0,
        "error": None,
    }
    record.update(fields)
    return record


async def counted(fields: dict[str, Any], scanner: BodyCount) -> dict[str, int]:
    """The secrets ``scanner`` counted in a streamed body; why it could not read all of it
    decoded, if it could not, goes to the record's ``unchecked``."""
    secrets = await scanner.total()
    if scanner.unchecked:
        fields["unchecked"] = scanner.unchecked
    return secrets


class InspectedConnection:
    """One client connection: requests in order, one upstream connection kept alive.

    Args:
        inspector: What the run's inspected connections share (decisions, redaction, records).
        reader: The client connection, TLS already terminated.
        writer: Its writer.
        host: The host the client's CONNECT named (every request goes there).
        port: Its port.
        dial: Opens TCP to the origin; TLS is added here.
        activity: Called for each piece relayed either way and after each request (the
            proxy's idle watchdog).
    """

    def __init__(
        self,
        inspector: Inspector,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        dial: Dial,
        activity: Callable[[], None] | None,
    ) -> None:
        self.inspector = inspector
        self.dial = dial
        self.activity = activity
        self.reader = reader
        self.writer = writer
        self.host = host
        self.port = port
        self.up: Upstream | None = None
        """The upstream connection kept for the next request, unless it got anything
        meanwhile (:func:`~airlock.egress.connection.stale`)."""
        self.closing: set[asyncio.Task[None]] = set()
        """Upstream connections let go of while the client's goes on, each closing in a task
        of its own that drops it once closed (a closed TLS stream keeps a buffer of 256 KB:
        kept until the client's connection ends, one per request with a body grew without
        bound); those still closing are awaited with the client's, so a finished connection
        leaves nothing open behind it."""
        self.requests = 0
        """The requests read on this connection (one that ended with none is recorded)."""

    async def run(self) -> None:
        """Serve requests until the client or the origin ends the connection; one that ends
        before any request is recorded when no protocol was agreed (:meth:`_no_request`)."""
        while True:
            try:
                head = await asyncio.wait_for(read_head(self.reader, request=True), IDLE_TIMEOUT)
            except (HttpError, TimeoutError, ConnectionError, ssl.SSLError) as error:
                if isinstance(error, HttpError):
                    await self._unread(error)
                elif not self.requests:
                    self._no_request(error)
                return
            if head is None:
                if not self.requests:
                    self._no_request(None)
                return
            self.requests += 1
            if not await self._one(head):
                return

    def _in_origin_form(self, head: Head, path: str) -> None:
        """Send an absolute-form target (``https://host/path``, checked to name this
        connection's host and port) on as the path the flows judged: the origin reads its own
        URL as it likes (another path, another host behind a front end), which was never
        judged. An HTTP/1.0 request without ``Host`` gets the one its URL named (HTTP/1.1
        without one is refused), so the origin keeps the name it was asked for."""
        head.first[1] = path.encode("latin-1")
        if head.get(b"host") is None:
            head.headers.append((b"Host", self.authority()))

    def authority(self) -> bytes:
        """This connection's host and port as ``Host`` names them: the host as the rules
        read it (the one classified, dialled and named in the origin's TLS), its port unless
        https's own."""
        host = bracketed(self.host)
        if self.port != 443:
            host += f":{self.port}"
        return host.encode("latin-1")

    def as_judged(self, head: Head) -> None:
        """Send the request's ``Host`` (one, checked to name this connection's host and
        port: :meth:`check_host`) on as :meth:`authority`: the origin serves the name the
        request was classified and allowed by, and its TLS names, not the client's spelling
        of it (``LOCALHOST.``, ``127.1``, an IDN's U-label), which a front end may read as
        another name (a default host, ``421 Misdirected Request``)."""
        head.headers = [
            (name, self.authority()) if name.lower() == b"host" else (name, value)
            for name, value in head.headers
        ]

    def _no_request(self, error: BaseException | None) -> None:
        """Record a connection that ended before its first request, when the client and
        airlock agreed on no protocol (ALPN): the mark of a client that speaks only HTTP/2
        (Go's, gRPC's, Node's ``http2``), which offers ``h2`` alone, is given none (airlock
        reads HTTP/1.1 here) and gives up without a request. Without this record its
        failure left no trace. One that agreed on ``http/1.1`` and sent nothing is not
        recorded (a connection pool's spare); one that offered no protocol is, as it cannot
        be told from the first."""
        ssl_object = self.writer.get_extra_info("ssl_object")
        if ssl_object is None or ssl_object.selected_alpn_protocol() is not None:
            return
        ended = f" ({error or type(error).__name__})" if error is not None else ""
        why = (
            f"the client ended its TLS connection to {self.host} before any request{ended}, "
            "no protocol agreed (ALPN): a client that speaks only HTTP/2 does so, since "
            "airlock reads HTTP/1.1 inside inspected TLS; make it use HTTP/1.1, or leave "
            f"{self.host} out of --inspect to tunnel it unread"
        )
        self.inspector.record(
            record_of(
                time=self.inspector.wall(),
                type="tunnel",
                host=self.host,
                port=self.port,
                method="CONNECT",
                status=200,
                reason=why,
                error=why,
            )
        )

    async def close(self) -> None:
        """Close the client connection and the upstream one, and wait for those let go of
        before (:meth:`retire`) to finish closing."""
        writers = [self.writer] + ([self.up.writer] if self.up else [])
        self.up = None
        for writer in writers:
            writer.close()
        for writer in writers:
            await _closed(writer)
        if self.closing:
            await asyncio.wait(list(self.closing))

    def retire(self) -> None:
        """Start closing the upstream connection, in a task that lets go of it once closed;
        :meth:`close` waits for the end of it."""
        if self.up is not None:
            writer = self.up.writer
            self.up = None
            writer.close()
            create_task(
                _closed(writer), name=f"closing upstream {self.host}:{self.port}", keep=self.closing
            )

    async def _answer(self, status: int, body: bytes, *, close: bool) -> int:
        """Write airlock's own answer to the client: the bytes written, which its record
        counts in ``bytes_in`` (none when the client's connection is closed already)."""
        if self.writer.is_closing():
            return 0
        reason = REASONS.get(status, "Error")
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nX-Airlock: refused\r\n"
            + ("Connection: close\r\n" if close else "")
            + "\r\n"
        ).encode()
        try:
            self.writer.write(head + body)
            await self.writer.drain()
        except (ConnectionError, ssl.SSLError, OSError):
            pass
        return len(head) + len(body)

    async def _unread(self, error: HttpError) -> None:
        """Answer a request whose head could not be read, close, and record why."""
        started = self.inspector.clock()
        fields = {"time": self.inspector.wall(), "host": self.host, "port": self.port}
        await self._refused(error, fields, started)

    def check_target(self, target: bytes, shown: str, method: str) -> None:
        """Refuse a request target that is not this connection's: only a path (origin form),
        ``*`` for an ``OPTIONS`` request (asterisk form, RFC 9112 §3.2.4: no other method
        has it, and a server may read ``GET *`` as it likes), or a URL whose host and port
        are the ones the TLS was opened to (absolute form, sent on in origin form: see
        :meth:`_in_origin_form`) are sent on; never a fragment (no request target holds one).

        ``shown`` is the target as the audit log shows it (query values, user information
        and the redaction engine's findings left out): a refusal quotes that, never the
        target as sent, which may hold a password the engine cannot know.

        Raises:
            HttpError: ``400``, naming what the target names instead.
        """
        if b"#" in target:
            raise HttpError(400, "a fragment (#) in a request target: refused")
        if target == b"*" and method != "OPTIONS":
            raise HttpError(
                400,
                "a request target of * (asterisk form) is for OPTIONS alone (RFC 9112 "
                "§3.2.4): refused",
            )
        if target.startswith(b"/") or target == b"*":
            return
        if not target[:8].lower().startswith((b"http://", b"https://")):
            raise HttpError(
                400,
                f"request target {shown[:80]!r} inside TLS to {self.host}:{self.port}: only "
                "a path or this host's URL is sent on",
            )
        try:  # llhttp has read it as a request line's target, not always as a URL
            url = httptools.parse_url(target)
        except httptools.HttpParserInvalidURLError:
            raise HttpError(400, "malformed request target: not a URL that can be read") from None
        default = 443 if url.schema.lower() == b"https" else 80
        port = url.port or default
        try:
            host = parse_host(url.host.decode("latin-1")).text
        except HostError:  # its words quote the host, which may be anything (not quoted)
            raise HttpError(
                400, "malformed request target: its host is not a host name or an address"
            ) from None
        if url.userinfo:
            raise HttpError(400, "credentials in a request target are refused (user:password@)")
        if (host, port) != (self.host, self.port):
            raise HttpError(
                400,
                f"the request names {host}:{port} inside TLS to {self.host}:{self.port}: "
                "refused (a request goes to the host it was opened to)",
            )

    def check_host(self, value: bytes | None) -> None:
        """Refuse a ``Host`` header that names another host than the one the TLS was opened
        to: a server behind a shared front end routes by it (domain fronting).

        A malformed one is refused without quoting it (``admin:password@host``, or any
        text: it may be a password the redaction engine cannot know).

        Raises:
            HttpError: ``400``, naming both.
        """
        if value is None:
            return
        text = value.decode("latin-1").strip()
        if "@" in text:
            raise HttpError(
                400, "malformed Host header: user information (user:password@) is refused"
            )
        name, colon, port = text.rpartition(":") if not text.endswith("]") else ("", "", "")
        if not colon or not (port.isascii() and port.isdigit()):  # "²".isdigit() is True
            name, port = text, ""
        try:
            host = parse_host(name.removeprefix("[").removesuffix("]")).text
        except HostError:  # its words quote the value (not quoted: see above)
            raise HttpError(
                400,
                "malformed Host header: not a host name or an address, with an optional port",
            ) from None
        if host != self.host or (port and int(port) != self.port):
            named = f"{host}:{port[:5]}…" if len(port) > 5 else f"{host}:{port}" if port else host
            raise HttpError(
                400,
                f"the Host header names {named} inside TLS to {self.host}:{self.port}: "
                "refused (a request goes to the host it was opened to)",
            )

    def check_upgrade(self, upgrade: bytes | None) -> None:
        """Refuse a request that asks to switch protocols (``Upgrade``: a WebSocket, ``h2c``):
        what would follow the origin's ``101`` is not HTTP, which airlock cannot read, so
        it could be neither checked for secrets nor named by its flow. It is refused at once
        (an origin's ``101`` passed on would leave the client's next bytes unread, and the
        connection hung); without ``--inspect`` for the host it would go as an opaque tunnel.

        Raises:
            HttpError: ``501``, saying so.
        """
        if upgrade is None:
            return
        lowered = upgrade.lower()
        what = "another protocol"
        if b"websocket" in lowered:
            what = "a WebSocket"
        elif b"h2c" in lowered:
            what = "HTTP/2 in the clear"
        raise HttpError(
            501,
            f"a request to switch protocols (Upgrade: {what}) is refused on {self.host}, an "
            "inspected host: airlock cannot read what would follow, so it could be neither "
            f"checked for secrets nor named by its flow (without --inspect {self.host}, "
            "its connections go as opaque tunnels)",
        )

    async def _one(self, head: Head) -> bool:
        """Handle one request; whether the connection goes on."""
        started = self.inspector.clock()
        method = head.first[0].decode("latin-1")
        target = head.first[1].decode("latin-1")
        path = origin_path(target)
        verdict = self.inspector.judge(method, self.host, path, head.headers)
        fields: dict[str, Any] = {
            "time": self.inspector.wall(),
            "method": method,
            "host": self.host,
            "port": self.port,
            "flow": verdict.flow,
            "reason": verdict.reason,
        }
        # The path as the log, the report and every refusal show it: what the target holds
        # goes nowhere else (a password has any characters: no pattern finds it in a quote).
        logged = redact_query(without_userinfo(path))
        fields["path"], in_path = path_secrets(self.inspector.redactor, path, logged)
        if in_path:
            fields["path_secrets"] = in_path
        in_head, redacted = header_secrets(self.inspector.redactor, head.headers)
        if in_head:
            fields["header_secrets"] = in_head
        mode = self.inspector.secrets
        try:
            if in_path and mode is not SecretsMode.REPORT:
                raise HttpError(403, path_refusal(mode, in_path))
            refused = mode is SecretsMode.BLOCK or (mode is SecretsMode.REDACT and redacted is None)
            if in_head and refused:
                raise HttpError(403, header_refusal(mode, in_head))
            self.check_target(head.first[1], fields["path"], method)
            hosts = [value for name, value in head.headers if name.lower() == b"host"]
            if len(hosts) > 1:  # a front end may route by the first, the record names one
                raise HttpError(400, "more than one Host header: refused")
            if not hosts and head.first[2] != b"HTTP/1.0":  # a front end routes by it
                raise HttpError(
                    400,
                    "no Host header in an HTTP/1.1 request: refused (RFC 9112 §3.2: a "
                    "server answers 400)",
                )
            self.check_host(head.get(b"host"))
            self.check_upgrade(head.joined(b"upgrade"))
            framing = head.framing()
            refuse_a_body_on_get(method, framing)
            if framing[0] == "none" and head.check is not None:
                head.check.finish()  # no body: llhttp must have found the end in the head
            if in_head and redacted is not None and mode is SecretsMode.REDACT:
                head.headers = redacted  # each secret replaced where it stands in its value
        except HttpError as error:
            return await self._refused(error, fields, started)
        if not head.first[1].startswith(b"/") and head.first[1] != b"*":
            self._in_origin_form(head, path)
        self.as_judged(head)
        if not verdict.allowed:
            body = refusal_body(verdict, method, self.host, fields["path"], port=self.port)
            # The connection goes on only when the body was read whole and the client did not
            # ask to close it (a client waiting for the end of a refused answer must get it).
            # A client waiting for ``100 Continue`` before it sends its body is answered at
            # once, and the connection closed: its body is never read.
            waits = _waits_to_send(head, framing)
            keep = not waits and await self._drain(framing, head.check) and head.keeps_alive()
            sent = await self._answer(403, body, close=not keep)
            self._done(fields, started, status=403, decision="deny", bytes_in=sent)
            return keep
        try:
            return await self._forward(head, framing, fields, started)
        except HttpError as error:
            if "bytes_out" in fields:  # the request had gone out: its answer failed
                return await self._failed(fields, started, error.status, error.message)
            return await self._refused(error, fields, started)
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError) as error:
            what = error or type(error).__name__
            if "bytes_out" in fields:  # the request had gone out (its record says what left)
                message = f"the exchange failed after the request went out: {what}"
            else:
                message = f"origin {self.host}:{self.port}: {what}"
            message += origin_hint(error, self.host)
            return await self._failed(fields, started, 502, message)

    async def _failed(
        self, fields: dict[str, Any], started: float, status: int, message: str
    ) -> bool:
        """An exchange that failed once allowed: the client is told ``status`` unless the
        origin's answer had begun (its status and the bytes relayed stay in the record, a
        second answer would not be read as one: the client's connection is cut instead,
        :func:`~airlock.egress.response.cut_off`, so that what it got does not look whole);
        the connection does not go on."""
        self.retire()
        if "status" not in fields:  # no answer begun (:meth:`_relay_response` sets it)
            fields["bytes_in"] = await self._tell(status, message)
            fields["status"] = status
        else:
            cut_off(self.writer)
        self._done(fields, started, error=message)
        return False

    async def _refused(self, error: HttpError, fields: dict[str, Any], started: float) -> bool:
        """Answer a request that cannot be forwarded with the error's status, close, and
        record why; the connection does not go on."""
        sent = await self._answer(error.status, error.message.encode() + b"\n", close=True)
        self._done(
            fields,
            started,
            status=error.status,
            decision="deny",
            reason=error.message,
            error=error.message,
            bytes_in=sent,
        )
        return False

    async def _drain(self, framing: Framing, check: RequestCheck | None) -> bool:
        """Read and drop a refused request's body, when small; whether it was read whole."""
        if framing[0] == "length" and framing[1] > MAX_GATHERED:
            return False
        try:
            async for _ in body_pieces(self.reader, framing, check):
                pass
        except (HttpError, ConnectionError, ssl.SSLError):
            return False
        return True

    def _done(self, fields: dict[str, Any], started: float, **more: Any) -> None:
        fields.update(more)
        found = Counter(fields.get("secrets") or {})
        for beside in ("path_secrets", "header_secrets"):  # counted with the body's
            found += Counter(fields.pop(beside, None) or {})
        fields["secrets"] = dict(found)
        fields["duration_ms"] = round((self.inspector.clock() - started) * 1000, 3)
        record = record_of(**fields)
        self.inspector.tally(record)
        self.inspector.record(record)
        self._active()

    async def _upstream(self) -> Upstream:
        """The kept upstream connection, or a new one when there is none or it got anything
        since its last response (bytes no request asked for, which would be read as the next
        request's answer; its end; an error): that one is closed, as in plain forwarding.

        What came is counted by the dialled stream's :class:`UpstreamProtocol`, which the TLS
        started on it hands the decrypted bytes; a connection whose protocol does not count
        (another dialler's) is used for one request only. The dial leaves nothing unread on
        the connection (the tunnel's dial refuses it, :data:`BEFORE_TLS`), and nothing may
        come while TLS starts: what did would be in the stream's reader, ahead of what TLS
        carries, and read as the origin's answer.

        Raises:
            ConnectionError: bytes came outside TLS (:data:`BEFORE_TLS`), or the dial failed.
        """
        if self.up is not None and self.up.reusable and not stale(self.up):
            return self.up
        self.retire()
        reader, writer = await self.dial(self.host, self.port)
        protocol = writer.transport.get_protocol()
        counting = protocol if isinstance(protocol, UpstreamProtocol) else None
        before = counting.received if counting is not None else 0
        try:
            await writer.start_tls(self.inspector.upstream, server_hostname=self.host)
            if counting is not None and counting.received != before:
                raise ConnectionError(BEFORE_TLS)  # came as TLS was starting, or unasked
        except BaseException:
            writer.close()
            raise
        self.up = Upstream(self.host, self.port, reader, writer, reusable=counting is not None)
        if counting is not None:  # what came before TLS (an upstream proxy's answer) is no answer
            self.up.protocol, self.up.taken = counting, counting.received
        return self.up

    async def _forward(
        self, head: Head, framing: Framing, fields: dict[str, Any], started: float
    ) -> bool:
        held = Held(self.inspector.gathering)  # a gathered body, until it has gone
        try:
            return await self._send(head, framing, fields, started, held)
        finally:
            held.release()

    async def _send(
        self, head: Head, framing: Framing, fields: dict[str, Any], started: float, held: Held
    ) -> bool:
        expect = head.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue":
            head.headers = [(k, v) for k, v in head.headers if k.lower() != b"expect"]
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        client_keeps = head.keeps_alive()  # asked before its Connection header is rewritten
        mode = self.inspector.secrets
        gathered: bytes | None = None
        secrets: dict[str, int] = {}
        encoding = head.joined(b"content-encoding")  # every line of it, as one list
        if mode is not SecretsMode.REPORT and framing[0] != "none":
            try:
                payload = await self._gather(framing, head.check, held)
            except (OSError, ssl.SSLError) as error:  # the client's side: nothing was sent
                return self._left(fields, started, error)
            check = partial(
                check_gathered,
                self.inspector.redactor,
                mode,
                payload,
                encoding,
                head.joined(b"content-type"),
                held.grow,  # its copies (decoded, redacted, …) are held within the budget too
            )
            mark = held.size
            try:  # a large body in a worker thread: the other connections go on meanwhile
                gathered, secrets, decoded = (
                    await asyncio.to_thread(check)
                    if check_in_worker(payload, encoding)
                    else check()
                )
            except Uncheckable as error:
                fields["secrets"] = error.secrets
                raise HttpError(error.status, error.why) from None
            # a body that leaves as a new copy (decoded, redacted) stays charged until it has gone
            held.settle(
                mark, len(gathered) if gathered is not None and gathered is not payload else 0
            )
            if gathered is None:
                return await self._block(fields, started, secrets)
            dropped = [b"content-length", b"transfer-encoding"]
            if decoded:  # redacted in the decoded body, which leaves as it is now
                dropped.append(b"content-encoding")
            head.headers = [(k, v) for k, v in head.headers if k.lower() not in dropped]
            head.headers.append((b"Content-Length", str(len(gathered)).encode()))
        carries = framing[0] == "chunked" or framing[1] > 0  # a body (as plain forwarding says)
        pieces: AsyncIterator[tuple[bytes, bytes]] | None = None
        if gathered is not None:  # sized by its length now, as plain forwarding checks it
            ended = len(gathered) <= BODY_LINE_LIMIT
            if starts_request(gathered[:BODY_LINE_LIMIT], ended=ended):
                raise HttpError(400, BODY_REQUEST)
        elif framing[0] == "length":
            try:
                pieces = await self._told(body_pieces(self.reader, framing, head.check), framing)
            except (OSError, ssl.SSLError) as error:  # the client's side: nothing was sent
                return self._left(fields, started, error)
        elif carries:
            pieces = body_pieces(self.reader, framing, head.check)
        # The headers this hop's ``Connection`` names stay here (RFC 9110 §7.6.1), as do the
        # hop-by-hop ones, as plain forwarding leaves them (:func:`hop_by_hop_request`).
        hop = hop_by_hop_request(head.headers)
        head.headers = [(k, v) for k, v in head.headers if k.lower() not in hop]
        if carries or head.get(b"connection") is not None:
            # Never an option naming a header that frames or routes the request (a next hop
            # that honours it would drop ``Content-Length`` and read the body as a request of
            # its own); and with a body, ``close``: an origin that leaves the body unread must
            # not read it as a request.
            options = connection_options(head.headers)
            if carries:
                options = [b"close", *sorted(set(options) - {b"close", b"keep-alive"})]
            head.headers = [(k, v) for k, v in head.headers if k.lower() != b"connection"]
            if options:
                head.headers.append((b"Connection", b", ".join(options)))
        chunked = framing[0] == "chunked"
        if chunked:  # sent on without trailers (see below): none is announced
            head.headers = [(k, v) for k, v in head.headers if k.lower() != b"trailer"]
        up = await self._upstream()
        up_writer = up.writer
        budget = self.inspector.budget  # each piece charged before it leaves
        out_head = head.serialize()
        if len(out_head) > budget.left:
            return await self._over_budget(fields, started, 0, secrets)
        budget.left -= len(out_head)
        up_writer.write(out_head)
        bytes_out = len(out_head)
        fields["bytes_out"] = bytes_out  # the head is on its way
        if gathered is not None:
            if len(gathered) > budget.left:
                return await self._over_budget(fields, started, bytes_out, secrets)
            budget.left -= len(gathered)
            await self._send_gathered(up_writer, gathered, fields)
            bytes_out += len(gathered)
            fields["bytes_out"] = bytes_out
        elif pieces is not None:
            scanner = BodyCount(self.inspector.redactor, encoding, head.joined(b"content-type"))
            count = 0
            while True:
                try:
                    raw, payload = await anext(pieces)
                except StopAsyncIteration:
                    break
                except (HttpError, OSError, ssl.SSLError) as error:  # the client's side
                    return await self._cut(fields, started, bytes_out, scanner, error)
                if chunked:  # framed anew, as in plain HTTP: no extension, no trailer
                    if not payload:
                        continue
                    raw = b"%x\r\n%b\r\n" % (len(payload), payload)
                if len(raw) > budget.left:
                    return await self._over_budget(
                        fields, started, bytes_out, await counted(fields, scanner)
                    )
                budget.left -= len(raw)
                up_writer.write(raw)
                bytes_out += len(raw)
                fields["bytes_out"] = bytes_out  # what left, should the exchange fail
                await scanner.add(payload)  # scanned beside forwarding
                self._active()
                if up_writer.transport.get_write_buffer_size() > PIECE:
                    await up_writer.drain()
                count += 1
                if count % YIELD_EVERY == 0:  # tiny chunks: the other connections' turn
                    await asyncio.sleep(0)
            if chunked:
                if len(LAST_CHUNK) > budget.left:
                    return await self._over_budget(
                        fields, started, bytes_out, await counted(fields, scanner)
                    )
                budget.left -= len(LAST_CHUNK)
                up_writer.write(LAST_CHUNK)
                bytes_out += len(LAST_CHUNK)
            secrets = await counted(fields, scanner)
        if up_writer.transport.get_write_buffer_size():  # all handed over: nothing to wait for
            await up_writer.drain()  # (drain raises once the origin closed, even then: one
            # that read the body, answered and closed, as asked, left its answer unread)
        fields["bytes_out"] = bytes_out  # gone: said if what follows fails
        fields["secrets"] = secrets
        http10 = head.first[2] == b"HTTP/1.0"
        status, bytes_in, keep = await self._relay_response(up, fields, client_keeps, http10)
        if carries:  # sent with ``Connection: close``: never reused (as in plain forwarding)
            self.retire()
        self._done(
            fields,
            started,
            status=status,
            decision="allow",
            bytes_out=bytes_out,
            bytes_in=bytes_in,
            secrets=secrets,
        )
        return keep

    def _left(self, fields: dict[str, Any], started: float, error: BaseException) -> bool:
        """The client left before any of its request was sent: recorded so."""
        what = error or type(error).__name__
        self._done(
            fields,
            started,
            status=0,  # no answer came (a record's status is always an int)
            bytes_out=0,
            error=f"the client left: {what} (nothing sent)",
        )
        return False

    async def _told(
        self, pieces: AsyncIterator[tuple[bytes, bytes]], framing: Framing
    ) -> AsyncIterator[tuple[bytes, bytes]]:
        """A body sized by its length, refused when its first line is a request line
        (:func:`~airlock.egress.cleartext.starts_request`, as plain forwarding refuses it): an
        origin that ignores the length would read it as a request of its own, never judged.
        Its first pieces are read until they tell (up to ``BODY_LINE_LIMIT`` bytes, or its
        end); the body, those pieces first, is returned to be sent on.

        Raises:
            HttpError: ``400`` (:data:`~airlock.egress.forwarding.BODY_REQUEST`), the rest of
                the body read and dropped when small; or the body's own error.
        """
        ahead: list[tuple[bytes, bytes]] = []
        start = b""
        told: bool | None = None
        while told is None:
            try:
                pair = await anext(pieces)
            except StopAsyncIteration:
                told = starts_request(start, ended=True)
                break
            ahead.append(pair)
            start += pair[1][: BODY_LINE_LIMIT - len(start)]
            told = starts_request(start)
        if told:
            if framing[1] <= MAX_GATHERED:  # unread bytes would reset the answer
                with contextlib.suppress(HttpError, ConnectionError, ssl.SSLError):
                    async for _ in pieces:
                        pass
            raise HttpError(400, BODY_REQUEST)
        return _resumed(ahead, pieces)

    def _active(self) -> None:
        """Note activity for the proxy's idle watch: a piece went either way."""
        if self.activity is not None:
            self.activity()

    async def _tell(self, status: int, message: str) -> int:
        """Answer ``status`` with ``message`` and close, when the client is still there to
        read it (the exchange already failed: its record says so whatever this does); the
        bytes written, which the record counts in ``bytes_in`` (as :meth:`_answer`'s)."""
        return await self._answer(status, message.encode() + b"\n", close=True)

    async def _cut(
        self,
        fields: dict[str, Any],
        started: float,
        bytes_out: int,
        scanner: BodyCount,
        error: BaseException,
    ) -> bool:
        """A body that ended early, or turned out malformed, after part of the request had
        gone upstream: the upstream request is cut (its connection closed), the client gets
        the error when it is still there, and the record says what left and what it held."""
        self.retire()
        answered = 0
        if isinstance(error, HttpError):
            message, status = error.message, error.status
            answered = await self._tell(status, message)
        else:
            message, status = f"the client left: {error or type(error).__name__}", 0  # no answer
        self._done(
            fields,
            started,
            status=status,
            decision="allow",
            bytes_out=bytes_out,
            bytes_in=answered,
            secrets=await counted(fields, scanner),
            error=f"{message} (cut upstream after {bytes_out} bytes)",
        )
        return False

    async def _over_budget(
        self, fields: dict[str, Any], started: float, bytes_out: int, secrets: dict[str, int]
    ) -> bool:
        """A piece of the request would pass the run's upload budget (``--max-upload-mb``):
        it does not leave, the upstream request is cut there (its connection closed), the
        client gets ``403`` saying why, and the record says what left; every other
        connection's next piece is cut too (:meth:`UploadBudget.spent`)."""
        reason = self.inspector.budget.spent()
        self.retire()
        answered = await self._tell(403, reason)
        self._done(
            fields,
            started,
            status=403,
            decision="deny",
            reason=reason,
            bytes_out=bytes_out,
            bytes_in=answered,
            secrets=secrets,
            error=reason,
        )
        return False

    async def _block(self, fields: dict[str, Any], started: float, secrets: dict[str, int]) -> bool:
        reason = blocked_reason(secrets)
        authority = self.authority().decode("latin-1")  # its port unless https's own
        body = f"airlock refused {fields['method']} https://{authority}{fields['path']}\nwhy: {reason}\n"
        sent = await self._answer(403, body.encode(), close=False)
        self._done(
            fields,
            started,
            status=403,
            decision="deny",
            reason=reason,
            secrets=secrets,
            bytes_in=sent,
        )
        return True

    async def _gather(self, framing: Framing, check: RequestCheck | None, held: Held) -> bytes:
        """The whole body, held within the run's budget for gathered bodies: one that would
        pass it is refused ``503`` (unread, when its length is known).

        It is written into one growing buffer whose bytes become the body without a copy
        (:meth:`io.BytesIO.getvalue` hands over its own when nothing else holds them): the
        body is in memory once, as the budget counts it, never its pieces and their joined
        copy at once."""
        if framing[0] == "length" and framing[1] > MAX_GATHERED:
            raise HttpError(413, TOO_LARGE)
        if not held.take(framing[1]):  # a known length, whole; a chunked body as it comes
            raise HttpError(503, BUSY)
        gathered = io.BytesIO()
        size = 0
        async for _, payload in body_pieces(self.reader, framing, check):
            size += len(payload)
            if size > MAX_GATHERED:
                raise HttpError(413, TOO_LARGE)
            if not held.cover(size):
                raise HttpError(503, BUSY)
            gathered.write(payload)
            self._active()
        return gathered.getvalue()

    async def _send_gathered(
        self, up_writer: asyncio.StreamWriter, gathered: bytes, fields: dict[str, Any]
    ) -> None:
        """Send a gathered body upstream a piece at a time, each handed to TLS once the one
        before it has mostly gone: written whole, TLS would hold an encrypted copy of it all
        (and the socket another) beside the body, memory no budget counts.
        ``fields["bytes_out"]`` follows what was handed over, should the exchange fail."""

        def handed(length: int) -> None:
            fields["bytes_out"] += length
            self._active()

        await write_in_pieces(up_writer, gathered, handed)

    async def _relay_response(
        self, up: Upstream, fields: dict[str, Any], client_keeps: bool, http10: bool = False
    ) -> tuple[int, int, bool]:
        """Stream the origin's answer to the client: its status, bytes, and whether to go on
        (never when the client asked to close: ``client_keeps`` false).
        The bytes it takes from the connection are counted (:attr:`Upstream.taken`); the
        origin's status and the bytes relayed so far stay in ``fields`` (``status``,
        ``bytes_in``), so a record of an answer that fails part-way says them.

        Its head goes without the origin's hop-by-hop headers
        (:func:`~airlock.egress.response.hop_by_hop`: its ``Connection`` and what it names,
        ``Keep-Alive``, ``Proxy-Authenticate``, ``Upgrade``, …; never one that frames the
        body, by which the end was found here), with airlock's ``Connection`` for the
        client's hop: ``close`` when this connection ends after it. An HTTP/1.0 client
        (``http10``), which cannot read chunked framing (RFC 9112 §6.1: none is sent to it),
        gets a chunked body decoded, without ``Transfer-Encoding`` and ``Trailer``, ended by
        the connection's close, as plain forwarding sends it
        (:class:`~airlock.egress.response.Http10Watcher`).

        An answer whose body ends at the close must end with the origin's ``close_notify``
        (its protocol's ``eof_received``, which TLS calls for it alone): a connection that
        ends without one may have been cut (TLS truncation), and the part must not be
        recorded nor passed on as the whole answer (:data:`TRUNCATED`).

        Raises:
            HttpError: ``502``: a malformed head or framing, or a ``101`` (no request here
                asks to switch protocols: :meth:`check_upgrade` refuses it).
            ConnectionError: the origin's connection ended without ``close_notify`` where
                the body ends at the close, or failed.
        """
        method = fields["method"]
        while True:
            head = await read_head(up.reader, request=False)
            if head is None:
                raise ConnectionError("the origin closed the connection without an answer")
            up.taken += head.raw_size
            status = int(head.first[1]) if head.first[1].isdigit() else 0
            if not 100 <= status <= 599:
                raise HttpError(502, f"origin sent a bad status {head.first[1][:10]!r}")
            if status == 101:  # unasked (a request to switch is refused): not passed on
                raise HttpError(
                    502,
                    "the origin switched protocols (101), which no request inside inspected "
                    "TLS asks for: not passed on",
                )
            if status >= 200:
                break
            # 1xx informational answers (100 Continue was answered here already): dropped.
        framing = head.framing()
        closing = not _keeps_alive(head)
        if method == "HEAD" or status in _NO_BODY_STATUS:
            framing = ("none", 0)
        elif framing[0] == "none":
            framing, closing = ("close", 0), True
        decoded = http10 and framing[0] == "chunked"  # its end is then the close
        until_close = framing[0] == "close" or decoded
        dropped = hop_by_hop(head.headers)
        if http10:  # as plain forwarding's head for it: no chunked framing it cannot read
            dropped |= DROPPED_FOR_HTTP10
        head.headers = [(k, v) for k, v in head.headers if k.lower() not in dropped]
        connection = client_connection(
            head.first[0], closes=not client_keeps, until_close=until_close
        )
        if connection is not None:
            head.headers.append((b"Connection", connection))
        out = head.serialize(drop=frozenset())
        self.writer.write(out)
        total = len(out)
        fields.update(status=status, bytes_in=total)  # the answer has begun
        self._active()
        async for piece, payload in body_pieces(up.reader, framing):
            up.taken += len(piece)
            if self.writer.is_closing():  # the client went: a write now would go nowhere
                raise ConnectionError("the client went away mid-answer")
            if decoded:
                piece = payload
            self.writer.write(piece)
            total += len(piece)
            fields["bytes_in"] = total
            self._active()
            if self.writer.transport.get_write_buffer_size() > PIECE:
                await self.writer.drain()
        if framing[0] == "close" and up.protocol is not None and not up.protocol.eof:
            raise ConnectionError(TRUNCATED)  # the client's connection is cut (:meth:`_failed`)
        await self.writer.drain()
        if closing and self.up is not None:
            self.retire()
        return status, total, client_keeps and not until_close


BEFORE_TLS = (
    "bytes came on the connection to the origin before its TLS began (after the upstream "
    "proxy's answer to the CONNECT, if any): read after it, they would pass for the origin's "
    "answer, which TLS did not carry; not read"
)
"""Why a connection to an inspected origin is not used (:meth:`InspectedConnection._upstream`)."""

TRUNCATED = (
    "the origin's connection ended without TLS's close_notify, where its answer's body ends "
    "at the close: the answer may be cut short (not passed on as whole)"
)
"""Why an answer whose body ends at the close fails when TLS did not end with it."""


def _keeps_alive(head: Head) -> bool:
    """Whether the origin keeps its connection after the answer in ``head``: an HTTP/1.1
    answer unless its ``Connection`` lists ``close``, an HTTP/1.0 one (or older) only when it
    lists ``keep-alive``. An origin that closes after its answer must not get the next
    request: written into the closing connection, it would fail with no answer (``502``)."""
    tokens = connection_tokens(head.headers)
    if b"close" in tokens:
        return False
    return head.first[0].upper() not in (b"HTTP/1.0", b"HTTP/0.9") or b"keep-alive" in tokens


def _waits_to_send(head: Head, framing: Framing) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body it announced
    (``Expect: 100-continue``): a refusal must not wait to read that body first."""
    expect = head.get(b"expect")
    carries = framing[0] == "chunked" or framing[1] > 0
    return carries and expect is not None and expect.strip().lower() == b"100-continue"


async def _closed(writer: asyncio.StreamWriter) -> None:
    """Wait for ``writer``'s connection, closed already, to finish closing (however it ends)."""
    with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
        await writer.wait_closed()


async def _resumed(
    ahead: list[tuple[bytes, bytes]], pieces: AsyncIterator[tuple[bytes, bytes]]
) -> AsyncIterator[tuple[bytes, bytes]]:
    """The pieces read ``ahead`` of a body, then the rest of it."""
    for pair in ahead:
        yield pair
    async for pair in pieces:
        yield pair
