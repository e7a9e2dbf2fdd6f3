"""Compressed bodies against the running collector: gzip, deflate and br are decoded as they
stream in, each bounded once decompressed; a corrupt or cut-short stream is a 400 naming it,
a bomb a 413, another encoding a 415, and in every refusal nothing is stored. sentry-sdk,
which sends br whenever the brotli package is installed, is stored unchanged."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from airlock.collector.service import MAX_DECODED_BYTES
from tests.collector.harness import Running, running
from tests.collector.ingest import COMPRESS, bearer, items, logs_body, send_with_sentry_sdk
from tests.serving import Handler, in_thread

ENCODINGS = sorted(COMPRESS)
NAMES = {"gzip": "gzip", "deflate": "deflate", "br": "brotli"}
"""How the collector's messages name each encoding's format."""


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Running]:
    with running(database_url, tmp_path / "data") as served:
        yield served


def post_logs(service: Running, key: str, body: bytes, encoding: str | None) -> httpx.Response:
    headers = {**bearer(key), "Content-Type": "application/x-protobuf"}
    if encoding is not None:
        headers["Content-Encoding"] = encoding
    return httpx.post(f"{service.url}/v1/logs", content=body, headers=headers, timeout=60)


@functools.cache
def bomb(encoding: str) -> bytes:
    """A body of zeros a megabyte past the decompressed limit, compressed (a few kilobytes)."""
    return COMPRESS[encoding](bytes(MAX_DECODED_BYTES + 1024 * 1024))


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_compressed_body_stored(service: Running, encoding: str) -> None:
    """A body in each accepted encoding (and in upper case, as some clients spell it) is stored."""
    key = service.key("acme")
    body = COMPRESS[encoding](logs_body("s-enc", 3))
    response = post_logs(service, key, body, encoding.upper())
    assert response.status_code == 200, response.text
    assert items(service, key, "s-enc") == {"logs": 3}


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize(
    ("damage", "says"),
    [
        ("garbage", "body: not valid {encoding}"),
        ("cut_short", "body: the {encoding} stream is cut short"),
        ("empty", "body: the {encoding} stream is cut short"),
        ("trailing", "body: data after the end of the {encoding} stream"),
    ],
)
def test_corrupt_stream_refused(service: Running, encoding: str, damage: str, says: str) -> None:
    """A corrupt, cut-short or empty stream, or bytes after its end, is a 400 naming the
    encoding and the problem; nothing is stored."""
    key = service.key("acme")
    good = COMPRESS[encoding](logs_body("s-bad", 50))
    body = {
        "garbage": b"\xff\x00 this is not compressed at all \x00\xff" * 4,
        "cut_short": good[: len(good) // 2],
        "empty": b"",
        "trailing": good + b"more",
    }[damage]
    if damage == "trailing" and encoding == "br":  # brotli cannot tell it from corrupt data
        says = "body: not valid {encoding} (decoder failed: corrupt, or data after its end)"
    response = post_logs(service, key, body, encoding)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(says.format(encoding=NAMES[encoding]))
    assert service.collector.db.rows() == []


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("text", ["repeated", "varied"])
def test_large_compressed_body_stored_whole(service: Running, encoding: str, text: str) -> None:
    """Bodies that decode to megabytes, sent in the chunks a client sends, are decoded whole
    (the decoder drained of all it holds after each chunk), not taken for cut short."""
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

    key = service.key("acme")
    message = ExportLogsServiceRequest.FromString(logs_body("s-large", 4))
    for n, record in enumerate(message.resource_logs[0].scope_logs[0].log_records):
        words = " ".join(f"word{(n * 7919 + i * 104729) % 100003}" for i in range(300_000))
        record.body.string_value = "x" * 3_000_000 if text == "repeated" else words
    body = COMPRESS[encoding](message.SerializeToString())
    response = post_logs(service, key, body, encoding)
    assert response.status_code == 200, response.text
    assert items(service, key, "s-large") == {"logs": 4}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_bomb_refused(service: Running, encoding: str) -> None:
    """A few kilobytes that expand past the decompressed limit are a 413; nothing is stored."""
    key = service.key("acme")
    response = post_logs(service, key, bomb(encoding), encoding)
    assert response.status_code == 413, response.text
    assert response.json()["error"] == f"a body over {MAX_DECODED_BYTES} bytes once decompressed"
    assert service.collector.db.rows() == []


def test_bomb_on_sentry_route_refused(service: Running) -> None:
    """The envelope endpoint bounds decompressed bodies alike (sentry-sdk's br)."""
    key = service.key("acme")
    response = httpx.post(
        f"{service.url}/api/1/envelope/",
        content=bomb("br"),
        headers={**bearer(key), "Content-Encoding": "br"},
        timeout=60,
    )
    assert response.status_code == 413 and "once decompressed" in response.json()["error"]
    assert service.collector.db.rows() == []


@pytest.mark.parametrize("encoding", ["zstd", "compress", "gzip, br", "x-unknown"])
def test_other_encodings_refused(service: Running, encoding: str) -> None:
    """Another Content-Encoding is a 415 listing what is accepted; nothing is stored."""
    key = service.key("acme")
    response = post_logs(service, key, logs_body("s", 1), encoding)
    assert response.status_code == 415
    assert response.json()["error"] == (
        f"Content-Encoding: {encoding!r}: expected one of gzip, deflate, br or none"
    )
    assert service.collector.db.rows() == []


class Relay(Handler):
    """Forwards each request to the collector (``server.target``) and its answer back, keeping
    the method, path and headers of each request it saw in ``server.seen``."""

    def do_POST(self) -> None:
        body = self.read_body()
        server = self.server
        assert isinstance(server, RelayServer)
        with server.lock:
            server.seen.append((self.command, self.path, dict(self.headers.items())))
        skip = {"host", "content-length", "transfer-encoding", "connection"}
        headers = {name: value for name, value in self.headers.items() if name.lower() not in skip}
        answer = httpx.post(f"{server.target}{self.path}", content=body, headers=headers)
        kept = [(name, value) for name, value in answer.headers.items() if name == "content-type"]
        self.answer(answer.status_code, kept, answer.content)


class RelayServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, target: str) -> None:
        super().__init__(("127.0.0.1", 0), Relay)
        self.target = target
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.lock = threading.Lock()


def test_real_sentry_sdk_sends_brotli(service: Running) -> None:
    """sentry-sdk with the brotli package installed sends its envelope with Content-Encoding:
    br (seen on the way, through a relay on loopback), and the collector stores the error under
    its session tag, whole."""
    key = service.key("acme")
    with in_thread(RelayServer(service.url)) as relay:
        port = relay.server_address[1]
        send_with_sentry_sdk(f"http://{key}@127.0.0.1:{port}/1", "s-br", "broke, compressed")
        deadline = time.monotonic() + 10
        while items(service, key, "s-br") != {"error_report": 1}:
            assert time.monotonic() < deadline, f"the event never arrived: {relay.seen}"
            time.sleep(0.05)
        envelopes = [headers for _, path, headers in relay.seen if path.endswith("/envelope/")]
    assert envelopes, relay.seen
    assert {headers.get("Content-Encoding") for headers in envelopes} == {"br"}
    (row,) = service.collector.db.rows()
    assert row["kind"] == "error_report" and row["session_id"] == "s-br"
    assert b"broke, compressed" in bytes(row["body"])
