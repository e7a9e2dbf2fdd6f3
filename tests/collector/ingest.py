"""What the ingest tests share: the collector served over a real database (SQLite and
PostgreSQL, through the ``database_url`` fixture), keys in headers, and bodies compressed as
clients send them (``Content-Encoding`` gzip, deflate, br)."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli
import httpx
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

from tests.collector.harness import Running

COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,  # HTTP's deflate is a zlib stream (RFC 9110, 8.4.1.2)
    "br": lambda data: brotli.compress(data, quality=5),
}
"""Each ``Content-Encoding`` the collector decodes, and how a client compresses a body in it."""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def sentry_auth(key: str) -> dict[str, str]:
    """The header sentry-sdk sends with a DSN's public key."""
    return {"X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={key}, sentry_client=test/1"}


def items(service: Running, key: str, session: str) -> dict[str, int]:
    """What GET /v1/sessions/{session} says is stored, by kind (a 404 is nothing)."""
    response = httpx.get(f"{service.url}/v1/sessions/{session}", headers=bearer(key), timeout=30)
    if response.status_code == 404:
        return {}
    assert response.status_code == 200, response.text
    return dict(response.json()["items"])


def logs_body(session: str, count: int) -> bytes:
    """An OTLP ExportLogsServiceRequest of ``count`` records under ``session``, in protobuf."""
    records = [
        LogRecord(
            time_unix_nano=1,
            body=AnyValue(string_value=f"event {n}"),
            attributes=[KeyValue(key="session.id", value=AnyValue(string_value=session))],
        )
        for n in range(count)
    ]
    request = ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=records)])]
    )
    return request.SerializeToString()


def metrics_request(
    session: str | None, value: int = 3, name: str | None = None
) -> ExportMetricsServiceRequest:
    """An OTLP metrics export: one counter data point of ``value`` (under ``session`` when
    given), named ``name`` (default ``tokens.SESSION``, or ``airlock.files``)."""
    attributes = (
        []
        if session is None
        else [KeyValue(key="session.id", value=AnyValue(string_value=session))]
    )
    point = NumberDataPoint(as_int=value, time_unix_nano=1, attributes=attributes)
    metric = Metric(
        name=name or (f"tokens.{session}" if session else "airlock.files"),
        sum=Sum(data_points=[point], is_monotonic=True),
    )
    return ExportMetricsServiceRequest(
        resource_metrics=[ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[metric])])]
    )


def send_with_sentry_sdk(dsn: str, session: str, message: str) -> None:
    """Report one ``ValueError(message)`` tagged with ``session`` through the real sentry-sdk
    (its own transport, its own compression), flushed and closed."""
    import sentry_sdk

    sentry_sdk.init(dsn=dsn, default_integrations=False)
    try:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("session.id", session)
            try:
                raise ValueError(message)
            except ValueError as problem:
                sentry_sdk.capture_exception(problem)
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close(timeout=10)
        sentry_sdk.get_global_scope().set_client(None)


def airlock_serve_sweep(*args: str) -> str:
    """``airlock serve --sweep ARGS…`` as a user runs it; what it printed (it must succeed)."""
    from tests.cli import airlock

    done = airlock("serve", "--sweep", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout
