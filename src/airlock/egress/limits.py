"""Run-wide limits the proxy keeps: new connections per second per host, the upload budget.

Both take the time as an argument (``now``, seconds on a monotonic clock); nothing here
reads a clock or does I/O.
"""

from __future__ import annotations


class RateLimiter:
    """A token bucket per host: ``rate`` new connections per second, bursts of ``rate`` (of
    one, below one a second: a bucket that never holds a whole token admits nothing)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def admit(self, host: str, now: float) -> bool:
        """Take one token for ``host``; ``False`` when its bucket is empty."""
        rate = self.rate
        if rate is None:
            return True
        if len(self._buckets) >= BUCKETS and host not in self._buckets:
            self._forget_full(now)
        size = max(rate, 1.0)
        tokens, since = self._buckets.get(host, (size, now))
        tokens = min(size, tokens + (now - since) * rate)
        if tokens < 1.0:
            self._buckets[host] = (tokens, now)
            return False
        self._buckets[host] = (tokens - 1.0, now)
        return True

    def give_back(self, host: str) -> None:
        """Return the token :meth:`admit` took for ``host``: its connection was refused before
        it was dialled (the address check), and a connection never made uses up none of the
        rate. A bucket forgotten meanwhile is full anyway."""
        found = self._buckets.get(host)
        if self.rate is not None and found is not None:
            tokens, since = found
            self._buckets[host] = (min(max(self.rate, 1.0), tokens + 1.0), since)

    def _forget_full(self, now: float) -> None:
        """Drop the buckets that are full again (a full one is what a host never seen gets):
        only hosts dialled lately are kept, however many names the rules allow
        (``*.example.com``). When that leaves more than half of :data:`BUCKETS` (a low rate
        refills slowly), the hosts dialled longest ago are dropped too, down to half: so the
        table is rebuilt once every :data:`BUCKETS` // 2 new hosts at most, never for each
        (a host forgotten so gets its burst again, as it would after 10,000 others)."""
        rate = self.rate or 0.0
        size = max(rate, 1.0)
        kept = [
            (host, (tokens, since))
            for host, (tokens, since) in self._buckets.items()
            if tokens + (now - since) * rate < size
        ]
        if len(kept) > BUCKETS // 2:
            kept.sort(key=lambda item: item[1][1])  # dialled longest ago first
            kept = kept[len(kept) - BUCKETS // 2 :]
        self._buckets = dict(kept)


BUCKETS = 10_000
"""How many hosts' buckets :class:`RateLimiter` holds before it forgets the full ones."""

UNLIMITED = 1 << 62
"""What :attr:`UploadBudget.left` starts at without a budget: no piece is ever larger."""


class UploadBudget:
    """Bytes the run may send out: a cap. A piece that would take the bytes sent past it does
    not leave, and its connection is cut (:meth:`spent`); from then on the next piece of every
    other connection is cut too, and new connections are refused.

    The copying loops read :attr:`left` before each piece (one integer compare) and take the
    piece's size from it: no call per piece.
    """

    def __init__(self, limit: int | None, reason: str = "the upload budget is used up") -> None:
        self.limit = limit
        self.left = UNLIMITED if limit is None else limit
        """Bytes that may still leave; negative once a piece was cut."""
        self.reason = reason
        """Why a connection is refused or cut, in words."""

    @property
    def exhausted(self) -> bool:
        """Whether the budget ran out (the report says so, whether or not a new one was asked)."""
        return self.limit is not None and self.left <= 0

    def spend(self, count: int) -> None:
        """Count ``count`` bytes that left already."""
        self.left -= count

    def spent(self) -> str:
        """Note that a piece did not fit: every connection's next piece is cut. Why, in words."""
        self.left = min(self.left, -1)
        return self.reason

    def admit(self) -> bool:
        """Whether a new connection may open."""
        return self.left > 0
