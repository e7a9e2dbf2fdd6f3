"""Real servers on loopback for inspection tests: a TLS origin with its own CA, and a small
CONNECT front that hands inspected hosts to the inspector and tunnels the rest."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import socket
import ssl
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

from airlock.egress.ca import RunCA, upstream_context, write_bundle
from airlock.egress.inspect import InspectionConfig, Inspector
from airlock.egress.scan import SecretsMode
from airlock.policy import Decisions
from tests.serving import Handler, in_thread

NOW = dt.datetime.now(dt.UTC)


class OriginHandler(Handler):
    """Answers every request: a canned answer for its path if the server has one, else
    ``/bytes/N`` sends N pseudo-random bytes, ``/echo`` the body, ``/headers`` the header
    lines, a path ending ``/reset`` a reset once the request is read, anything else a JSON
    note."""

    server: OriginServer

    def _handle(self) -> None:
        rfile, self.rfile = self.rfile, _Recorded(self.rfile)  # type: ignore[assignment]
        try:
            body = self.read_body()
        finally:
            recorded, self.rfile = self.rfile, rfile
        self.server.seen.append((self.command, self.path, body))
        self.server.framed.append(recorded.data)  # type: ignore[attr-defined]
        if self.path.endswith("/reset"):  # read it all, then reset instead of answering
            import socket
            import struct

            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
            return
        kind = "application/json"
        canned = [v for k, v in self.server.answers.items() if self.path.startswith(k)]
        if canned:
            kind, answer = canned[0]
        elif self.path.startswith("/bytes/"):
            answer = self.server.blob[: int(self.path.split("/")[2])]
        elif self.path.startswith("/echo"):
            answer = body
        elif self.path.startswith("/headers"):
            answer = bytes(self.headers)
        else:
            answer = json.dumps({"path": self.path, "received": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_POST = do_PUT = do_HEAD = _handle


class _Recorded:
    """A request's stream that keeps what was read from it (a body as framed on the wire)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.data = b""

    def read(self, size: int = -1) -> bytes:
        data: bytes = self.stream.read(size)
        self.data += data
        return data

    def readline(self, size: int = -1) -> bytes:
        data: bytes = self.stream.readline(size)
        self.data += data
        return data


class OriginServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A request cut short (a refused smuggling attempt) is not the test's failure."""

    seen: list[tuple[str, str, bytes]]
    framed: list[bytes]
    """Each request's body as it came on the wire (chunked framing and trailers too)."""
    blob: bytes
    answers: dict[str, tuple[str, bytes]]
    """Canned answers by path prefix: (content type, body), before the built-in ones."""


class _OriginServer6(OriginServer):
    address_family = socket.AF_INET6


def tls_origin(
    ca: RunCA, host: str = "localhost", bind: str = "127.0.0.1"
) -> contextlib.AbstractContextManager[OriginServer]:
    """An HTTPS origin on ``bind`` whose certificate for ``host`` is signed by ``ca``."""
    kind = _OriginServer6 if ":" in bind else OriginServer
    server = kind((bind, 0), OriginHandler)
    server.seen = []
    server.framed = []
    server.answers = {}
    server.blob = hashlib.shake_256(b"airlock").digest(1 << 22)
    server.socket = ca.server_context(host).wrap_socket(server.socket, server_side=True)
    return in_thread(server)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    with contextlib.suppress(ConnectionError, OSError, RuntimeError):
        writer.write_eof()


class Front:
    """A minimal CONNECT front: inspected hosts go to the inspector, others are tunnelled."""

    def __init__(self, inspector: Inspector, inspected: set[str]) -> None:
        self.inspector = inspector
        self.inspected = inspected
        self.tunnels: list[tuple[str, int]] = []
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        finally:
            writer.close()
            with contextlib.suppress(OSError, ssl.SSLError, ConnectionError):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
        if method != b"CONNECT":
            writer.write(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
            writer.close()
            return
        host, _, port_text = target.decode().rpartition(":")
        port = int(port_text)
        established = b"HTTP/1.1 200 Connection Established\r\n\r\n"
        if host in self.inspected:
            await self.inspector.intercept(reader, writer, host, port, established=established)
            return
        writer.write(established)
        await writer.drain()
        self.tunnels.append((host, port))
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            writer.close()
            up_writer.close()

    def __enter__(self) -> Front:
        self._thread.start()
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._client, "127.0.0.1", 0, limit=1 << 16), self.loop
        ).result(10)
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._server.wait_closed()
            await asyncio.sleep(0.05)  # transports closed by the tasks finish closing

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


class Rig:
    """A run's CA and bundle, an origin with its own CA, an inspector and a front."""

    def __init__(self, tmp: Path, decisions: Decisions, secrets: SecretsMode, inspected: set[str]):
        self.records: list[dict[str, Any]] = []
        self.ca = RunCA(now=NOW)
        self.origin_ca = RunCA(now=NOW, name="test origin CA")
        origin_pem = tmp / "origin-ca.pem"
        origin_pem.write_bytes(self.origin_ca.certificate_pem)
        system = tmp / "system.pem"
        system.write_bytes(self.origin_ca.certificate_pem)  # the un-inspected origin's trust
        self.bundle = write_bundle(self.ca, tmp / "bundle.pem", system)
        self.inspector = Inspector(
            self.ca,
            upstream_context(origin_pem),
            decisions,
            self.records.append,
            secrets=secrets,
            api_hosts=frozenset({"api.anthropic.com", "localhost"}),
        )
        self.front = Front(self.inspector, inspected)

    def wait_records(self, count: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        """The records, once there are ``count`` of them (written right after each answer)."""
        import time

        deadline = time.monotonic() + timeout
        while len(self.records) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return list(self.records)

    def proxy_env(self) -> dict[str, str]:
        from airlock.egress.ca import ca_environment

        proxy = f"http://127.0.0.1:{self.front.port}"
        return {
            "PATH": "/usr/bin:/bin",
            "HTTPS_PROXY": proxy,
            "https_proxy": proxy,
            "NO_PROXY": "",
            **ca_environment(self.bundle),
        }


def tunnel_ssl(rig: Rig, host: str, cafile: Path) -> tuple[ssl.SSLSocket, Any]:
    """A TLS socket to ``host`` through the front's CONNECT, verifying against ``cafile``."""
    import socket

    raw = socket.create_connection(("127.0.0.1", rig.front.port), timeout=10)
    port = rig.origin_port
    raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        answer += raw.recv(1)
    assert answer.startswith(b"HTTP/1.1 200")
    context = ssl.create_default_context(cafile=str(cafile))
    return context.wrap_socket(raw, server_hostname=host), raw


def inspected_setup(
    tmp_path: Path, environ: dict[str, str], secrets: SecretsMode = SecretsMode.REPORT
) -> tuple[RunCA, Path, InspectionConfig]:
    """An origin's CA, the run's bundle (the system's CAs and the run's) and an inspection of
    ``localhost`` (its secrets ``secrets``: reported) with the engine's decisions for
    ``environ``."""
    from airlock.policy import decide
    from tests.policy.helpers import context

    run_ca = RunCA(now=NOW)
    origin_ca = RunCA(now=NOW, name="test origin CA")
    origin_pem = tmp_path / "origin-ca.pem"
    origin_pem.write_bytes(origin_ca.certificate_pem)
    bundle = write_bundle(run_ca, tmp_path / "bundle.pem", origin_pem)
    inspection = InspectionConfig(
        hosts=frozenset({"localhost"}),
        ca=run_ca,
        upstream=upstream_context(origin_pem),
        decisions=decide(context(environ)),
        secrets=secrets,
        api_hosts=frozenset({"localhost"}),
    )
    return origin_ca, bundle, inspection


def inspected_tls(
    proxy: str, bundle: Path, port: int, alpn: list[str] | None = None
) -> ssl.SSLSocket:
    """A TLS connection to ``localhost:PORT`` through the proxy's ``CONNECT``, inspected
    (``bundle``: the run's CA bundle), offering the protocols ``alpn`` (none: no offer)."""
    raw = established_tunnel(proxy, f"localhost:{port}")
    context = ssl.create_default_context(cafile=str(bundle))
    if alpn is not None:
        context.set_alpn_protocols(alpn)
    return context.wrap_socket(raw, server_hostname="localhost")


def until_closed(sock: socket.socket) -> bytes:
    """What comes on ``sock`` until the other side closes it (or resets it)."""
    answer = b""
    with contextlib.suppress(OSError):
        while piece := sock.recv(65536):
            answer += piece
    return answer


def inspected_post(proxy: str, bundle: Path, port: int, target: str) -> bytes:
    """``POST target`` with a body of ``{}`` to ``localhost:PORT``, inspected through the
    proxy, on a connection of its own; the whole answer."""
    with inspected_tls(proxy, bundle, port) as tls:
        tls.sendall(
            f"POST {target} HTTP/1.1\r\nHost: localhost:{port}\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n{}".encode()
        )
        return until_closed(tls)


def established_tunnel(proxy: str, host: str) -> socket.socket:
    """A ``CONNECT`` tunnel to ``host`` (``HOST:PORT``) through ``proxy``, established."""
    raw = socket.create_connection(("127.0.0.1", int(proxy.rsplit(":", 1)[1])), timeout=10)
    raw.sendall(f"CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    answer = b""
    while not answer.endswith(b"\r\n\r\n"):
        piece = raw.recv(1)
        assert piece, answer
        answer += piece
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return raw
