"""What the collector keeps of each item it receives, and until when: the server's rules.

The collector never takes a retention class from a client. It asks :func:`storing` with the
kind of item and what it knows of the sending organisation (:class:`OrgTerms`), and files the
item under the class and expiry answered here, or refuses it, or accepts and drops it.
Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from airlock.policy.retention import RETENTION_DAYS, RetentionClass


class ItemKind(StrEnum):
    """What the collector receives."""

    METRICS = "metrics"
    LOGS = "logs"
    ERROR_REPORT = "error_report"
    FEEDBACK_BUNDLE = "feedback_bundle"
    SHARED_TRANSCRIPT = "shared_transcript"
    SURVEY_RATING = "survey_rating"


BUNDLE_KINDS = frozenset({ItemKind.FEEDBACK_BUNDLE, ItemKind.SHARED_TRANSCRIPT})

ORG_CLASSES = frozenset(
    {
        RetentionClass.COMMERCIAL,
        RetentionClass.CONSUMER_STANDARD,
        RetentionClass.CONSUMER_IMPROVEMENT,
    }
)
"""Account classes an organisation may be registered under (commercial by default)."""


@dataclass(frozen=True, slots=True)
class OrgTerms:
    """What the collector knows of the organisation that sent an item."""

    account_class: RetentionClass = RetentionClass.COMMERCIAL
    zero_data_retention: bool = False
    product_feedback: bool = True
    """``False``: the organisation disabled product feedback (bundles are refused)."""


@dataclass(frozen=True, slots=True)
class Storing:
    """The collector's answer for one item."""

    retention_class: RetentionClass
    days: int | None
    """Days kept; ``0``: accepted and dropped; ``None``: no period of ours (never swept)."""
    refused: str = ""
    """Non-empty: the item is refused, and why."""

    @property
    def persisted(self) -> bool:
        return not self.refused and self.days != 0

    def expires(self, received: datetime) -> datetime | None:
        """When an item received at ``received`` must be gone (``None``: no period of ours)."""
        return None if self.days is None else received + timedelta(days=self.days)


def storing(kind: ItemKind, terms: OrgTerms) -> Storing:
    """The class, period or refusal of an item of ``kind`` from an organisation under ``terms``.

    Zero data retention: nothing is persisted, whatever the kind. Bundles (``/feedback`` and
    shared survey transcripts) are refused where the organisation disabled product feedback;
    otherwise ``/feedback`` is kept 5 years and shared transcripts 6 months. A survey rating has
    its own class, apart from any transcript. Metrics, logs and error reports follow the
    organisation's account class (commercial 30 days; consumer 30 days or 5 years).
    """
    if terms.zero_data_retention:
        return _of(RetentionClass.ZERO_DATA_RETENTION)
    if kind in BUNDLE_KINDS and not terms.product_feedback:
        return Storing(
            RetentionClass.ZERO_DATA_RETENTION,
            0,
            "the organisation disabled product feedback: bundles are not accepted",
        )
    if kind is ItemKind.FEEDBACK_BUNDLE:
        return _of(RetentionClass.FEEDBACK)
    if kind is ItemKind.SHARED_TRANSCRIPT:
        return _of(RetentionClass.SHARED_TRANSCRIPT)
    if kind is ItemKind.SURVEY_RATING:
        return _of(RetentionClass.SURVEY_RATING)
    account = (
        terms.account_class if terms.account_class in ORG_CLASSES else RetentionClass.COMMERCIAL
    )
    return _of(account)


def _of(retention_class: RetentionClass) -> Storing:
    return Storing(retention_class, RETENTION_DAYS[retention_class])
