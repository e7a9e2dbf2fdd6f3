"""The ``upload`` delivery: the bundle streamed to the collector, retried, stored once.

The bundle is POSTed from its file in chunks (never read whole) with a ``Content-Length``, the
SHA-256 of the whole bundle, and an ``Idempotency-Key`` (the bundle id). The collector stores a
bundle only once every byte has arrived and the hash matches, and stores each key once: a
retry after a cut connection, a timeout or a lost answer never stores a bundle twice, and a
cut connection never stores part of one. Connection failures, 408, 429 and 5xx answers are
retried with exponential backoff (``Retry-After`` honoured, capped); other answers are final.
Plain ``http://`` is refused except to a loopback address: a bundle crosses networks over TLS.
"""

from __future__ import annotations

import io
import ipaddress
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlsplit

from airlock.errors import AirlockError, RefusedError, UsageError

BUNDLES_PATH = "/v1/feedback-bundles"
RATINGS_PATH = "/v1/survey-ratings"
CHUNK = 256 * 1024
RETRIABLE = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Retry:
    """How often and how patiently to try."""

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0
    timeout: float = 30.0

    def delay(self, attempt: int, retry_after: str | None) -> float:
        """Seconds to wait after the failed ``attempt`` (1-based)."""
        if retry_after is not None and retry_after.strip().isdigit():
            return min(float(retry_after), self.max_delay)
        return float(min(self.first_delay * 2 ** (attempt - 1), self.max_delay))


@dataclass(frozen=True, slots=True)
class Receipt:
    """What the collector answered once the bundle was stored."""

    url: str
    status: int
    attempts: int
    duplicate: bool
    """The collector already had this bundle (an earlier attempt had stored it)."""
    body: Mapping[str, Any]

    @property
    def persisted(self) -> bool:
        """Whether the collector keeps it: ``202`` means received and, by policy (zero data
        retention), not stored at all."""
        return self.status != 202


def check_collector_url(url: str) -> str:
    """``url`` without a trailing slash, when it is HTTPS, or HTTP to a loopback address.

    Raises:
        UsageError: Not an http(s) URL.
        RefusedError: Plain HTTP to a host that is not loopback.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"collector URL {url!r} is not an http:// or https:// URL")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise RefusedError(
            f"collector URL {url} is plain HTTP to {parts.hostname}: a bundle is only sent over "
            "HTTPS (plain HTTP is allowed to a loopback address only)"
        )
    return url.rstrip("/")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def upload_bundle(
    bundle: IO[bytes],
    *,
    size: int,
    sha256: str,
    bundle_id: str,
    collector: str,
    headers: Mapping[str, str] | None = None,
    retry: Retry | None = None,
    sleep: Callable[[float], None],
) -> Receipt:
    """POST the bundle to ``<collector>/v1/feedback-bundles``, retrying until it is stored.

    Args:
        bundle: The bundle file, readable and seekable (each attempt starts at 0).
        size: Its size in bytes.
        sha256: Its SHA-256, hex.
        bundle_id: The idempotency key.
        collector: The collector's base URL (:func:`check_collector_url`).
        headers: Further headers (kind, retention class).
        retry: Attempts, backoff and timeout.
        sleep: Waits between attempts (``time.sleep``; injected so tests need not wait).

    Returns:
        The collector's receipt.

    Raises:
        AirlockError: Every attempt failed, or the collector refused the bundle.
    """
    sent = {
        "Content-Type": "application/gzip",
        "Idempotency-Key": bundle_id,
        "X-Airlock-Bundle-Sha256": sha256,
        **(headers or {}),
    }
    url = check_collector_url(collector) + BUNDLES_PATH
    return _post(url, bundle, size, sent, retry or Retry(), sleep, "the bundle")


def _post(
    url: str,
    body: IO[bytes],
    size: int,
    headers: Mapping[str, str],
    retry: Retry,
    sleep: Callable[[float], None],
    what: str,
) -> Receipt:
    import httpx

    from airlock.collector_key import auth_headers

    sent = {**headers, **auth_headers(), "Content-Length": str(size)}
    last = "no attempt made"
    with httpx.Client(timeout=retry.timeout) as client:  # honours HTTPS_PROXY and NO_PROXY
        for attempt in range(1, retry.attempts + 1):
            body.seek(0)
            retry_after = None
            try:
                response = client.post(url, content=_chunks(body), headers=sent)
            except httpx.HTTPError as error:
                last = f"{type(error).__name__}: {error}"
            else:
                if response.status_code in (200, 201, 202):
                    return Receipt(
                        url,
                        response.status_code,
                        attempt,
                        response.status_code == 200,
                        _json(response),
                    )
                last = f"HTTP {response.status_code} {response.text[:200]}"
                if response.status_code not in RETRIABLE:
                    raise AirlockError(f"the collector at {url} refused {what}: {last}")
                retry_after = response.headers.get("Retry-After")
            if attempt < retry.attempts:
                sleep(retry.delay(attempt, retry_after))
    raise AirlockError(
        f"could not deliver {what} to {url} after {retry.attempts} attempts ({last}); "
        "nothing was stored partially; try again later"
    )


def _chunks(bundle: IO[bytes]) -> Iterator[bytes]:
    while chunk := bundle.read(CHUNK):
        yield chunk


def _json(response: Any) -> Mapping[str, Any]:
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def post_rating(
    payload: Mapping[str, Any],
    *,
    collector: str,
    key: str,
    retry: Retry | None = None,
    sleep: Callable[[float], None],
) -> Receipt:
    """POST a survey rating, alone, to ``<collector>/v1/survey-ratings`` (same retry rules).

    Raises:
        AirlockError: Every attempt failed, or the collector refused it.
    """
    body = json.dumps(dict(payload)).encode("utf-8")
    url = check_collector_url(collector) + RATINGS_PATH
    headers = {"Content-Type": "application/json", "Idempotency-Key": key}
    return _post(url, io.BytesIO(body), len(body), headers, retry or Retry(), sleep, "the rating")
