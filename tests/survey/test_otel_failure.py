"""``otel_only`` with the OTLP endpoint down or refusing: one message in airlock's words, no SDK noise."""

from __future__ import annotations

import logging
import socket
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from airlock.errors import AirlockError
from airlock.survey import Rating
from airlock.survey.otel import EXPORT_TIMEOUT_SECONDS, emit_rating
from tests.feedback.servers import serve
from tests.feedback.test_cli import SID, airlock
from tests.survey.settings import ask_every_session

OTEL_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
}


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_endpoint_down_reports_once_in_airlocks_words(project: Path) -> None:
    """Endpoint down: exit 2, one stderr line naming the endpoint and what to check, in bounded time."""
    ask_every_session(project)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    started = time.monotonic()
    result = airlock(
        "survey", SID, "--rating", "good", env={**OTEL_ENV, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint}
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    (line,) = lines
    assert line.startswith("airlock survey: rating not sent:")
    assert f"{endpoint}/v1/logs refused the connection" in line
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in line
    assert "Transient error" not in result.stderr and "retrying" not in result.stderr
    assert elapsed < EXPORT_TIMEOUT_SECONDS + 20


def test_error_answer_named_and_sdk_logs_held(caplog: pytest.LogCaptureFixture) -> None:
    """An HTTP 404 from the endpoint is named; no SDK record reaches logging; logging is restored."""

    class NotFound(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", "0")))
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    sdk = logging.getLogger("opentelemetry")
    handlers_before = list(sdk.handlers)
    with (
        caplog.at_level(logging.DEBUG),
        serve(NotFound) as url,
        pytest.raises(AirlockError, match=r"/v1/logs answered HTTP 404"),
    ):
        emit_rating(
            Rating.GOOD,
            url + "/v1/logs",
            now_ns=int(datetime(2026, 11, 23, tzinfo=UTC).timestamp() * 1e9),
            version="0",
            timeout=2,
        )
    assert [r for r in caplog.records if r.name.startswith("opentelemetry")] == []
    assert sdk.handlers == handlers_before and sdk.propagate
