"""The web fetch guard: permission rules, the domain-safety preflight, the guarded fetch."""

from airlock.webfetch.fetch import FetchLimits, FetchResult, GuardedFetcher, to_markdown
from airlock.webfetch.preflight import (
    CACHE_SECONDS,
    AllowedCache,
    PreflightAnswer,
    PreflightClient,
)
from airlock.webfetch.resolve import Pin, PinnedTransport, parse_pin

__all__ = [
    "CACHE_SECONDS",
    "AllowedCache",
    "FetchLimits",
    "FetchResult",
    "GuardedFetcher",
    "Pin",
    "PinnedTransport",
    "PreflightAnswer",
    "PreflightClient",
    "parse_pin",
    "to_markdown",
]
