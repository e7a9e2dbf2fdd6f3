"""Ask the engine, build the bundle, deliver it the way the engine says.

``airlock feedback`` needs ``feedback_command`` on; the survey's follow-up needs
``transcript_share`` on. Either way the bundle is uploaded, unless the engine says
``local_archive`` for ``transcript_share`` (Bedrock, Vertex, Foundry, gateway sessions) or the
user asks to keep it here: then it goes to ``<config dir>/feedback-bundles/``. A flow that is off
raises :class:`~airlock.feedback.refusal.FlowRefused` (a ``RefusedError``) with every reason
the engine gave.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from airlock.errors import UsageError
from airlock.feedback.archive import SUFFIX, archive_dir, write_private
from airlock.feedback.bundle import Staged, stage, write_bundle
from airlock.feedback.manifest import BundleKind, Manifest
from airlock.feedback.refusal import refuse_if_off
from airlock.feedback.sources import session_sources
from airlock.feedback.upload import (
    Receipt,
    Retry,
    check_collector_url,
    upload_bundle,
)
from airlock.policy.model import Decision, Decisions, FlowId, State
from airlock.policy.retention import RETENTION_DAYS, RetentionClass

if TYPE_CHECKING:
    from airlock.redact import Redactor
    from airlock.sessions import Session
    from airlock.settings import Loaded


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to a bundle."""

    manifest: Manifest
    dry_run: bool
    path: Path | None = None
    """The local archive, when kept here."""
    receipt: Receipt | None = None
    """The collector's receipt, when uploaded."""

    @property
    def delivered(self) -> str:
        """Where the bundle went, in words."""
        if self.dry_run:
            return "dry run: nothing written or sent"
        if self.path is not None:
            return f"kept on this machine at {self.path}"
        if self.receipt is not None and not self.receipt.persisted:
            return (
                f"received by {self.receipt.url} and not stored (its retention class keeps nothing)"
            )
        if self.receipt is not None:
            return f"uploaded to {self.receipt.url}"
        return "not delivered"  # pragma: no cover - every path sets one

    @property
    def delivered_publicly(self) -> str:
        """Where the bundle went, for a public issue: no local path, no user name."""
        if self.dry_run:
            return "not sent yet"
        if self.path is not None:
            return "kept as a local archive by the reporter; ask for it"
        return "uploaded to the feedback collector"


def feedback_delivery(decisions: Decisions, *, keep_local: bool = False) -> State:
    """How ``airlock feedback`` delivers, or :class:`RefusedError` when the engine says no."""
    refuse_if_off(decisions[FlowId.FEEDBACK_COMMAND], "airlock feedback")
    if keep_local or decisions[FlowId.TRANSCRIPT_SHARE].state is State.LOCAL_ARCHIVE:
        return State.LOCAL_ARCHIVE
    return State.UPLOAD


def share_delivery(decisions: Decisions) -> State:
    """How the survey's Yes delivers, or :class:`RefusedError` when the engine says no."""
    share = decisions[FlowId.TRANSCRIPT_SHARE]
    refuse_if_off(share, "sharing this session's transcript")
    return share.state


def collector_url(loaded: Loaded) -> str | None:
    """The collector's URL as the settings resolved it (:attr:`Loaded.collector`)."""
    return loaded.collector.url


@dataclass(frozen=True, slots=True)
class Request:
    """One bundle to make: which session, under which flow, delivered how."""

    session: Session
    kind: BundleKind
    delivery: State
    retention: Decision
    """The decision whose retention class the bundle carries."""
    description: str = ""
    dry_run: bool = False


def request_feedback(
    decisions: Decisions,
    session: Session,
    *,
    description: str = "",
    dry_run: bool = False,
    keep_local: bool = False,
) -> Request:
    """The bundle of ``airlock feedback`` (:class:`RefusedError` when off)."""
    delivery = feedback_delivery(decisions, keep_local=keep_local)
    return Request(
        session,
        BundleKind.FEEDBACK,
        delivery,
        decisions[FlowId.FEEDBACK_COMMAND],
        description,
        dry_run,
    )


def request_share(decisions: Decisions, session: Session, *, dry_run: bool = False) -> Request:
    """The bundle of the survey's Yes (:class:`RefusedError` when off)."""
    delivery = share_delivery(decisions)
    return Request(
        session,
        BundleKind.SHARED_TRANSCRIPT,
        delivery,
        decisions[FlowId.TRANSCRIPT_SHARE],
        dry_run=dry_run,
    )


def deliver(
    request: Request,
    redactor: Redactor,
    *,
    config_dir: Path,
    collector: str | None,
    now: datetime,
    version: str,
    sleep: Callable[[float], None],
    retry: Retry | None = None,
) -> Outcome:
    """Build the bundle for ``request`` and deliver it (or, for a dry run, only describe it).

    Args:
        request: What to bundle and how to deliver it.
        redactor: The redaction engine.
        config_dir: The config directory (for the local archive).
        collector: The collector's base URL (needed to upload).
        now: When the bundle is made.
        version: airlock's version.
        sleep: Waits between upload attempts.
        retry: Upload attempts and backoff.

    Returns:
        The manifest and where the bundle went.

    Raises:
        UsageError: No collector is configured for an upload, or a file cannot be read.
        AirlockError: The delivery failed.
    """
    if request.delivery is State.UPLOAD and not request.dry_run:
        if not collector:
            raise UsageError(
                "no collector is configured: set AIRLOCK_COLLECTOR_URL or the settings key "
                "airlock.collectorUrl, or keep the bundle here with --local"
            )
        check_collector_url(collector)
    retention_class = request.retention.retention.retention_class
    staged = stage(
        session_sources(request.session),
        redactor,
        root=config_dir,
        kind=request.kind,
        session_id=request.session.id,
        bundle_id=str(uuid.uuid4()),
        now=now,
        version=version,
        retention_class=retention_class,
        retention_days=_days(retention_class),
        delivery=str(request.delivery),
        description=request.description,
        dry_run=request.dry_run,
    )
    with staged:
        if request.dry_run:
            return Outcome(staged.manifest, dry_run=True)
        if request.delivery is State.LOCAL_ARCHIVE:
            return _archive(staged, config_dir, now)
        return _upload(staged, collector or "", sleep, retry)


def _days(retention_class: str) -> int | None:
    try:
        return RETENTION_DAYS[RetentionClass(retention_class)]
    except ValueError:
        return None


def _archive(staged: Staged, config_dir: Path, now: datetime) -> Outcome:
    manifest = staged.manifest
    name = f"{manifest.kind}-{now.strftime('%Y%m%dT%H%M%SZ')}-{manifest.bundle_id}{SUFFIX}"
    path = write_private(archive_dir(config_dir), name, lambda handle: write_bundle(staged, handle))
    return Outcome(manifest, dry_run=False, path=path)


def _upload(
    staged: Staged, collector: str, sleep: Callable[[float], None], retry: Retry | None
) -> Outcome:
    import hashlib

    manifest = staged.manifest
    with tempfile.TemporaryFile() as bundle:
        digest = hashlib.sha256()
        write_bundle(staged, bundle)
        size = bundle.tell()
        bundle.seek(0)
        while chunk := bundle.read(1024 * 1024):
            digest.update(chunk)
        receipt = upload_bundle(
            bundle,
            size=size,
            sha256=digest.hexdigest(),
            bundle_id=manifest.bundle_id,
            collector=collector,
            headers={
                "X-Airlock-Bundle-Kind": str(manifest.kind),
                "X-Airlock-Retention-Class": manifest.retention_class,
                "X-Airlock-Session-Id": manifest.session,
            },
            retry=retry,
            sleep=sleep,
        )
    return Outcome(manifest, dry_run=False, receipt=receipt)
