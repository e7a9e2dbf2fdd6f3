"""OTLP/HTTP ingest: ``POST /v1/logs`` and ``POST /v1/metrics``, protobuf or JSON, compressed
(gzip, deflate, br) or not.

Each log record and each metric data point becomes one stored item of its organisation, under
the session its ``session.id`` attribute names (on the record or data point, else on its
resource), with the class and expiry the policy gives logs and metrics of that organisation.
A request is parsed whole before anything is stored, and all its items are stored in one
transaction: a malformed body is a ``400`` saying what is wrong, and nothing of it is kept.
Under zero data retention the request is parsed, answered as the OTLP success, and dropped.

A request may carry an ``Idempotency-Key`` (1 to :data:`MAX_IDEMPOTENCY_KEY` printable
characters): it is then stored at most once per organisation (and signal). Its records are
stored under ``KEY#0``, ``KEY#1``… (:func:`.db.record_key`), and the unique constraint
``items_once`` decides, in the same transaction, even between two copies sent at once: the
copy it refuses is answered as the OTLP success, and stores nothing. A client that resends a
payload whose answer it never saw (airlock's metrics client, from its spool) thus never
doubles what it counted.

OTLP/JSON writes ``traceId`` and ``spanId`` as hex, not as protobuf's JSON mapping of bytes
(base64): they are decoded as hex (:func:`hex_ids`), in log records and in metric exemplars,
and one that is not 32 (``traceId``) or 16 (``spanId``) hex characters is a ``400`` naming it.
In protobuf they are bytes: one that is not 16 or 8 bytes is a ``400`` naming it too.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
from collections.abc import Iterable, Iterator, Sequence
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
from airlock.collector.db import AlreadyStored, Filing
from airlock.collector.service import BadRequest, Collector, authorize, read_body
from airlock.policy.collection import ItemKind, storing

LOGS_PATH = "/v1/logs"
METRICS_PATH = "/v1/metrics"
MAX_OTLP_BYTES = 16 * 1024 * 1024
SESSION_ATTRIBUTE = "session.id"
_PROTOBUF = "application/x-protobuf"
_JSON = "application/json"
_POINT_FIELDS = ("gauge", "sum", "histogram", "exponential_histogram", "summary")
IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_IDEMPOTENCY_KEY = 150
"""Characters an ``Idempotency-Key`` may have (its records' keys, ``KEY#N``, fit the column's 200)."""
_ID_BYTES = {"traceId": 16, "spanId": 8}
"""The OTLP/JSON ids, and the bytes each one is (twice as many hex characters)."""
_SNAKE = {"traceId": "trace_id", "spanId": "span_id"}
_HEX = re.compile(r"[0-9A-Fa-f]*")
_JSON_POINT_FIELDS = (
    "gauge",
    "sum",
    "histogram",
    "exponentialHistogram",
    "exponential_histogram",
    "summary",
)


def _session(attributes: Iterable[Any]) -> str | None:
    for attribute in attributes:
        if attribute.key == SESSION_ATTRIBUTE:
            # "" when the value is not a string (another field of the value's oneof is set)
            return str(attribute.value.string_value[:200]) or None
    return None


def idempotency_key(request: Request) -> str | None:
    """The request's ``Idempotency-Key`` (``None``: it has none).

    Raises:
        BadRequest: 400, the header is sent more than once, empty, too long or not printable.
    """
    sent = request.headers.getlist(IDEMPOTENCY_HEADER)
    if not sent:
        return None
    key = sent[0].strip()
    if len(sent) > 1 or not (0 < len(key) <= MAX_IDEMPOTENCY_KEY and key.isprintable()):
        raise BadRequest(
            400,
            f"{IDEMPOTENCY_HEADER}: expected one header of 1 to {MAX_IDEMPOTENCY_KEY} "
            "printable characters",
        )
    return key


def _each(node: dict[str, Any], where: str, *names: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """The objects in ``node``'s list field, by any of its ``names`` (JSON and proto spelling),
    with where each one is; anything of another shape is left for the protobuf parser to refuse."""
    for name in dict.fromkeys(names):
        found = node.get(name)
        if isinstance(found, list):
            for index, item in enumerate(found):
                if isinstance(item, dict):
                    yield f"{where}{name}[{index}]", item


def _hex_ids(holder: dict[str, Any], where: str) -> None:
    """Rewrite ``holder``'s ``traceId`` and ``spanId`` from hex to base64, for json_format."""
    for field, size in _ID_BYTES.items():
        for name in (field, _SNAKE[field]):
            value = holder.get(name)
            if value is None or value == "":
                continue
            if not (isinstance(value, str) and len(value) == 2 * size and _HEX.fullmatch(value)):
                raise BadRequest(
                    400,
                    f"{where}.{name}: expected {2 * size} hex characters (OTLP/JSON ids are "
                    f"hex, not base64), got {json.dumps(value)[:80]}",
                )
            holder[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")


def hex_ids(document: dict[str, Any]) -> None:
    """Decode, in place, the hex ``traceId`` and ``spanId`` of an OTLP/JSON logs or metrics
    request: those of its log records and of its metric data points' exemplars.

    Raises:
        BadRequest: 400 naming an id that is not 32 (trace) or 16 (span) hex characters.
    """
    for where, resource in _each(document, "", "resourceLogs", "resource_logs"):
        for where_scope, scope in _each(resource, f"{where}.", "scopeLogs", "scope_logs"):
            for where_record, record in _each(
                scope, f"{where_scope}.", "logRecords", "log_records"
            ):
                _hex_ids(record, where_record)
    for where, resource in _each(document, "", "resourceMetrics", "resource_metrics"):
        for where_scope, scope in _each(resource, f"{where}.", "scopeMetrics", "scope_metrics"):
            for where_metric, metric in _each(scope, f"{where_scope}.", "metrics"):
                for field in _JSON_POINT_FIELDS:
                    data = metric.get(field)
                    if not isinstance(data, dict):
                        continue
                    points = _each(data, f"{where_metric}.{field}.", "dataPoints", "data_points")
                    for where_point, point in points:
                        for where_exemplar, exemplar in _each(
                            point, f"{where_point}.", "exemplars"
                        ):
                            _hex_ids(exemplar, where_exemplar)


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's members, refusing a name given twice (as json_format's own parse does)."""
    found: dict[str, Any] = {}
    for name, value in pairs:
        if name in found:
            raise ValueError(f"{name!r} given twice in one object")
        found[name] = value
    return found


def parse(data: bytes, content_type: str, message: Message, what: str) -> None:
    """Fill ``message`` from ``data`` in the content type's encoding (OTLP/JSON's ids as hex).

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
            document = json.loads(data.decode("utf-8"), object_pairs_hook=_once_each)
            if not isinstance(document, dict):
                raise ValueError("expected a JSON object")
            hex_ids(document)
            json_format.ParseDict(document, message, ignore_unknown_fields=True)
        except (json_format.ParseError, ValueError, RecursionError) as problem:
            raise BadRequest(400, f"body: not an OTLP {what} in JSON ({problem})") from None
    else:
        raise BadRequest(415, f"Content-Type: {content_type!r}: expected {_PROTOBUF} or {_JSON}")


def _check_ids(holder: Any, where: str) -> None:
    """A record's or exemplar's ``trace_id`` and ``span_id``: none, or 16 and 8 bytes.

    Raises:
        BadRequest: 400 naming the id of another length.
    """
    for field, size in (("trace_id", 16), ("span_id", 8)):
        value = getattr(holder, field)
        if value and len(value) != size:
            raise BadRequest(400, f"{where}.{field}: expected {size} bytes, got {len(value)}")


def log_records(request: ExportLogsServiceRequest) -> list[tuple[str | None, bytes]]:
    """Each log record's session and bytes.

    Raises:
        BadRequest: 400, a record's trace or span id is not 16 or 8 bytes.
    """
    found: list[tuple[str | None, bytes]] = []
    for r, resource_logs in enumerate(request.resource_logs):
        default = _session(resource_logs.resource.attributes)
        for s, scope_logs in enumerate(resource_logs.scope_logs):
            for n, record in enumerate(scope_logs.log_records):
                _check_ids(record, f"resource_logs[{r}].scope_logs[{s}].log_records[{n}]")
                found.append((_session(record.attributes) or default, record.SerializeToString()))
    return found


def metric_points(request: ExportMetricsServiceRequest) -> list[tuple[str | None, bytes]]:
    """Each data point's session and bytes (the metric's name, a line break, the point).

    Raises:
        BadRequest: 400, an exemplar's trace or span id is not 16 or 8 bytes.
    """
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
                    for exemplar in getattr(point, "exemplars", ()):
                        _check_ids(exemplar, f"metric {metric.name!r}: an exemplar")
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
            key = idempotency_key(request)
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
            filing = Filing(str(kind), str(verdict.retention_class), now, expires, key)
            with contextlib.suppress(AlreadyStored):  # sent again: a success, storing nothing
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
                "parameters": [
                    {
                        "name": IDEMPOTENCY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "stores the request at most once per organisation; "
                        "a copy sent again is answered as a success and stores nothing",
                        "schema": {"type": "string", "maxLength": MAX_IDEMPOTENCY_KEY},
                    }
                ],
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
                    "400": {
                        "description": "a malformed body or Idempotency-Key, named "
                        "(OTLP/JSON: a traceId or spanId that is not hex)"
                    },
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
