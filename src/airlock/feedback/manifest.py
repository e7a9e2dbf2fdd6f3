"""The manifest of a feedback bundle: what is in it, how big, its hash, what was redacted.

The manifest is ``manifest.json``, the first member of the bundle; ``airlock feedback
--dry-run --json`` prints the same document without writing or sending anything. Paths inside
the bundle are the file's role and base name, never the path on this machine (which would
name the user and the project).

Redaction counts are by kind, in four keys that always add up: ``files[].redactions`` (each
file), ``file_redactions`` (the sum over the files), ``description_redactions`` (the user's
description) and ``redactions`` (everything: the files plus the description).

``skipped`` lists the session's files left out, each with the reason: a symbolic link (or a
link among the folders on the way), a FIFO, a device, a hard link, a file of another user.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

FORMAT = "airlock-feedback-bundle/1"


class Role(StrEnum):
    """What a file of the bundle is."""

    TRANSCRIPT = "transcript"
    SUBAGENT_TRANSCRIPT = "subagent_transcript"
    RAW_SESSION_LOG = "raw_session_log"


class BundleKind(StrEnum):
    """Why the bundle was made: the flow it travels under."""

    FEEDBACK = "feedback"
    """``airlock feedback``: the ``feedback_command`` flow."""
    SHARED_TRANSCRIPT = "shared_transcript"
    """Yes to the survey's follow-up: the ``transcript_share`` flow."""


@dataclass(frozen=True, slots=True)
class BundleFile:
    """One file of the bundle, as it is in the bundle (redacted)."""

    path: str
    role: Role
    size: int
    sha256: str
    redactions: Mapping[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "role": str(self.role),
            "size": self.size,
            "sha256": self.sha256,
            "redactions": dict(sorted(self.redactions.items())),
        }


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A file of the session left out of the bundle, and why (a link, a FIFO, …)."""

    path: str
    """Its name as it would be in the bundle (never the path on this machine)."""
    role: Role
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "role": str(self.role), "reason": self.reason}


@dataclass(frozen=True, slots=True)
class Manifest:
    """Everything a reader of the bundle, or the user before sending it, needs to know."""

    bundle_id: str
    """A random id; also the idempotency key of the upload."""
    kind: BundleKind
    session: str
    created_at: str
    airlock_version: str
    retention_class: str
    retention_days: int | None
    delivery: str
    """The engine's state for the delivery: ``upload`` or ``local_archive``."""
    files: tuple[BundleFile, ...]
    description: str = ""
    description_redactions: Mapping[str, int] = field(default_factory=dict)
    skipped: tuple[SkippedFile, ...] = ()
    """Files of the session not bundled: links are never followed, only regular files go."""

    @property
    def file_redactions(self) -> dict[str, int]:
        """Redactions by kind over every file of the bundle (not the description)."""
        total: dict[str, int] = {}
        for item in self.files:
            for kind, count in item.redactions.items():
                total[kind] = total.get(kind, 0) + count
        return dict(sorted(total.items()))

    @property
    def redactions(self) -> dict[str, int]:
        """Redactions by kind in all: every file plus the description."""
        total = self.file_redactions
        for kind, count in self.description_redactions.items():
            total[kind] = total.get(kind, 0) + count
        return dict(sorted(total.items()))

    @property
    def size(self) -> int:
        """Bytes of redacted content, over every file."""
        return sum(item.size for item in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "bundle_id": self.bundle_id,
            "kind": str(self.kind),
            "session": self.session,
            "created_at": self.created_at,
            "airlock_version": self.airlock_version,
            "retention": {"class": self.retention_class, "days": self.retention_days},
            "delivery": self.delivery,
            "description": self.description,
            "description_redactions": dict(sorted(self.description_redactions.items())),
            "files": [item.to_json() for item in self.files],
            "skipped": [item.to_json() for item in self.skipped],
            "size": self.size,
            "file_redactions": self.file_redactions,
            "redactions": self.redactions,
        }
