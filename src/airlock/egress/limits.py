"""Run-wide limits the proxy keeps: new connections per second per host, the upload budget.

Both take the time as an argument (``now``, seconds on a monotonic clock); nothing here
reads a clock or does I/O.
"""

from __future__ import annotations


class RateLimiter:
    """A token bucket per host: ``rate`` new connections per second, bursts of ``rate``."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, host: str, now: float) -> bool:
        """Take one token for ``host``; ``False`` when its bucket is empty."""
        rate = self.rate
        if rate is None:
            return True
        tokens, since = self._buckets.get(host, (rate, now))
        tokens = min(rate, tokens + (now - since) * rate)
        if tokens < 1.0:
            self._buckets[host] = (tokens, now)
            return False
        self._buckets[host] = (tokens - 1.0, now)
        return True


class UploadBudget:
    """Bytes the run may send out; once spent, new connections are refused."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.sent = 0
        self.exhausted = False

    def spend(self, count: int) -> None:
        self.sent += count
        if self.limit is not None and self.sent >= self.limit:
            self.exhausted = True  # the report says so, whether or not a new one was asked

    def admit(self) -> bool:
        """Whether a new connection may open (and note when the budget first runs out)."""
        if self.limit is None or self.sent < self.limit:
            return True
        self.exhausted = True
        return False
