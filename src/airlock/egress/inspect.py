"""Inspection of TLS to named hosts: every request named by its flow, enforced and recorded.

Theory of operation
-------------------
When a CONNECT for an inspected host has been admitted by the proxy's host rules and answered
``200``, the proxy hands the client's connection to :meth:`Inspector.intercept`. The inspector
terminates TLS with a leaf from the run's CA (``egress.ca``) and reads HTTP/1.1 requests, one
after another on the kept-alive connection. For each request it:

1. parses the head (a bounded size; obsolete line folding, both ``Content-Length`` and
   ``Transfer-Encoding``, or a bad chunk size are refused with ``400`` and the connection
   closed: no smuggling);
2. names the request's flow (``egress.flows.classify``) and asks the engine's decisions whether
   that flow may leave (``egress.flows.enforce``); a refused request gets a ``403`` whose body
   names the flow and what turned it off;
3. sends the request to the origin over TLS verified against the system's CAs (plus
   ``--upstream-ca``), on one upstream connection kept for the client connection, streaming the
   body while the redaction engine counts its secrets (``--secrets report``); with
   ``--secrets redact`` or ``block`` the body is gathered first (up to ``MAX_GATHERED``), then
   redacted or refused;
4. streams the answer back as it comes and writes one audit record (:func:`record_of`).

A client that refuses the run's certificate (certificate pinning, or no trust in the bundle)
fails its handshake; that is recorded with the host named, and :attr:`Inspector.refused_by_client`
lists such hosts for the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

from airlock.egress.ca import RunCA
from airlock.egress.flows import (
    DEFAULT_AGENT,
    DEFAULT_API_HOSTS,
    FlowSummary,
    classify,
    compare,
    enforce,
    redact_query,
    refusal_body,
)
from airlock.egress.scan import SecretScanner, SecretsMode, count_secrets, redact_body
from airlock.policy import Decisions
from airlock.redact import Redactor

Dial = Callable[[str, int], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]
"""Opens a plain TCP connection to a host and port (the proxy's dialler, with its address
checks); the inspector adds TLS on top."""
Record = Callable[[dict[str, Any]], None]
"""Takes one audit record (the proxy's audit log)."""

MAX_HEAD = 64 * 1024
"""The longest request or response head accepted."""
MAX_GATHERED = 64 * 1024 * 1024
"""The largest body gathered whole for ``--secrets redact`` or ``block``."""
PIECE = 256 * 1024
"""Bytes read at a time from a body."""
HANDSHAKE_TIMEOUT = 15.0
IDLE_TIMEOUT = 120.0

HOP_BY_HOP = frozenset({b"proxy-connection", b"proxy-authorization", b"keep-alive"})
_NO_BODY_STATUS = frozenset({204, 304})


class HttpError(Exception):
    """A request or response that cannot be forwarded; ``status`` is what the client gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class Head:
    """A parsed request or response head: its first line's parts and its header lines."""

    __slots__ = ("first", "headers", "raw_size")

    def __init__(self, first: list[bytes], headers: list[tuple[bytes, bytes]], raw_size: int):
        self.first = first
        self.headers = headers
        self.raw_size = raw_size

    def get(self, name: bytes) -> bytes | None:
        """The last value of header ``name`` (lower case), or ``None``."""
        found = None
        for key, value in self.headers:
            if key.lower() == name:
                found = value
        return found

    def framing(self) -> tuple[str, int]:
        """How the body is delimited: ``("length", n)``, ``("chunked", 0)`` or ``("none", 0)``.

        Raises:
            HttpError: Both ``Content-Length`` and ``Transfer-Encoding``, several different
                lengths, a length that is not a number, or a coding other than ``chunked``.
        """
        lengths = {v.strip() for k, v in self.headers if k.lower() == b"content-length"}
        codings = [v for k, v in self.headers if k.lower() == b"transfer-encoding"]
        if lengths and codings:
            raise HttpError(400, "both Content-Length and Transfer-Encoding: refused (smuggling)")
        if codings:
            if [c.strip().lower() for c in codings] != [b"chunked"]:
                raise HttpError(501, f"unsupported Transfer-Encoding {codings!r}")
            return "chunked", 0
        if len(lengths) > 1:
            raise HttpError(400, "several different Content-Length values")
        if lengths:
            text = lengths.pop()
            if not text.isdigit() or len(text) > 15:
                raise HttpError(400, f"bad Content-Length {text!r}")
            return "length", int(text)
        return "none", 0

    def serialize(self, *, drop: frozenset[bytes] = HOP_BY_HOP) -> bytes:
        lines = [b" ".join(self.first)]
        lines += [k + b": " + v for k, v in self.headers if k.lower() not in drop]
        return b"\r\n".join(lines) + b"\r\n\r\n"


async def read_head(reader: asyncio.StreamReader, *, request: bool) -> Head | None:
    """Read one head; ``None`` on a clean end of stream before any byte.

    Raises:
        HttpError: Too long, malformed, or obsolete line folding.
    """
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial.strip():
            return None
        raise HttpError(400, "connection closed in the middle of a head") from error
    except asyncio.LimitOverrunError as error:
        raise HttpError(431, f"head longer than {MAX_HEAD} bytes") from error
    lines = raw[:-4].split(b"\r\n")
    while request and lines and not lines[0]:
        lines.pop(0)  # a stray CRLF between requests is allowed (RFC 9112 §2.2)
    if not lines:
        return None
    first = lines[0].split(b" ", 2)
    version = first[-1] if request else first[0]
    if len(first) != 3 or not version.startswith(b"HTTP/1."):
        raise HttpError(400, f"malformed first line {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            raise HttpError(400, "obsolete line folding in a header: refused")
        name, sep, value = line.partition(b":")
        if not sep or not name or name != name.strip() or b" " in name:
            raise HttpError(400, f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return Head(first, headers, len(raw))


async def _body_pieces(reader: asyncio.StreamReader, framing: tuple[str, int]) -> Any:
    """Yield ``(raw, payload)`` pairs of a body as it arrives: the bytes as on the wire (chunked
    stays chunked) and the body's content among them (empty for size lines and trailers)."""
    kind, length = framing
    if kind == "length":
        left = length
        while left:
            data = await reader.read(min(PIECE, left))
            if not data:
                raise HttpError(400, "connection closed in the middle of a body")
            left -= len(data)
            yield data, data
    elif kind == "chunked":
        async for pair in _chunked(reader):
            yield pair
    elif kind == "close":
        while data := await reader.read(PIECE):
            yield data, data


async def _line(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readuntil(b"\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError) as error:
        raise HttpError(400, "bad or missing line in a chunked body") from error


async def _chunked(reader: asyncio.StreamReader) -> Any:
    """Yield a chunked body's ``(raw, payload)`` pairs, checking every size line and CRLF."""
    while True:
        line = await _line(reader)
        size_text = line[:-2].split(b";", 1)[0].strip()
        if not size_text or len(size_text) > 15 or size_text.strip(b"0123456789abcdefABCDEF"):
            raise HttpError(400, f"bad chunk size {size_text[:20]!r}")
        size = int(size_text, 16)
        yield line, b""
        if size == 0:
            while True:  # trailers, then the blank line
                trailer = await _line(reader)
                yield trailer, b""
                if trailer == b"\r\n":
                    return
        left = size
        while left:
            data = await reader.read(min(PIECE, left))
            if not data:
                raise HttpError(400, "connection closed in the middle of a chunk")
            left -= len(data)
            yield data, data
        if await _line(reader) != b"\r\n":
            raise HttpError(400, "a chunk longer than its size")
        yield b"\r\n", b""


async def default_dial(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A plain TCP connection, without the proxy's address checks (tests and benchmarks)."""
    return await asyncio.open_connection(host, port, limit=MAX_HEAD)


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


@dataclass(frozen=True, slots=True)
class InspectionConfig:
    """What a run's proxy needs to inspect: hosts, the CA, upstream trust, the decisions."""

    hosts: frozenset[str]
    ca: RunCA
    upstream: ssl.SSLContext
    decisions: Decisions
    secrets: SecretsMode = SecretsMode.REPORT
    redactor: Redactor | None = None
    api_hosts: frozenset[str] = DEFAULT_API_HOSTS
    agent: str = DEFAULT_AGENT


class Inspector:
    """Reads, enforces and records the requests of inspected TLS connections.

    Args:
        ca: The run's CA (leaves for inspected hosts).
        upstream: The TLS client context for origins (``ca.upstream_context``).
        decisions: The policy engine's decisions for this run.
        record: Where each audit record goes.
        secrets: What a secret in a request body does.
        redactor: The redaction engine (settings' rules); the built-in rules by default.
        api_hosts: Hosts that stand for the vendor API in the signature table.
        agent: Whose signature table classifies requests.
        dial: Opens TCP to an origin (the proxy's dialler with its address checks).
        wall: The wall clock, for record times.
        clock: A monotonic clock, for durations.
    """

    def __init__(
        self,
        ca: RunCA,
        upstream: ssl.SSLContext,
        decisions: Decisions,
        record: Record,
        *,
        secrets: SecretsMode = SecretsMode.REPORT,
        redactor: Redactor | None = None,
        api_hosts: frozenset[str] = DEFAULT_API_HOSTS,
        agent: str = DEFAULT_AGENT,
        dial: Dial = default_dial,
        wall: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ca = ca
        self.upstream = upstream
        self.decisions = decisions
        self.record = record
        self.secrets = secrets
        self.redactor = redactor or Redactor()
        self.api_hosts = api_hosts
        self.agent = agent
        self.dial = dial
        self.wall = wall
        self.clock = clock
        self.hosts: frozenset[str] = frozenset()
        self.refused_by_client: dict[str, str] = {}
        """Hosts whose clients refused the run's certificate, with the TLS error."""
        self.flows: dict[tuple[str, str], list[int]] = {}
        """(flow, decision) -> [requests, bytes out, bytes in], for the end-of-run report."""

    @classmethod
    def from_config(cls, config: InspectionConfig, record: Record) -> Inspector:
        """The inspector a run's proxy uses, recording to ``record``."""
        inspector = cls(
            config.ca,
            config.upstream,
            config.decisions,
            record,
            secrets=config.secrets,
            redactor=config.redactor,
            api_hosts=config.api_hosts,
            agent=config.agent,
        )
        inspector.hosts = config.hosts
        return inspector

    def tally(self, record: Mapping[str, Any]) -> None:
        """Count one request record by flow and decision."""
        row = self.flows.setdefault((record["flow"], record["decision"]), [0, 0, 0])
        row[0] += 1
        row[1] += record["bytes_out"]
        row[2] += record["bytes_in"]

    def flow_summaries(self) -> list[FlowSummary]:
        """Traffic by flow next to the engine's prediction, with the differences flagged."""
        rows = [
            {"flow": flow, "decision": decision, "count": n, "bytes_out": out, "bytes_in": in_}
            for (flow, decision), (n, out, in_) in self.flows.items()
        ]
        return compare(rows, self.decisions)

    def inspects(self, host: str) -> bool:
        """Whether TLS to ``host`` is read (named with ``--inspect`` or in settings)."""
        return host in self.hosts

    async def intercept(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        host: str,
        port: int,
        *,
        dial: Dial | None = None,
        activity: Callable[[], None] | None = None,
        established: bytes = b"",
    ) -> None:
        """Serve one client connection whose CONNECT to ``host:port`` was admitted.

        The connection stops reading before ``established`` (the CONNECT's ``200``) is
        written, so the client's first TLS bytes wait in the socket for the TLS layer instead
        of landing in the stream's plain-text buffer, where the handshake would never see them.

        Args:
            reader: The client connection, right after the CONNECT's head.
            writer: Its writer; TLS is started on it here.
            host: The CONNECT's host, as admitted by the host rules.
            port: Its port.
            dial: Opens TCP to the origin for this connection (the proxy's admitted address);
                the inspector's own dialler by default.
            activity: Called after each request (the proxy's idle watchdog).
            established: The CONNECT's answer, written here; empty when already written
                (then the client must not have sent anything yet).
        """
        cast(asyncio.Transport, writer.transport).pause_reading()
        if established:
            writer.write(established)
        try:
            await asyncio.wait_for(
                writer.start_tls(self.ca.server_context(host)), HANDSHAKE_TIMEOUT
            )
        except (ssl.SSLError, OSError, TimeoutError, ConnectionError) as error:
            self._client_refused(host, port, error)
            writer.close()
            return
        session = _Session(self, reader, writer, host, port, dial or self.dial, activity)
        try:
            await session.run()
        finally:
            await session.close()

    def _client_refused(self, host: str, port: int, error: BaseException) -> None:
        why = str(error) or type(error).__name__
        self.refused_by_client[host] = why
        self.record(
            record_of(
                time=self.wall(),
                type="tunnel",
                host=host,
                port=port,
                method="CONNECT",
                status=200,
                path=None,
                flow=None,
                reason=f"the client refused the run's certificate for {host} ({why}): it pins "
                "certificates or does not read the CA bundle; leave "
                f"{host} out of --inspect to tunnel it unread",
                error=f"client TLS handshake failed for {host}: {why}",
            )
        )


class _Session:
    """One client connection: requests in order, one upstream connection kept alive."""

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
        self.i = inspector
        self.dial = dial
        self.activity = activity
        self.reader = reader
        self.writer = writer
        self.host = host
        self.port = port
        self.up: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def run(self) -> None:
        while True:
            try:
                head = await asyncio.wait_for(read_head(self.reader, request=True), IDLE_TIMEOUT)
            except (HttpError, TimeoutError, ConnectionError, ssl.SSLError) as error:
                if isinstance(error, HttpError):
                    await self._answer(error.status, error.message.encode() + b"\n", close=True)
                return
            if head is None:
                return
            if not await self._one(head):
                return

    async def close(self) -> None:
        writers = [self.writer] + ([self.up[1]] if self.up else [])
        self.up = None
        for writer in writers:
            writer.close()
        for writer in writers:
            with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    async def _answer(self, status: int, body: bytes, *, close: bool) -> int:
        reason = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large"}.get(
            status, "Error"
        )
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

    async def _one(self, head: Head) -> bool:
        """Handle one request; whether the connection goes on."""
        started = self.i.clock()
        method = head.first[0].decode("latin-1")
        target = head.first[1].decode("latin-1")
        path = _origin_path(target)
        flow = classify(method, self.host, path, agent=self.i.agent, api_hosts=self.i.api_hosts)
        verdict = enforce(flow, self.i.decisions)
        fields: dict[str, Any] = {
            "time": self.i.wall(),
            "method": method,
            "host": self.host,
            "port": self.port,
            "path": redact_query(path),
            "flow": flow,
            "reason": verdict.reason,
        }
        try:
            framing = head.framing()
        except HttpError as error:
            await self._answer(error.status, error.message.encode() + b"\n", close=True)
            self._done(fields, started, status=error.status, decision="deny", error=error.message)
            return False
        if not verdict.allowed:
            body = refusal_body(verdict, method, self.host, path)
            # The connection goes on only when the body was read whole and the client did not
            # ask to close it (a client waiting for the end of a refused answer must get it).
            keep = await self._drain(framing) and _keeps_alive(head)
            sent = await self._answer(403, body, close=not keep)
            self._done(fields, started, status=403, decision="deny", bytes_in=sent)
            return keep
        try:
            return await self._forward(head, framing, fields, started)
        except HttpError as error:
            await self._answer(error.status, error.message.encode() + b"\n", close=True)
            self._done(fields, started, status=error.status, decision="deny", error=error.message)
            return False
        except (OSError, ssl.SSLError, ConnectionError, TimeoutError) as error:
            message = f"origin {self.host}:{self.port}: {error or type(error).__name__}"
            await self._answer(502, message.encode() + b"\n", close=True)
            self._done(fields, started, status=502, error=message)
            return False

    async def _drain(self, framing: tuple[str, int]) -> bool:
        """Read and drop a refused request's body, when small; whether it was read whole."""
        if framing[0] == "length" and framing[1] > MAX_GATHERED:
            return False
        try:
            async for _ in _body_pieces(self.reader, framing):
                pass
        except (HttpError, ConnectionError, ssl.SSLError):
            return False
        return True

    def _done(self, fields: dict[str, Any], started: float, **more: Any) -> None:
        fields.update(more)
        fields["duration_ms"] = round((self.i.clock() - started) * 1000, 3)
        record = record_of(**fields)
        self.i.tally(record)
        self.i.record(record)
        if self.activity is not None:
            self.activity()

    async def _upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.up is None or self.up[1].is_closing() or self.up[0].at_eof():
            if self.up is not None:
                self.up[1].close()
                self.up = None
            reader, writer = await self.dial(self.host, self.port)
            try:
                await writer.start_tls(self.i.upstream, server_hostname=self.host)
            except BaseException:
                writer.close()
                raise
            self.up = (reader, writer)
        return self.up

    async def _forward(
        self, head: Head, framing: tuple[str, int], fields: dict[str, Any], started: float
    ) -> bool:
        expect = head.get(b"expect")
        if expect is not None and expect.lower() == b"100-continue":
            head.headers = [(k, v) for k, v in head.headers if k.lower() != b"expect"]
            self.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        mode = self.i.secrets
        gathered: bytes | None = None
        secrets: dict[str, int] = {}
        if mode is not SecretsMode.REPORT and framing[0] != "none":
            payload = await self._gather(framing)
            if mode is SecretsMode.BLOCK:
                secrets = count_secrets(self.i.redactor, payload)
                if secrets:
                    return await self._block(fields, started, secrets)
                gathered = payload
            else:
                gathered, secrets = redact_body(self.i.redactor, payload)
            head.headers = [
                (k, v)
                for k, v in head.headers
                if k.lower() not in (b"content-length", b"transfer-encoding")
            ]
            head.headers.append((b"Content-Length", str(len(gathered)).encode()))
        up_reader, up_writer = await self._upstream()
        out_head = head.serialize()
        up_writer.write(out_head)
        bytes_out = len(out_head)
        if gathered is not None:
            up_writer.write(gathered)
            bytes_out += len(gathered)
        elif framing[0] != "none":
            scanner = SecretScanner(self.i.redactor)
            scanning: asyncio.Future[Any] | None = None
            loop = asyncio.get_running_loop()
            async for raw, payload in _body_pieces(self.reader, framing):
                up_writer.write(raw)
                bytes_out += len(raw)
                if scanner.take(payload):
                    # Large bodies: a segment is scanned in a worker thread (RE2 lets go of
                    # the GIL) while the next is forwarded; one segment out at a time.
                    if scanning is not None:
                        scanner.merge(await scanning)
                    window = scanner.cut(final=False)
                    scanning = loop.run_in_executor(None, scanner.scan, *window)
                if up_writer.transport.get_write_buffer_size() > PIECE:
                    await up_writer.drain()
            if scanning is not None:
                scanner.merge(await scanning)
            secrets = scanner.finish()
        await up_writer.drain()
        status, bytes_in, keep = await self._relay_response(up_reader, fields["method"])
        keep = keep and _keeps_alive(head)
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

    async def _block(self, fields: dict[str, Any], started: float, secrets: dict[str, int]) -> bool:
        kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(secrets.items()))
        reason = f"--secrets block: the request body holds secrets ({kinds}); nothing was sent"
        body = f"airlock refused {fields['method']} https://{self.host}{fields['path']}\nwhy: {reason}\n"
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

    async def _gather(self, framing: tuple[str, int]) -> bytes:
        if framing[0] == "length" and framing[1] > MAX_GATHERED:
            raise HttpError(413, f"body over {MAX_GATHERED} bytes cannot be checked for secrets")
        parts = []
        size = 0
        async for _, payload in _body_pieces(self.reader, framing):
            size += len(payload)
            if size > MAX_GATHERED:
                raise HttpError(413, f"body over {MAX_GATHERED} bytes cannot be checked")
            parts.append(payload)
        return b"".join(parts)

    async def _relay_response(
        self, up_reader: asyncio.StreamReader, method: str
    ) -> tuple[int, int, bool]:
        """Stream the origin's answer to the client: its status, bytes, and whether to go on."""
        while True:
            head = await read_head(up_reader, request=False)
            if head is None:
                raise ConnectionError("the origin closed the connection without an answer")
            status = int(head.first[1]) if head.first[1].isdigit() else 0
            if not 100 <= status <= 599:
                raise HttpError(502, f"origin sent a bad status {head.first[1][:10]!r}")
            if status >= 200 or status == 101:
                break
            # 1xx informational answers (100 Continue was answered here already): dropped.
        framing = head.framing()
        closing = (head.get(b"connection") or b"").lower() == b"close"
        if method == "HEAD" or status in _NO_BODY_STATUS or status < 200:
            framing = ("none", 0)
        elif framing[0] == "none":
            framing, closing = ("close", 0), True
        out = head.serialize(drop=frozenset())
        self.writer.write(out)
        total = len(out)
        async for piece, _ in _body_pieces(up_reader, framing):
            self.writer.write(piece)
            total += len(piece)
            if self.writer.transport.get_write_buffer_size() > PIECE:
                await self.writer.drain()
        await self.writer.drain()
        if closing and self.up is not None:
            self.up[1].close()
            self.up = None
        return status, total, not (closing and framing[0] == "close")


def _keeps_alive(head: Head) -> bool:
    """Whether the client wants the connection kept after this request (HTTP/1.1 default)."""
    connection = (head.get(b"connection") or b"").lower()
    if head.first[2] == b"HTTP/1.0":
        return b"keep-alive" in connection
    return b"close" not in connection


def _origin_path(target: str) -> str:
    """The path of a request target (an absolute-form target loses its scheme and host)."""
    if target.startswith(("http://", "https://")):
        rest = target.split("://", 1)[1]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
    return target or "/"
