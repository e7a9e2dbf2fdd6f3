"""What one redaction found: a ``Finding`` per secret, counted by kind in a ``RedactionReport``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Finding:
    """One redacted secret: its kind and 1-based line; never the secret itself.

    ``start`` and ``end`` are byte offsets of the replaced span in the input.
    """

    kind: str
    line: int
    start: int = 0
    end: int = 0


@dataclass(slots=True)
class RedactionReport:
    """What one redaction found, in input order (filled in as the copy goes).

    With ``keep_findings`` false, only the number of secrets of each kind is kept and
    ``findings`` stays empty: memory stays flat however many secrets the input holds. With
    ``lines`` false, findings carry line 0 (lines are not counted).
    """

    findings: list[Finding] = field(default_factory=list)
    bytes_in: int = 0
    bytes_out: int = 0
    keep_findings: bool = True
    lines: bool = True
    tally: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        if self.findings and not self.tally:
            self.tally.update(finding.kind for finding in self.findings)

    def __repr__(self) -> str:
        return (
            f"RedactionReport(counts={self.counts()}, bytes_in={self.bytes_in}, "
            f"bytes_out={self.bytes_out})"
        )

    def add(self, kind: str, line: int, start: int, end: int) -> None:
        """Count one redacted secret (and keep it as a ``Finding``, with ``keep_findings``)."""
        self.tally[kind] += 1
        if self.keep_findings:
            self.findings.append(Finding(kind, line, start, end))

    @property
    def found(self) -> bool:
        """Whether anything was redacted."""
        return bool(self.tally)

    def counts(self) -> dict[str, int]:
        """Number of secrets redacted, by kind, most frequent first."""
        return dict(self.tally.most_common())

    def to_json(self) -> dict[str, Any]:
        """The report as plain JSON data (kinds, lines and offsets; no secret)."""
        return {
            "found": self.found,
            "counts": self.counts(),
            "findings": [
                {"kind": f.kind, "line": f.line, "start": f.start, "end": f.end}
                for f in self.findings
            ],
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
        }
