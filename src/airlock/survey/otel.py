"""The ``otel_only`` mode: the rating as one OpenTelemetry log record, to the user's collector.

The record goes through OpenTelemetry's SDK and its OTLP/HTTP exporter to the endpoint the
engine names (``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` as given, or ``OTEL_EXPORTER_OTLP_ENDPOINT``
with ``/v1/logs`` appended, as the OTLP specification says) and nowhere else. The record holds
the rating alone: no session id, no transcript, no path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from airlock.errors import AirlockError
from airlock.survey.answers import Rating

if TYPE_CHECKING:
    from opentelemetry.sdk._logs import ReadableLogRecord
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

EVENT_NAME = "airlock.survey.rating"
SCOPE = "airlock.survey"
LOGS_PATH = "/v1/logs"
EXPORT_TIMEOUT_SECONDS = 5.0
"""The longest the export may take, retries included."""


def logs_endpoint(value: str, variable: str) -> str:
    """The full OTLP/HTTP logs URL for an endpoint variable's value.

    Args:
        value: The variable's value.
        variable: ``OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`` (used as given) or
            ``OTEL_EXPORTER_OTLP_ENDPOINT`` (a base URL: ``/v1/logs`` is appended).

    Returns:
        The URL the log record is posted to.
    """
    if variable == "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT":
        return value
    return value.rstrip("/") + LOGS_PATH


def emit_rating(
    rating: Rating,
    endpoint: str,
    *,
    now_ns: int,
    version: str,
    headers: Mapping[str, str] | None = None,
    timeout: float = EXPORT_TIMEOUT_SECONDS,
) -> None:
    """Send ``rating`` as one log record to ``endpoint`` and wait until it is delivered.

    The SDK's own log lines (its retries, its failures) are kept off stderr while it works;
    a failure is reported once, as an :class:`AirlockError` naming the endpoint, what went
    wrong and what to check. The whole export, retries included, takes at most ``timeout``.

    Args:
        rating: The answer.
        endpoint: The full OTLP/HTTP logs URL (see :func:`logs_endpoint`).
        now_ns: The time of the answer, nanoseconds since the epoch.
        version: airlock's version, named in the instrumentation scope.
        headers: Extra request headers (``OTEL_EXPORTER_OTLP_HEADERS``), if any.
        timeout: Seconds the export may take in all, retries included.

    Raises:
        AirlockError: The collector did not accept the record within ``timeout``.
        MissingExtraError: The ``otel`` extra (OpenTelemetry's SDK) is not installed.
    """
    from airlock.extras import require

    require("otel", "the survey's otel_only mode")
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    delivered: list[bool] = []
    with _sdk_logs_held() as held:
        exporter = _recording(
            OTLPLogExporter(
                endpoint=endpoint,
                headers=dict(headers) if headers else None,
                timeout=timeout,
            ),
            delivered,
        )
        provider = LoggerProvider(
            resource=Resource.create({"service.name": "airlock"}), shutdown_on_exit=False
        )
        provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
        try:
            provider.get_logger(SCOPE, version).emit(
                timestamp=now_ns,
                observed_timestamp=now_ns,
                severity_number=SeverityNumber.INFO,
                severity_text="INFO",
                event_name=EVENT_NAME,
                body=rating.label,
                attributes={"survey.rating": str(rating)},
            )
        finally:
            provider.shutdown()
    if not delivered:
        raise AirlockError(
            f"rating not sent: the OpenTelemetry collector at {endpoint} {_what_went_wrong(held)} "
            f"(gave up after at most {timeout:g} s). Check that an OTLP/HTTP collector is "
            "listening there, or fix OTEL_EXPORTER_OTLP_LOGS_ENDPOINT / "
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        )


@contextmanager
def _sdk_logs_held() -> Iterator[list[logging.LogRecord]]:
    """Keep every ``opentelemetry`` log record off stderr while the block runs; yield them."""
    held: list[logging.LogRecord] = []

    class Holder(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            held.append(record)

    sdk = logging.getLogger("opentelemetry")
    holder = Holder(logging.DEBUG)
    before = sdk.propagate
    sdk.addHandler(holder)
    sdk.propagate = False
    try:
        yield held
    finally:
        sdk.removeHandler(holder)
        sdk.propagate = before


def _what_went_wrong(held: list[logging.LogRecord]) -> str:
    """The SDK's complaints, in a few plain words."""
    texts = [record.getMessage() for record in held]
    for text in reversed(texts):
        status = re.search(r"batch code: (\d{3})", text)
        if status:
            return f"answered HTTP {status.group(1)}"
    if any("refused" in text.lower() for text in texts):
        return "refused the connection"
    if any("timed out" in text.lower() or "timeout" in text.lower() for text in texts):
        return "did not answer in time"
    return "could not be reached"


def _recording(inner: LogRecordExporter, delivered: list[bool]) -> LogRecordExporter:
    """Wrap the OTLP exporter to learn whether the export succeeded (the processor hides it)."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class Recording(LogRecordExporter):
        def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
            result = inner.export(batch)
            if result is LogRecordExportResult.SUCCESS:
                delivered.append(True)
            return result

        def shutdown(self) -> None:
            inner.shutdown()  # type: ignore[no-untyped-call]  # untyped in the SDK

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    return Recording()
