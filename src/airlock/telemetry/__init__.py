"""Telemetry clients: metrics through the OpenTelemetry SDK, error reports through sentry-sdk.

Each client is created only when the policy engine says its flow is on
(:func:`metrics_client` for ``metrics``, :func:`error_reporter` for ``error_reporting``); with
the flow off the factory returns ``None`` and nothing is built, so not one byte is sent. What
is sent is scrubbed first (:class:`.scrub.Scrubber`: the redaction engine for secrets, file
paths replaced, source code and local variables removed). A send that fails is kept on disk
(:class:`.spool.Spool`, bounded in bytes, oldest dropped first) and retried on the next send or
:meth:`retry`. Metrics are exported with delta temporality, each payload with an
``Idempotency-Key`` kept with it in the spool, so a retry is exactly what did not arrive and
the collector stores it once even when the first send did arrive.
"""

from airlock.telemetry.clients import ErrorReporter, MetricsClient, error_reporter, metrics_client
from airlock.telemetry.scrub import Scrubber
from airlock.telemetry.spool import Spool

__all__ = [
    "ErrorReporter",
    "MetricsClient",
    "Scrubber",
    "Spool",
    "error_reporter",
    "metrics_client",
]
