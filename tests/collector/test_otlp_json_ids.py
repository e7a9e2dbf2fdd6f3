"""OTLP/JSON's ``traceId`` and ``spanId`` are hex (the OTLP spec: "hex-encoded, not base64"):
the running collector stores them as the 16 and 8 bytes they name, in log records and in metric
exemplars, and refuses, naming the field, one that is not 32 or 16 hex characters."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.metrics.v1.metrics_pb2 import NumberDataPoint

from tests.collector.harness import Running, running

TRACE = "5b8efff798038103d269b633813fc60c"
SPAN = "eee19b7ec3c1b174"
OTHER_TRACE = "0AF7651916CD43DD8448EB211C80319C"  # upper case is hex too
OTHER_SPAN = "B7AD6B7169203331"


@pytest.fixture
def service(database_url: str, tmp_path: Path) -> Iterator[Running]:
    with running(database_url, tmp_path / "data") as served:
        yield served


def _session() -> list[dict[str, Any]]:
    return [{"key": "session.id", "value": {"stringValue": "s-json"}}]


def logs(*records: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": _session()},
                "scopeLogs": [{"logRecords": list(records)}],
            }
        ]
    }


def metrics(*exemplars: dict[str, Any]) -> dict[str, Any]:
    point = {"asInt": "3", "timeUnixNano": "1", "exemplars": list(exemplars)}
    metric = {
        "name": "airlock.files",
        "sum": {"aggregationTemporality": 1, "isMonotonic": True, "dataPoints": [point]},
    }
    return {
        "resourceMetrics": [
            {"resource": {"attributes": _session()}, "scopeMetrics": [{"metrics": [metric]}]}
        ]
    }


def post(service: Running, key: str, path: str, document: dict[str, Any]) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    return httpx.post(
        f"{service.url}{path}", content=json.dumps(document), headers=headers, timeout=30
    )


def test_log_record_ids_stored_as_their_bytes(service: Running) -> None:
    """Hex ids (camelCase or proto field names, any case) are stored as 16 and 8 bytes; empty
    ids are no ids."""
    key = service.key("acme")
    document = logs(
        {"timeUnixNano": "1", "body": {"stringValue": "a"}, "traceId": TRACE, "spanId": SPAN},
        {"timeUnixNano": "2", "trace_id": OTHER_TRACE, "span_id": OTHER_SPAN},
        {"timeUnixNano": "3", "traceId": "", "spanId": ""},
    )
    response = post(service, key, "/v1/logs", document)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    stored = [LogRecord.FromString(bytes(row["body"])) for row in service.collector.db.rows()]
    stored.sort(key=lambda record: record.time_unix_nano)
    assert [(record.trace_id, record.span_id) for record in stored] == [
        (bytes.fromhex(TRACE), bytes.fromhex(SPAN)),
        (bytes.fromhex(OTHER_TRACE), bytes.fromhex(OTHER_SPAN)),
        (b"", b""),
    ]
    assert len(stored[0].trace_id) == 16 and len(stored[0].span_id) == 8


def test_exemplar_ids_stored_as_their_bytes(service: Running) -> None:
    """A metric data point's exemplar keeps its trace and span as 16 and 8 bytes."""
    key = service.key("acme")
    exemplar = {"asInt": "3", "timeUnixNano": "1", "traceId": TRACE, "spanId": SPAN}
    response = post(service, key, "/v1/metrics", metrics(exemplar))
    assert response.status_code == 200, response.text
    (row,) = service.collector.db.rows()
    name, _, body = bytes(row["body"]).partition(b"\n")
    (stored,) = NumberDataPoint.FromString(body).exemplars
    assert name == b"airlock.files" and row["session_id"] == "s-json"
    assert stored.trace_id == bytes.fromhex(TRACE) and stored.span_id == bytes.fromhex(SPAN)


LOG_AT = "resourceLogs[0].scopeLogs[0].logRecords[0]"
EXEMPLAR_AT = "resourceMetrics[0].scopeMetrics[0].metrics[0].sum.dataPoints[0].exemplars[0]"


@pytest.mark.parametrize(
    ("path", "fields", "says"),
    [
        ("/v1/logs", {"traceId": "W47/95gDgQPSabYzgT/GDA=="}, f"{LOG_AT}.traceId"),  # base64
        ("/v1/logs", {"traceId": TRACE[:-1]}, f"{LOG_AT}.traceId"),
        ("/v1/logs", {"traceId": TRACE + "00"}, f"{LOG_AT}.traceId"),
        ("/v1/logs", {"spanId": "zz" + SPAN[2:]}, f"{LOG_AT}.spanId"),
        ("/v1/logs", {"span_id": TRACE}, f"{LOG_AT}.span_id"),
        ("/v1/logs", {"traceId": 12}, f"{LOG_AT}.traceId"),
        ("/v1/metrics", {"traceId": TRACE, "spanId": SPAN[:-2]}, f"{EXEMPLAR_AT}.spanId"),
        ("/v1/metrics", {"traceId": "not hex"}, f"{EXEMPLAR_AT}.traceId"),
    ],
    ids=[
        "base64",
        "short",
        "long",
        "not_hex",
        "span_of_trace_length",
        "number",
        "exemplar_span",
        "exemplar_trace",
    ],
)
def test_bad_ids_refused_naming_the_field(
    service: Running, path: str, fields: dict[str, Any], says: str
) -> None:
    """An id that is not 32 (trace) or 16 (span) hex characters is a 400 naming where it is;
    nothing of the request is stored."""
    key = service.key("acme")
    if path == "/v1/logs":
        document = logs({"timeUnixNano": "1"}, {"timeUnixNano": "2", **fields})
        says = says.replace("logRecords[0]", "logRecords[1]")
    else:
        document = metrics({"asInt": "3", "timeUnixNano": "1", **fields})
    response = post(service, key, path, document)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert says in error and "hex" in error
    assert service.collector.db.rows() == []


def test_json_that_is_not_an_object_refused(service: Running) -> None:
    """A JSON body that is not an object is a 400, as a malformed one is."""
    key = service.key("acme")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for body in (b"[1, 2]", b'"text"', b"\xff\xfe"):
        response = httpx.post(f"{service.url}/v1/logs", content=body, headers=headers)
        assert response.status_code == 400 and "JSON" in response.json()["error"]
    assert service.collector.db.rows() == []


def test_member_given_twice_refused(service: Running) -> None:
    """An object naming a member twice is refused, as json_format itself refuses it."""
    key = service.key("acme")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    body = b'{"resourceLogs": [], "resourceLogs": []}'
    response = httpx.post(f"{service.url}/v1/logs", content=body, headers=headers)
    assert response.status_code == 400 and "twice" in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/v1/logs", "resource_logs[0].scope_logs[0].log_records[1].trace_id: expected 16 bytes"),
        ("/v1/metrics", "an exemplar.span_id: expected 8 bytes"),
    ],
)
def test_protobuf_ids_of_another_length_refused(service: Running, path: str, says: str) -> None:
    """In protobuf the ids are bytes: a trace id that is not 16 bytes, or a span id not 8, is
    a 400 naming it, and nothing of the request is stored."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
        ExportMetricsServiceRequest,
    )

    key = service.key("acme")
    message: Any
    if path == "/v1/logs":
        message = json_format.ParseDict(
            logs({"timeUnixNano": "1"}, {"timeUnixNano": "2"}), ExportLogsServiceRequest()
        )
        message.resource_logs[0].scope_logs[0].log_records[1].trace_id = b"short"
    else:
        message = json_format.ParseDict(metrics({"asInt": "3"}), ExportMetricsServiceRequest())
        point = message.resource_metrics[0].scope_metrics[0].metrics[0].sum.data_points[0]
        point.exemplars[0].span_id = b"abc"
    response = httpx.post(
        f"{service.url}{path}",
        content=message.SerializeToString(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"},
        timeout=30,
    )
    assert response.status_code == 400, response.text
    assert says in response.json()["error"]
    assert service.collector.db.rows() == []
