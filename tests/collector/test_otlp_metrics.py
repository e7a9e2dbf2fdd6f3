"""OTLP/HTTP metrics against the running collector, on SQLite and PostgreSQL: JSON and
compressed protobuf bodies are stored one item a data point, under the session each point's
(or its resource's) ``session.id`` names, and read back through ``GET /v1/sessions/{id}``."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import (
    Gauge,
    Histogram,
    HistogramDataPoint,
    Metric,
    NumberDataPoint,
    ResourceMetrics,
    ScopeMetrics,
    Sum,
)

from tests.collector.harness import Running, running
from tests.collector.ingest import COMPRESS, bearer, items


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Running]:
    with running(database_url, tmp_path / "data") as served:
        yield served


def _attribute(key: str, value: str) -> KeyValue:
    return KeyValue(key=key, value=AnyValue(string_value=value))


def metrics_request(session: str, other: str) -> ExportMetricsServiceRequest:
    """Claude Code's metrics as its exporter sends them: a token counter with two points of
    ``session``, a cost gauge and a histogram of ``other`` (named on the resource), and a metric
    without data points (not stored)."""
    tokens = Metric(
        name="claude_code.token.usage",
        unit="tokens",
        sum=Sum(
            aggregation_temporality=2,
            is_monotonic=True,
            data_points=[
                NumberDataPoint(
                    as_int=value,
                    time_unix_nano=1_780_000_000_000_000_000,
                    attributes=[_attribute("session.id", session), _attribute("type", kind)],
                )
                for kind, value in (("input", 120), ("output", 45))
            ],
        ),
    )
    cost = Metric(
        name="claude_code.cost.usage",
        unit="USD",
        gauge=Gauge(data_points=[NumberDataPoint(as_double=0.0123, time_unix_nano=1)]),
    )
    durations = Metric(
        name="claude_code.tool.duration",
        unit="ms",
        histogram=Histogram(
            aggregation_temporality=2,
            data_points=[
                HistogramDataPoint(
                    count=3, sum=42.0, bucket_counts=[1, 2, 0], explicit_bounds=[10.0, 100.0]
                )
            ],
        ),
    )
    empty = Metric(name="claude_code.nothing")
    per_session = ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[tokens, empty])])
    per_resource = ResourceMetrics(scope_metrics=[ScopeMetrics(metrics=[cost, durations])])
    per_resource.resource.attributes.append(_attribute("session.id", other))
    return ExportMetricsServiceRequest(resource_metrics=[per_session, per_resource])


def post_metrics(
    service: Running, key: str, body: bytes, headers: dict[str, str]
) -> httpx.Response:
    return httpx.post(
        f"{service.url}/v1/metrics", content=body, headers={**bearer(key), **headers}, timeout=30
    )


def test_metrics_as_json_stored(service: Running) -> None:
    """OTLP/JSON metrics (as the exporters' JSON protocol sends them, camelCase and int64s as
    strings) are stored one item a data point and answered in JSON."""
    key = service.key("acme")
    body = json_format.MessageToJson(metrics_request("s-json", "s-json-res")).encode()
    assert b'"resourceMetrics"' in body and b'"asInt": "120"' in body
    response = post_metrics(service, key, body, {"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    json_format.Parse(response.content, ExportMetricsServiceResponse())
    assert items(service, key, "s-json") == {"metrics": 2}
    assert items(service, key, "s-json-res") == {"metrics": 2}
    stored = sorted(bytes(row["body"]).split(b"\n", 1)[0] for row in service.collector.db.rows())
    assert stored == [
        b"claude_code.cost.usage",
        b"claude_code.token.usage",
        b"claude_code.token.usage",
        b"claude_code.tool.duration",
    ]


@pytest.mark.parametrize("encoding", sorted(COMPRESS))
def test_metrics_as_compressed_protobuf_stored(service: Running, encoding: str) -> None:
    """Protobuf metrics compressed (gzip, as the OpenTelemetry exporters do with compression
    set; deflate and br too) are stored as uncompressed ones are, and answered in protobuf."""
    key = service.key("acme")
    request = metrics_request("s-pb", "s-pb-res")
    body = COMPRESS[encoding](request.SerializeToString())
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": encoding}
    response = post_metrics(service, key, body, headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-protobuf"
    ExportMetricsServiceResponse().ParseFromString(response.content)
    assert items(service, key, "s-pb") == {"metrics": 2}
    assert items(service, key, "s-pb-res") == {"metrics": 2}
    first = request.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
    expected = b"claude_code.token.usage\n" + first.SerializeToString()
    assert expected in [bytes(row["body"]) for row in service.collector.db.rows()]


def test_metrics_as_gzip_json_stored(service: Running) -> None:
    """JSON and gzip together: the encoding is undone before the content type is parsed."""
    key = service.key("acme")
    body = gzip.compress(json_format.MessageToJson(metrics_request("s-gj", "s-gj-r")).encode())
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    assert post_metrics(service, key, body, headers).status_code == 200
    assert items(service, key, "s-gj") == {"metrics": 2}


@pytest.mark.parametrize(
    ("content_type", "body", "says"),
    [
        ("application/json", b'{"resourceMetrics": [{"scopeMetrics": 3}]}', "in JSON"),
        ("application/json", b"{not json", "in JSON"),
        ("application/x-protobuf", b"\x0a\xff\xff\xff\xff", "in protobuf"),
    ],
    ids=["wrong_shape", "bad_json", "bad_protobuf"],
)
def test_malformed_metrics_refused(
    service: Running, content_type: str, body: bytes, says: str
) -> None:
    """A metrics body that does not parse (gzip-compressed here) is a 400 naming the message
    and the format; nothing is stored."""
    key = service.key("acme")
    headers = {"Content-Type": content_type, "Content-Encoding": "gzip"}
    response = post_metrics(service, key, gzip.compress(body), headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(
        f"body: not an OTLP ExportMetricsServiceRequest {says}"
    )
    assert service.collector.db.rows() == []
