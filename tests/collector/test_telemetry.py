"""The library's telemetry clients against the real collector on loopback: gated, scrubbed, kept."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.policy import decide
from airlock.settings import load
from airlock.telemetry import Scrubber, Spool, error_reporter, metrics_client
from tests.collector.harness import Running, running

TOKEN = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Running]:
    with running(f"sqlite:///{tmp_path / 'db.sqlite3'}", tmp_path / "data") as served:
        yield served


def _decisions(project: Path, home: Path, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    loaded = load(project, {**os.environ, "HOME": str(home), **(env or {})})
    return decide(loaded.context)


def test_metrics_reach_the_collector_scrubbed(
    service: Running, project: Path, home: Path, tmp_path: Path
) -> None:
    """With metrics on, a counter goes to /v1/metrics; paths and secrets in attributes never leave."""
    key = service.key("acme")
    client = metrics_client(
        _decisions(project, home),
        endpoint=service.url,
        headers={"Authorization": f"Bearer {key}"},
        spool=Spool(tmp_path / "spool"),
    )
    assert client is not None
    client.add(
        "airlock.files", 3, {"session.id": "s-m", "file": f"/home/dev/secret/app.py {TOKEN}"}
    )
    assert client.flush() is True
    client.close()
    (row,) = service.collector.db.rows()
    assert row["session_id"] == "s-m" and row["kind"] == "metrics"
    body = bytes(row["body"])
    assert b"/home/dev" not in body and TOKEN.encode() not in body and b"[PATH]" in body


def test_errors_reach_the_collector_without_code_or_paths(
    service: Running, project: Path, home: Path, tmp_path: Path
) -> None:
    """With error reporting on, an exception goes through sentry-sdk, without source, variables, paths or secrets."""
    key = service.key("acme")
    port = service.url.rsplit(":", 1)[1]
    reporter = error_reporter(
        _decisions(project, home),
        dsn=f"http://{key}@127.0.0.1:{port}/1",
        spool=Spool(tmp_path / "s"),
    )
    assert reporter is not None
    secret_local = f"token={TOKEN}"  # a local variable that must not be sent
    try:
        raise RuntimeError(f"could not open /Users/dev/project/main.py with {TOKEN}")
    except RuntimeError as problem:
        reporter.capture(problem, {"session.id": "s-e"})
    reporter.close()
    (row,) = service.collector.db.rows()
    event = json.loads(bytes(row["body"]))
    text = json.dumps(event)
    assert row["session_id"] == "s-e" and secret_local not in text
    assert TOKEN not in text and "/Users/dev" not in text and "context_line" not in text
    assert "RuntimeError" in text


@pytest.mark.parametrize(
    ("env", "metrics_on", "errors_on"),
    [
        ({"DISABLE_TELEMETRY": "1"}, False, True),
        ({"DISABLE_ERROR_REPORTING": "1"}, True, False),
        ({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, False, False),
        ({"CLAUDE_CODE_USE_BEDROCK": "1"}, False, False),
        ({"DO_NOT_TRACK": "1"}, False, True),
    ],
)
def test_flow_off_not_one_byte_sent(
    project: Path,
    home: Path,
    tmp_path: Path,
    env: dict[str, str],
    metrics_on: bool,
    errors_on: bool,
) -> None:
    """With a flow off its client is not created, and nothing reaches its listening socket,
    each flow its own, while the client of the flow that is on (if any) sends and closes."""
    with _Watched() as metrics_port, _Watched() as errors_port:
        decisions = _decisions(project, home, env)
        metrics = metrics_client(
            decisions,
            endpoint=f"http://127.0.0.1:{metrics_port.port}",
            headers={},
            spool=Spool(tmp_path / "m"),
        )
        errors = error_reporter(
            decisions,
            dsn=f"http://k@127.0.0.1:{errors_port.port}/1",
            spool=Spool(tmp_path / "e"),
        )
        assert (metrics is not None, errors is not None) == (metrics_on, errors_on)
        if metrics is not None:
            metrics.add("airlock.files", 1, {"session.id": "s"})
            metrics.flush()
            metrics.close()
        if errors is not None:
            try:
                raise RuntimeError("boom")
            except RuntimeError as problem:
                errors.capture(problem, {"session.id": "s"})
            errors.close()
    for on, port in ((metrics_on, metrics_port), (errors_on, errors_port)):
        if on:
            assert port.received, "the flow that is on sent nothing: the check would mean nothing"
        else:
            assert port.received == [], port.received


class _Watched:
    """A loopback socket that records every connection made to it and the bytes each sent."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Watched:
        self.thread.start()
        return self

    def _watch(self) -> None:
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            with connection:
                connection.settimeout(2)
                try:
                    self.received.append(connection.recv(65536))
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    self.received.append(b"")

    def __exit__(self, *_exc: object) -> None:
        self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        self.thread.join(5)


def test_failed_sends_kept_and_retried(
    service: Running, project: Path, home: Path, tmp_path: Path
) -> None:
    """A send to a collector that is down is kept on disk; the next flush to a live one delivers it."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]  # nothing listens here once closed
    spool = Spool(tmp_path / "spool")
    key = service.key("acme")
    headers = {"Authorization": f"Bearer {key}"}
    down = metrics_client(
        _decisions(project, home), endpoint=f"http://127.0.0.1:{dead}", headers=headers, spool=spool
    )
    assert down is not None
    down.add("airlock.kept", 1, {"session.id": "s-kept"})
    assert down.flush() is False and len(spool.files()) == 1
    down.close()
    assert service.collector.db.rows() == []
    up = metrics_client(
        _decisions(project, home), endpoint=service.url, headers=headers, spool=spool
    )
    assert up is not None
    up.add("airlock.new", 1, {"session.id": "s-new"})
    assert up.flush() is True and spool.files() == []
    up.close()
    assert sorted(str(row["session_id"]) for row in service.collector.db.rows()) == [
        "s-kept",
        "s-new",
    ]


def test_spool_bounded_oldest_dropped(tmp_path: Path) -> None:
    """The spool never holds more than its bound; the oldest payloads go first, files are 0600."""
    spool = Spool(tmp_path / "spool", max_bytes=4096)
    for n in range(50):
        spool.keep("metrics", bytes([n]) * 300)
    assert spool.size() <= 4096
    kept = [path.read_bytes()[0] for path in spool.files()]
    assert kept == list(range(50 - len(kept), 50))
    assert all(path.stat().st_mode & 0o777 == 0o600 for path in spool.files())
    assert (tmp_path / "spool").stat().st_mode & 0o777 == 0o700


def test_scrubber_table() -> None:
    """Paths of every form and secrets are replaced; plain words stay."""
    scrubber = Scrubber()
    for text, gone in [
        ("/home/alice/src/app.py failed", "/home/alice"),
        ("see ~/work/notes.txt", "~/work"),
        (r"C:\Users\bob\main.py", "Users"),
        (f"key {TOKEN}", TOKEN),
    ]:
        assert gone not in scrubber.text(text)
    assert scrubber.text("plain words, 3 files") == "plain words, 3 files"
