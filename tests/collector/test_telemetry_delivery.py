"""Metrics delivered exactly once: the client's delta exports, kept in the spool with their
``Idempotency-Key`` when a send fails, and the collector storing each key once per organisation.

Everything runs for real on loopback: the collector (SQLite and PostgreSQL), and, between the
client and it, a small HTTP server of the test's (:class:`Gate`) that answers as each test
needs: ``503`` without passing the request on, ``503`` after passing it on (the collector
stored it, the answer was lost on the way back), or closing the connection unanswered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceResponse,
)
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    NumberDataPoint,
)

from airlock.collector.otlp import MAX_IDEMPOTENCY_KEY
from airlock.telemetry import MetricsClient, Scrubber, Spool
from tests.collector.harness import Running, running
from tests.collector.ingest import logs_body, metrics_request

PASSED = ("Authorization", "Content-Type", "Idempotency-Key")
"""The headers :class:`Gate` passes on to the collector."""


class Gate:
    """An HTTP server on loopback in front of the collector; request N is handled as
    ``plan[N]`` says (``pass`` once the plan is used up):

    * ``pass``: passed on to the collector, its answer relayed;
    * ``refuse``: answered ``503``, not passed on (the collector busy);
    * ``lose``: passed on (and stored), then answered ``503`` (the answer lost on the way);
    * ``drop``: the connection closed without an answer (the collector unreachable);
    * ``bad``: answered ``400``, not passed on (the payload itself refused).

    ``seen`` has each request's mode and ``Idempotency-Key`` (``None``: none sent).
    """

    def __init__(self, upstream: str, plan: Sequence[str]) -> None:
        self.upstream = upstream
        self.plan = list(plan)
        self.seen: list[tuple[str, str | None]] = []
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with gate._lock:
                    mode = gate.plan.pop(0) if gate.plan else "pass"
                    gate.seen.append((mode, self.headers.get("Idempotency-Key")))
                if mode == "drop":
                    self.close_connection = True
                    return
                status, answer = (400, b"malformed") if mode == "bad" else (503, b"busy")
                if mode in ("pass", "lose"):
                    headers = {name: self.headers[name] for name in PASSED if name in self.headers}
                    response = httpx.post(
                        gate.upstream + self.path, content=body, headers=headers, timeout=30
                    )
                    if mode == "pass":
                        status, answer = response.status_code, response.content
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(10)


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Running]:
    with running(database_url, tmp_path / "data") as served:
        yield served


def _client(gate: Gate, key: str, spool: Spool) -> MetricsClient:
    return MetricsClient(
        gate.url, headers={"Authorization": f"Bearer {key}"}, scrubber=Scrubber(), spool=spool
    )


def _points(service: Running) -> list[tuple[str | None, str, int]]:
    """Each stored data point's session, metric name and value."""
    found = []
    for row in service.collector.db.rows():
        assert row["kind"] == "metrics"
        name, _, point = bytes(row["body"]).partition(b"\n")
        found.append((row["session_id"], name.decode(), NumberDataPoint.FromString(point).as_int))
    return found


@pytest.mark.parametrize("failure", ["refuse", "drop"])
def test_failed_send_then_delivered_each_increment_once(
    service: Running, tmp_path: Path, failure: str
) -> None:
    """A flush the collector never got is kept with its key and sent again with it; each
    flush carries only what is new (delta), so the stored points add up to what was added."""
    gate = Gate(service.url, [failure] * 3)
    spool = Spool(tmp_path / "spool")
    client = _client(gate, service.key("acme"), spool)
    try:
        client.add("airlock.files", 3, {"session.id": "s-a"})
        client.add("airlock.files", 10, {"session.id": "s-b"})
        assert client.flush() is False and len(spool.files()) == 1
        client.add("airlock.files", 4, {"session.id": "s-a"})
        assert client.flush() is False and len(spool.files()) == 2  # the retry failed too
        assert service.collector.db.rows() == []
        client.add("airlock.files", 5, {"session.id": "s-a"})
        assert client.flush() is True and spool.files() == []
        client.add("airlock.files", 6, {"session.id": "s-a"})
        assert client.flush() is True
        assert client.flush() is True  # nothing new: nothing sent
    finally:
        client.close()
        gate.close()
    points = _points(service)
    totals = {session: sum(v for s, _, v in points if s == session) for session in ("s-a", "s-b")}
    assert totals == {"s-a": 18, "s-b": 10}
    assert sorted(v for s, _, v in points if s == "s-a") == [3, 4, 5, 6]
    modes = [mode for mode, _ in gate.seen]
    keys = [key for _, key in gate.seen]
    # flush 1: k1 fails; flush 2: k1 again fails, k2 fails; flush 3: k1, k2, k3; flush 4: k4
    assert modes == [failure] * 3 + ["pass"] * 4 and None not in keys
    assert keys[0] == keys[1] == keys[3] and keys[2] == keys[4] and len(set(keys)) == 4


def test_answer_lost_resent_payload_stored_once(service: Running, tmp_path: Path) -> None:
    """A payload the collector stored but whose answer was lost is kept and sent again with the
    same key; the collector answers success and stores nothing twice."""
    gate = Gate(service.url, ["lose"])
    spool = Spool(tmp_path / "spool")
    client = _client(gate, service.key("acme"), spool)
    try:
        client.add("airlock.tokens", 3, {"session.id": "s-l"})
        assert client.flush() is False and len(spool.files()) == 1
        (first_key,) = {key for _, key in gate.seen}
        assert first_key is not None and first_key in spool.files()[0].name
        assert [value for _, _, value in _points(service)] == [3]  # it did arrive
        client.add("airlock.tokens", 2, {"session.id": "s-l"})
        assert client.flush() is True and spool.files() == []
    finally:
        client.close()
        gate.close()
    assert sorted(value for _, _, value in _points(service)) == [2, 3]
    assert [key for _, key in gate.seen][:2] == [first_key, first_key]


def _logs(count: int, session: str = "s-k") -> bytes:
    return logs_body(session, count)


def _metrics(value: int) -> bytes:
    return metrics_request(None, value).SerializeToString()


def _post(
    url: str, key: str, body: bytes, idem: str | None, path: str = "/v1/logs"
) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return httpx.post(f"{url}{path}", content=body, headers=headers, timeout=30)


def test_same_key_stored_once_per_org_and_signal(service: Running) -> None:
    """A request sent again with its Idempotency-Key is answered as the OTLP success and stores
    nothing; the key is another organisation's or signal's own; without a key, each is stored."""
    acme = service.key("acme")
    body = _logs(3)
    first = _post(service.url, acme, body, "k-1")
    assert first.status_code == 200, first.text
    again = _post(service.url, acme, body, "k-1")
    assert again.status_code == 200, again.text
    ExportLogsServiceResponse.FromString(again.content)  # the OTLP answer, not an error
    assert _post(service.url, acme, _logs(5), "k-1").status_code == 200  # more records, same key
    rows = service.collector.db.rows()
    assert sorted(row["idempotency_key"] for row in rows) == ["k-1#0", "k-1#1", "k-1#2"]
    assert _post(service.url, service.key("globex"), body, "k-1").status_code == 200
    assert _post(service.url, acme, body, "k-2").status_code == 200
    assert _post(service.url, acme, _metrics(7), "k-1", "/v1/metrics").status_code == 200
    assert _post(service.url, acme, _metrics(7), "k-1", "/v1/metrics").status_code == 200
    assert _post(service.url, acme, b"", "k-3", "/v1/metrics").status_code == 200  # no records
    for _ in range(2):
        assert _post(service.url, acme, body, None).status_code == 200
    kinds = [row["kind"] for row in service.collector.db.rows()]
    assert kinds.count("logs") == 3 * 5 and kinds.count("metrics") == 1


def test_concurrent_resends_stored_once(database_url: str, tmp_path: Path) -> None:
    """Copies of one request sent at once, to two collectors sharing the database, are all
    answered as successes and stored once: the unique constraint decides, not a check."""
    with (
        running(database_url, tmp_path / "one") as one,
        running(database_url, tmp_path / "two") as two,
    ):
        key = one.key("acme")
        body = _logs(4)
        copies = 8

        def send(barrier: threading.Barrier, url: str, idem: str, answers: list[int]) -> None:
            barrier.wait()
            answers.append(_post(url, key, body, idem).status_code)

        for round_ in range(5):
            barrier = threading.Barrier(copies)
            answers: list[int] = []
            threads = [
                threading.Thread(
                    target=send, args=(barrier, (one, two)[n % 2].url, f"k-{round_}", answers)
                )
                for n in range(copies)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(60)
            assert answers == [200] * copies
        rows = one.collector.db.rows()
        assert len(rows) == 5 * 4
        assert {row["idempotency_key"] for row in rows} == {
            f"k-{r}#{n}" for r in range(5) for n in range(4)
        }


@pytest.mark.parametrize(
    "header",
    [
        [("Idempotency-Key", "x" * (MAX_IDEMPOTENCY_KEY + 1))],
        [("Idempotency-Key", "a\tb")],
        [("Idempotency-Key", "")],
        [("Idempotency-Key", "a"), ("Idempotency-Key", "b")],
    ],
    ids=["too_long", "not_printable", "empty", "twice"],
)
@pytest.mark.parametrize("path", ["/v1/logs", "/v1/metrics"])
def test_bad_idempotency_key_refused(
    tmp_path: Path, path: str, header: list[tuple[str, str]]
) -> None:
    """A malformed Idempotency-Key is a 400 naming the header; nothing is stored."""
    with running(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path / "data") as service:
        key = service.key("acme")
        headers = [
            ("Authorization", f"Bearer {key}"),
            ("Content-Type", "application/x-protobuf"),
            *header,
        ]
        response = httpx.post(f"{service.url}{path}", content=_logs(1), headers=headers)
        assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]
        longest = "y" * MAX_IDEMPOTENCY_KEY
        assert _post(service.url, key, _logs(1), longest).status_code == 200
        assert [row["idempotency_key"] for row in service.collector.db.rows()] == [f"{longest}#0"]


def test_a_payload_refused_for_good_is_dropped_and_holds_nothing_up(
    service: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A payload the collector refuses as such (400) would be refused again: it is dropped,
    with a warning naming the answer, and the payloads behind it in the spool still go."""
    gate = Gate(service.url, ["refuse", "bad"])
    spool = Spool(tmp_path / "spool")
    client = _client(gate, service.key("acme"), spool)
    try:
        client.add("airlock.files", 3, {"session.id": "s"})
        assert client.flush() is False and len(spool.files()) == 1  # 503: kept
        client.add("airlock.files", 4, {"session.id": "s"})
        with caplog.at_level("WARNING", logger="airlock.telemetry.clients"):
            assert client.flush() is True  # the kept one refused for good, the new one sent
        assert spool.files() == []
        assert [mode for mode, _ in gate.seen] == ["refuse", "bad", "pass"]
        assert "HTTP 400" in caplog.text and "dropped" in caplog.text
        assert _points(service) == [("s", "airlock.files", 4)]
    finally:
        client.close()
        gate.close()


def test_close_sends_what_was_recorded_since_the_last_flush(
    service: Running, tmp_path: Path
) -> None:
    """Nothing recorded is lost at close: what came after the last flush is sent then."""
    gate = Gate(service.url, [])
    client = _client(gate, service.key("acme"), Spool(tmp_path / "spool"))
    try:
        client.add("airlock.files", 2, {"session.id": "s"})
        assert client.flush() is True
        client.add("airlock.files", 7, {"session.id": "s"})
        client.close()
        assert sorted(_points(service)) == [("s", "airlock.files", 2), ("s", "airlock.files", 7)]
    finally:
        gate.close()
