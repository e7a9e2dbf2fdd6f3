"""The web fetch guard: permission rules, the domain-safety preflight, the guarded fetch."""

from airlock.webfetch.fetch import (
    FetchLimits,
    FetchResult,
    GuardedFetcher,
    canonical_url,
    to_markdown,
)
from airlock.webfetch.preflight import (
    CACHE_SECONDS,
    AllowedCache,
    PreflightAnswer,
    PreflightClient,
)
from airlock.webfetch.resolve import Pin, parse_pin, pinned_resolver
from airlock.webfetch.transport import LimitedTransport, time_limit

__all__ = [
    "CACHE_SECONDS",
    "AllowedCache",
    "FetchLimits",
    "FetchResult",
    "GuardedFetcher",
    "LimitedTransport",
    "Pin",
    "PreflightAnswer",
    "PreflightClient",
    "canonical_url",
    "parse_pin",
    "pinned_resolver",
    "time_limit",
    "to_markdown",
]
