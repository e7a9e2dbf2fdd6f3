"""Feedback bundles: a session's files, redacted, with a manifest, delivered as the engine says.

    >>> from airlock.feedback import request_feedback, deliver
    >>> request = request_feedback(decisions, session, description="it crashed", dry_run=True)
    >>> outcome = deliver(request, Redactor.from_loaded(loaded), config_dir=..., collector=...,
    ...                   now=now, version=__version__, sleep=time.sleep)
    >>> outcome.manifest.to_json()

Building: :mod:`.sources` (links never followed), :mod:`.bundle` and :mod:`.manifest`; delivery: :mod:`.upload` (collector, retried,
idempotent) and :mod:`.archive` (``<config dir>/feedback-bundles/``, atomic, private);
a GitHub issue to open: :mod:`.issue`.
"""

from airlock.feedback.archive import archive_dir, write_private
from airlock.feedback.bundle import read_members, stage, write_bundle
from airlock.feedback.delivery import (
    Outcome,
    Request,
    collector_url,
    deliver,
    feedback_delivery,
    request_feedback,
    request_share,
    share_delivery,
)
from airlock.feedback.issue import Issue, compose_issue, issue_link
from airlock.feedback.manifest import BundleFile, BundleKind, Manifest, Role, SkippedFile
from airlock.feedback.refusal import FlowRefused, refuse_if_off
from airlock.feedback.sources import Source, session_sources
from airlock.feedback.upload import Receipt, Retry, post_rating, upload_bundle

__all__ = [
    "BundleFile",
    "BundleKind",
    "FlowRefused",
    "Issue",
    "Manifest",
    "Outcome",
    "Receipt",
    "Request",
    "Retry",
    "Role",
    "SkippedFile",
    "Source",
    "archive_dir",
    "collector_url",
    "compose_issue",
    "deliver",
    "feedback_delivery",
    "issue_link",
    "post_rating",
    "read_members",
    "refuse_if_off",
    "request_feedback",
    "request_share",
    "session_sources",
    "share_delivery",
    "stage",
    "upload_bundle",
    "write_bundle",
    "write_private",
]
