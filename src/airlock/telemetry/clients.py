"""The metrics and error-report clients, gated by the policy engine's decisions."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from airlock.errors import UsageError
from airlock.policy.model import Decisions, FlowId, State
from airlock.telemetry.scrub import Scrubber
from airlock.telemetry.spool import Spool

TIMEOUT = 5.0
IDEMPOTENCY_HEADER = "Idempotency-Key"


def new_idempotency_key() -> str:
    """A random key for one payload (32 hex characters), kept with it until it is delivered."""
    return secrets.token_hex(16)


def _delta_temporality() -> dict[type, Any]:
    """Delta temporality for every instrument that adds up (counters, up-down counters,
    histograms, and their observable kinds): each export carries what was recorded since the
    previous one, never a running total again. A spooled export sent later is then exactly the
    increment that did not arrive, and the collector's stored data points add up to what was
    recorded, each increment once. (Gauges are left as the SDK has them: a last value.)"""
    from opentelemetry.sdk.metrics import (
        Counter,
        Histogram,
        ObservableCounter,
        ObservableUpDownCounter,
        UpDownCounter,
    )
    from opentelemetry.sdk.metrics.export import AggregationTemporality

    kinds = (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter)
    return dict.fromkeys(kinds, AggregationTemporality.DELTA)


REFUSED_FOR_GOOD = frozenset({400, 413, 415, 422})
"""Answers that refuse the payload itself (malformed, too large): sent again, it would be
refused again, and kept, it would hold up every payload behind it in the spool. Such a payload
is dropped, with a warning; any other failure (no answer, 401, 429, 5xx) keeps it for later."""

log = logging.getLogger(__name__)


def _post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> bool:
    """Send one payload: ``True`` when done with it (delivered, or refused for good and
    dropped with a warning), ``False`` to keep it and try again later."""
    import httpx

    try:
        response = httpx.post(url, content=body, headers=dict(headers), timeout=timeout)
    except httpx.HTTPError:
        return False
    if response.status_code in REFUSED_FOR_GOOD:
        log.warning(
            "%s refused a payload of %d bytes for good (HTTP %d: %s); it is dropped",
            url,
            len(body),
            response.status_code,
            response.text[:200],
        )
        return True
    return 200 <= response.status_code < 300


class MetricsClient:
    """Counters through the OpenTelemetry SDK, exported as OTLP/HTTP protobuf on :meth:`flush`.

    The reader collects with delta temporality (:func:`_delta_temporality`, what the OTLP
    exporter's ``preferred_temporality`` would be given), so each flush sends only what was
    added since the last one. Each payload gets an ``Idempotency-Key`` of its own, made once;
    a payload whose send fails is kept in the spool with its key and sent again, later, with
    the same key, so the collector stores it once even when the first send did arrive.
    """

    def __init__(
        self,
        endpoint: str,
        *,
        headers: Mapping[str, str],
        scrubber: Scrubber,
        spool: Spool,
        timeout: float = TIMEOUT,
    ) -> None:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.resources import Resource

        self.endpoint = endpoint.rstrip("/") + "/v1/metrics"
        self.headers = {**headers, "Content-Type": "application/x-protobuf"}
        self.scrubber = scrubber
        self.spool = spool
        self.timeout = timeout
        self._reader = InMemoryMetricReader(preferred_temporality=_delta_temporality())
        self._provider = MeterProvider(
            metric_readers=[self._reader], resource=Resource.create({"service.name": "airlock"})
        )
        self._meter = self._provider.get_meter("airlock")
        self._counters: dict[str, Any] = {}
        self._closed = False

    def add(
        self, name: str, value: int | float, attributes: Mapping[str, Any] | None = None
    ) -> None:
        """Add ``value`` to the counter ``name``; string attribute values are scrubbed."""
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = self._meter.create_counter(name)
        counter.add(value, self.scrubber.attributes(dict(attributes or {})))

    def flush(self) -> bool:
        """Send what was recorded (and what was kept from failed sends); ``False``: kept for later."""
        from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics

        self.spool.retry_with_keys("metrics", self._send)
        data = self._reader.get_metrics_data()
        if data is None or not data.resource_metrics:
            return True
        body = encode_metrics(data).SerializeToString()
        key = new_idempotency_key()
        if self._send(body, key):
            return True
        self.spool.keep("metrics", body, key)
        return False

    def _send(self, body: bytes, key: str | None) -> bool:
        """POST one payload; ``key``: its ``Idempotency-Key`` (``None``: kept before keys were)."""
        headers = self.headers if key is None else {**self.headers, IDEMPOTENCY_HEADER: key}
        return _post(self.endpoint, body, headers, self.timeout)

    def close(self) -> None:
        """Send what was recorded since the last flush (kept in the spool if that fails), and
        stop: nothing recorded is lost. Once only; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self.flush()
        self._provider.shutdown()


class ErrorReporter:
    """Error reports through sentry-sdk, scrubbed before they leave, kept on disk when a send fails."""

    def __init__(
        self, dsn: str, *, scrubber: Scrubber, spool: Spool, timeout: float = TIMEOUT
    ) -> None:
        import sentry_sdk
        from sentry_sdk.transport import Transport

        parts = urlsplit(dsn)
        project = parts.path.strip("/")
        if parts.scheme not in ("http", "https") or not parts.username or not project:
            raise UsageError(f"Sentry DSN {dsn!r}: expected http(s)://KEY@HOST/PROJECT")
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        self.url = f"{parts.scheme}://{host}{port}/api/{project}/envelope/"
        self.headers = {
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": f"Sentry sentry_version=7, sentry_key={parts.username}, sentry_client=airlock",
        }
        self.scrubber = scrubber
        self.spool = spool
        self.timeout = timeout
        reporter = self

        class _Kept(Transport):
            """Sends each envelope at once; a failed send is kept in the spool."""

            def capture_envelope(self, envelope: Any) -> None:
                reporter._deliver(envelope.serialize())

            def flush(self, timeout: float, callback: Any = None) -> None:
                return None

            def kill(self) -> None:
                return None

        self.client = sentry_sdk.Client(
            dsn=dsn,
            default_integrations=False,
            include_local_variables=False,
            include_source_context=False,
            before_send=lambda event, hint: scrubber.event(dict(event)),  # type: ignore[arg-type,return-value]
            transport=_Kept(),
        )

    def capture(self, error: BaseException, tags: Mapping[str, str] | None = None) -> None:
        """Report ``error`` (scrubbed), with ``tags`` (a ``session.id``, say)."""
        import sentry_sdk

        with sentry_sdk.new_scope() as scope:
            scope.set_client(self.client)
            for key, value in (tags or {}).items():
                scope.set_tag(key, self.scrubber.text(value))
            scope.capture_exception(error)

    def retry(self) -> int:
        """Send the envelopes kept from failed sends; returns how many went."""
        return self.spool.retry("errors", self._send)

    def _deliver(self, body: bytes) -> None:
        self.retry()
        if not self._send(body):
            self.spool.keep("errors", body)

    def _send(self, body: bytes) -> bool:
        return _post(self.url, body, self.headers, self.timeout)

    def close(self) -> None:
        self.client.close()


def metrics_client(
    decisions: Decisions,
    *,
    endpoint: str,
    headers: Mapping[str, str],
    spool: Spool,
    scrubber: Scrubber | None = None,
) -> MetricsClient | None:
    """A metrics client when the engine says ``metrics`` is on; else ``None`` (nothing built)."""
    if decisions[FlowId.METRICS].state is not State.ON:
        return None
    return MetricsClient(endpoint, headers=headers, scrubber=scrubber or Scrubber(), spool=spool)


def error_reporter(
    decisions: Decisions, *, dsn: str, spool: Spool, scrubber: Scrubber | None = None
) -> ErrorReporter | None:
    """An error reporter when the engine says ``error_reporting`` is on; else ``None``."""
    if decisions[FlowId.ERROR_REPORTING].state is not State.ON:
        return None
    return ErrorReporter(dsn, scrubber=scrubber or Scrubber(), spool=spool)
