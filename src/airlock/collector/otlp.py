"""OTLP/HTTP ingest: ``POST /v1/logs`` and ``POST /v1/metrics``, protobuf or JSON, gzip or not.

Each log record and each metric data point becomes one stored item of its organisation, under
the session its ``session.id`` attribute names (on the record or data point, else on its
resource), with the class and expiry the policy gives logs and metrics of that organisation.
A request is parsed whole before anything is stored, and all its items are stored in one
transaction: a malformed body is a ``400`` saying what is wrong, and nothing of it is kept.
Under zero data retention the request is parsed, answered as the OTLP success, and dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from airlock.collector.app import ServiceRoute
from airlock.collector.db import Filing
from airlock.collector.service import BadRequest, Collector, authorize, read_body
from airlock.policy.collection import ItemKind, storing

LOGS_PATH = "/v1/logs"
METRICS_PATH = "/v1/metrics"
MAX_OTLP_BYTES = 16 * 1024 * 1024
SESSION_ATTRIBUTE = "session.id"
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_POINT_FIELDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")


def _session(attributes: Iterable[Any]) -> str | None:
    for attribute in attributes:
        if attribute.key == SESSION_ATTRIBUTE:
            # "" when the value is not a string (another field of the value's oneof is set)
            return str(attribute.value.string_value[:200]) or None
    return None


def parse(data: bytes, content_type: str, message: Message, what: str) -> None:
    """Fill ``message`` from ``data`` in the content type's encoding.

    Raises:
        BadRequest: 415 for another content type, 400 for a body that does not parse.
    """
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == _PROTOBUF:
        try:
            message.ParseFromString(data)
        except DecodeError as problem:
            raise BadRequest(400, f"body: not an OTLP {what} in protobuf ({problem})") from None
    elif kind == _JSON:
        try:
            json_format.Parse(data, message, ignore_unknown_fields=True)
        except (json_format.ParseError, UnicodeDecodeError, ValueError) as problem:
            raise BadRequest(400, f"body: not an OTLP {what} in JSON ({problem})") from None
    else:
        raise BadRequest(415, f"Content-Type: {content_type!r}: expected {_PROTOBUF} or {_JSON}")


def log_records(request: ExportLogsServiceRequest) -> list[tuple[str | None, bytes]]:
    """Each log record's session and bytes."""
    found: list[tuple[str | None, bytes]] = []
    for resource_logs in request.resource_logs:
        default = _session(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            found += [
                (_session(record.attributes) or default, record.SerializeToString())
                for record in scope_logs.log_records
            ]
    return found


def metric_points(request: ExportMetricsServiceRequest) -> list[tuple[str | None, bytes]]:
    """Each data point's session and bytes (the metric's name, a line break, the point)."""
    found: list[tuple[str | None, bytes]] = []
    for resource_metrics in request.resource_metrics:
        default = _session(resource_metrics.resource.attributes)
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                field = metric.WhichOneof("data")
                if field not in _POINT_FIELDS:
                    continue
                name = metric.name.encode("utf-8", "replace") + b"\n"
                for point in getattr(metric, field).data_points:
                    found.append(
                        (_session(point.attributes) or default, name + point.SerializeToString())
                    )
    return found


def _answer(content_type: str, reply: Message) -> Response:
    if content_type.split(";", 1)[0].strip().lower() == _JSON:
        return Response(json_format.MessageToJson(reply), media_type=_JSON)
    return Response(reply.SerializeToString(), media_type=_PROTOBUF)


def otlp_routes(collector: Collector) -> Sequence[ServiceRoute]:
    """``POST /v1/logs`` and ``POST /v1/metrics``."""

    async def ingest(request: Request, kind: ItemKind) -> Response:
        try:
            org = await authorize(request, collector)
            content_type = request.headers.get("content-type", "")
            data = await read_body(request)
            if kind is ItemKind.LOGS:
                logs = ExportLogsServiceRequest()
                parse(data, content_type, logs, "ExportLogsServiceRequest")
                records = log_records(logs)
                reply: Message = ExportLogsServiceResponse()
            else:
                metrics = ExportMetricsServiceRequest()
                parse(data, content_type, metrics, "ExportMetricsServiceRequest")
                records = metric_points(metrics)
                reply = ExportMetricsServiceResponse()
        except BadRequest as refused:
            return refused.response()
        verdict = storing(kind, org.terms)
        if verdict.persisted and records:
            now = collector.clock()
            expires = None if verdict.days is None else now + verdict.days * 86400.0
            filing = Filing(str(kind), str(verdict.retention_class), now, expires)
            await collector.inserts.insert_records(org, filing, records)
        return _answer(content_type, reply)

    async def logs(request: Request) -> Response:
        return await ingest(request, ItemKind.LOGS)

    async def metrics(request: Request) -> Response:
        return await ingest(request, ItemKind.METRICS)

    def doc(what: str) -> dict[str, Any]:
        return {
            "post": {
                "summary": f"OTLP/HTTP {what} export (protobuf or JSON, gzip accepted)",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        _PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                        _JSON: {"schema": {"type": "object"}},
                    },
                },
                "responses": {
                    "200": {
                        "description": "accepted (stored, or dropped under zero data retention)"
                    },
                    "400": {"description": "a malformed body, named"},
                    "401": {"description": "no key, or an unknown one"},
                    "413": {"description": "too large"},
                    "415": {"description": "another content type or encoding"},
                },
            }
        }

    return (
        ServiceRoute(
            Route(LOGS_PATH, logs, methods=["POST"]), doc("logs"), max_body=MAX_OTLP_BYTES
        ),
        ServiceRoute(
            Route(METRICS_PATH, metrics, methods=["POST"]), doc("metrics"), max_body=MAX_OTLP_BYTES
        ),
    )
