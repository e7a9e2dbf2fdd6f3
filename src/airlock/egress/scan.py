"""Secrets in request bodies: counted as the body streams past, or replaced before it leaves.

Theory of operation
-------------------
:class:`SecretScanner` is fed a body in pieces as the proxy forwards them; it never holds
more than a segment (``SEGMENT`` bytes) plus a carry. Each segment is scanned by the redaction
engine (``airlock.redact``, JSON-aware), which reports each secret's kind and offsets, never
keeping the value. Secrets that begin before the segment's last ``OVERLAP`` bytes are counted;
the rest of the segment is carried into the next scan (with a little left context), so a
secret shorter than ``OVERLAP`` is seen whole wherever the pieces were cut, and none is
counted twice. :func:`redact_body` replaces secrets in a whole body (``--secrets redact``).
"""

from __future__ import annotations

import io
from collections import Counter
from enum import StrEnum

from airlock.redact import RedactionReport, Redactor

SEGMENT = 1 << 20
"""Bytes gathered before a scan."""
OVERLAP = 1 << 12
"""The longest secret guaranteed to be counted across a segment boundary."""
CONTEXT = 64
"""Bytes before a segment kept for the scan's left context (word boundaries)."""


class SecretsMode(StrEnum):
    """What ``--secrets`` does with a secret found in a request body."""

    REPORT = "report"
    REDACT = "redact"
    BLOCK = "block"


class SecretScanner:
    """Counts the secrets of one body, fed in pieces.

    Args:
        redactor: The redaction engine (its rules and allow-list).
        segment: Bytes gathered before a scan.
        overlap: The longest secret counted across a segment boundary.
    """

    def __init__(
        self, redactor: Redactor, *, segment: int = SEGMENT, overlap: int = OVERLAP
    ) -> None:
        self._redactor = redactor
        self._segment = segment
        self._overlap = overlap
        self._pieces: list[bytes] = []
        self._size = 0
        self._context = b""
        self.counts: Counter[str] = Counter()

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body, scanning here when a segment is full."""
        if self.take(data):
            self.merge(self.scan(*self.cut(final=False)))

    def take(self, data: bytes) -> bool:
        """Take the next piece without scanning; whether a segment is due (:meth:`cut`)."""
        self._pieces.append(data)
        self._size += len(data)
        return self._size >= self._segment + self._overlap

    def finish(self) -> dict[str, int]:
        """Scan what is left; return the number of secrets of each kind in the whole body."""
        if self._size:
            self.merge(self.scan(*self.cut(final=True)))
        return dict(self.counts)

    def cut(self, *, final: bool) -> tuple[list[bytes], int, bool]:
        """The pieces of the window to scan next (left context first), the context's length,
        and ``final``. The pieces are joined by :meth:`scan`, so a caller that scans in a
        worker thread copies nothing on its own.

        Pieces taken while it is scanned wait for :meth:`merge`, which puts the window's carry
        in front of them: at most one window is out at a time.
        """
        parts = [self._context, *self._pieces]
        base = len(self._context)
        self._pieces = []
        self._size = 0
        return parts, base, final

    def scan(self, parts: list[bytes], base: int, final: bool) -> tuple[Counter[str], bytes, bytes]:
        """Scan a window (any thread): the counts, the carry and the next left context."""
        window = b"".join(parts)
        safe = len(window) if final else len(window) - self._overlap
        cut = safe
        counts: Counter[str] = Counter()
        for hit in self._redactor.find(window):
            if base <= hit.start < safe:
                counts[hit.kind] += 1
                cut = max(cut, hit.end)
        return counts, window[cut:], window[max(base, cut - CONTEXT) : cut]

    def merge(self, result: tuple[Counter[str], bytes, bytes]) -> None:
        """Take a scanned window's counts, carry and context back (the loop's thread)."""
        counts, rest, context = result
        self.counts.update(counts)
        self._context = context
        if rest:
            self._pieces.insert(0, rest)
            self._size += len(rest)


def count_secrets(redactor: Redactor, body: bytes) -> dict[str, int]:
    """The number of secrets of each kind in a whole body."""
    scanner = SecretScanner(redactor)
    scanner.feed(body)
    return scanner.finish()


def redact_body(redactor: Redactor, body: bytes) -> tuple[bytes, dict[str, int]]:
    """``body`` with every secret replaced by ``[REDACTED:<kind>]``, and the counts by kind."""
    out = io.BytesIO()
    report = RedactionReport(lines=False, keep_findings=False)
    redactor.redact_stream(io.BytesIO(body), out, report=report)
    return out.getvalue(), report.counts()


def check_gathered(
    redactor: Redactor, mode: SecretsMode, body: bytes
) -> tuple[bytes | None, dict[str, int]]:
    """A whole body as it may leave and its secrets by kind: ``--secrets redact`` replaces
    each secret; ``--secrets block`` gives ``None`` (refused) for a body that holds any."""
    if mode is SecretsMode.REDACT:
        return redact_body(redactor, body)
    secrets = count_secrets(redactor, body)
    return (None if secrets else body), secrets


def blocked_reason(secrets: dict[str, int]) -> str:
    """Why ``--secrets block`` refused a body, naming the kinds and counts, never a value."""
    kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(secrets.items()))
    return f"--secrets block: the request body holds secrets ({kinds}); nothing was sent"
