"""Real HTTP servers on loopback for feedback and survey tests: a collector and an OTLP receiver.

The collector stores a body only when every byte arrived and the hash matches, and stores each
idempotency key once. It can be told to cut the connection part-way through the next uploads,
or to store and then drop the answer, so retries can be tested against what really happens on
the wire.
"""

from __future__ import annotations

import hashlib
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Collector:
    """What the fake collector saw and stored, and how it should misbehave next."""

    url: str = ""
    stored: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)
    cut_after: list[int] = field(default_factory=list)
    """For each of the next attempts, cut the connection after this many body bytes."""
    drop_answer: int = 0
    """Store the next N uploads, then close without answering."""
    fail_status: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Collector) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            key = self.headers.get("Idempotency-Key", "")
            size = int(self.headers.get("Content-Length", "0"))
            with state.lock:
                state.attempts.append(self.path)
                cut = state.cut_after.pop(0) if state.cut_after else None
                status = state.fail_status.pop(0) if state.fail_status else None
            if cut is not None:
                self.rfile.read(min(cut, size))
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            body = bytearray()
            while len(body) < size:
                chunk = self.rfile.read(min(65536, size - len(body)))
                if not chunk:
                    return  # the client went away: nothing is stored
                body += chunk
            if status is not None:
                self._answer(status, {"error": "try later"})
                return
            wanted = self.headers.get("X-Airlock-Bundle-Sha256")
            if wanted and hashlib.sha256(body).hexdigest() != wanted:
                self._answer(400, {"error": "hash mismatch"})
                return
            with state.lock:
                duplicate = key in state.stored
                if not duplicate:
                    state.stored[key] = bytes(body)
                    state.headers[key] = dict(self.headers.items())
                drop = state.drop_answer > 0
                if drop:
                    state.drop_answer -= 1
            if drop:
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self._answer(200 if duplicate else 201, {"id": key, "duplicate": duplicate})

        def _answer(self, status: int, data: dict[str, Any]) -> None:
            raw = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    return Handler


@contextmanager
def serve(
    handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None
) -> Iterator[str]:
    """Serve ``handler`` on 127.0.0.1 (a free port), over TLS when given, and yield the base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        scheme = "https" if tls is not None else "http"
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def collector(tls: ssl.SSLContext | None = None) -> Iterator[Collector]:
    """A running fake collector (over TLS when ``tls`` is given)."""
    state = Collector()
    with serve(_handler(state), tls) as url:
        state.url = url
        yield state


@dataclass
class OtlpReceiver:
    """What the OTLP/HTTP receiver decoded: one entry per log record."""

    url: str = ""
    requests: list[str] = field(default_factory=list)
    records: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def otlp_receiver() -> Iterator[OtlpReceiver]:
    """A running OTLP/HTTP receiver that decodes ``ExportLogsServiceRequest`` protobufs."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
        ExportLogsServiceRequest,
        ExportLogsServiceResponse,
    )

    state = OtlpReceiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            state.requests.append(self.path)
            request = ExportLogsServiceRequest()
            request.ParseFromString(body)
            for resource_logs in request.resource_logs:
                for scope_logs in resource_logs.scope_logs:
                    for record in scope_logs.log_records:
                        state.records.append(
                            {
                                "scope": scope_logs.scope.name,
                                "event_name": record.event_name,
                                "body": record.body.string_value,
                                "attributes": {
                                    item.key: item.value.string_value for item in record.attributes
                                },
                            }
                        )
            raw = ExportLogsServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    with serve(Handler) as url:
        state.url = url
        yield state
