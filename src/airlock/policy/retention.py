"""Retention classes and training use, as the seeds state them.

The collector enforces these periods; the engine reports them. One table, read by both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from airlock.policy.model import (
    DEFAULT_CLEANUP_PERIOD_DAYS,
    AccountType,
    Context,
    Provider,
    Retention,
    Setting,
    Source,
)

FIVE_YEARS_DAYS = 5 * 365
SIX_MONTHS_DAYS = 183
THIRTY_DAYS = 30


class RetentionClass(StrEnum):
    """Names the collector stores with each record to know when it must go."""

    CONSUMER_IMPROVEMENT = "consumer_model_improvement"
    CONSUMER_STANDARD = "consumer_standard"
    COMMERCIAL = "commercial"
    ZERO_DATA_RETENTION = "zero_data_retention"
    FEEDBACK = "feedback"
    SHARED_TRANSCRIPT = "shared_transcript"
    SURVEY_RATING = "survey_rating"
    PROVIDER_TERMS = "provider_terms"
    UNDETERMINED = "undetermined"


RETENTION_DAYS: dict[RetentionClass, int | None] = {
    RetentionClass.CONSUMER_IMPROVEMENT: FIVE_YEARS_DAYS,
    RetentionClass.CONSUMER_STANDARD: THIRTY_DAYS,
    RetentionClass.COMMERCIAL: THIRTY_DAYS,
    RetentionClass.ZERO_DATA_RETENTION: 0,
    RetentionClass.FEEDBACK: FIVE_YEARS_DAYS,
    RetentionClass.SHARED_TRANSCRIPT: SIX_MONTHS_DAYS,
    # The seeds give no period for a rating; the collector keeps it as long as commercial data.
    RetentionClass.SURVEY_RATING: THIRTY_DAYS,
    RetentionClass.PROVIDER_TERMS: None,
    # Unknown account: the collector keeps the shortest period that could apply.
    RetentionClass.UNDETERMINED: THIRTY_DAYS,
}
"""Days each class is kept by the collector; ``0`` means nothing is persisted."""


@dataclass(frozen=True, slots=True)
class AccountTerms:
    """Retention and training for data the vendor receives under the account's terms."""

    retention_class: RetentionClass
    summary: str
    training: str
    reasons: tuple[str, ...]


def account_terms(context: Context, provider: Provider) -> AccountTerms:
    """Retention and training use of conversation data for this account and provider."""
    zdr = context.zero_data_retention
    if zdr.value:
        return AccountTerms(
            RetentionClass.ZERO_DATA_RETENTION,
            "nothing persisted (zero data retention)",
            "never: nothing is kept",
            (f"zero data retention is on ({zdr.origin.describe()})",),
        )
    if provider in (Provider.BEDROCK, Provider.VERTEX):
        return AccountTerms(
            RetentionClass.PROVIDER_TERMS,
            f"under {provider.label}'s terms, not Anthropic's",
            "never: the Development Partner Program is not available on "
            "Amazon Bedrock or Google Cloud's Agent Platform",
            (f"model requests go to {provider.label}",),
        )
    account = context.account_type
    kind = account.value
    if provider is Provider.FOUNDRY and kind is AccountType.UNKNOWN:
        kind = AccountType.THIRD_PARTY
    if kind.is_consumer:
        return _consumer_terms(context, kind)
    if kind.is_commercial:
        return _commercial_terms(context, provider, kind, account.origin.describe())
    return AccountTerms(
        RetentionClass.UNDETERMINED,
        "30 days (commercial), or 30 days / 5 years (consumer, by model-improvement choice)",
        "depends on the account type: set airlock.accountType to know",
        ("the account type is not set (settings key airlock.accountType)",),
    )


def _consumer_terms(context: Context, kind: AccountType) -> AccountTerms:
    choice = context.model_improvement
    where = choice.origin.describe()
    if choice.value is True:
        return AccountTerms(
            RetentionClass.CONSUMER_IMPROVEMENT,
            "5 years",
            "yes: you allow your data to be used to improve future models",
            (f"consumer account ({kind.value}) with model improvement on ({where})",),
        )
    if choice.value is False:
        return AccountTerms(
            RetentionClass.CONSUMER_STANDARD,
            "30 days",
            "no: you do not allow model improvement",
            (f"consumer account ({kind.value}) with model improvement off ({where})",),
        )
    return AccountTerms(
        RetentionClass.UNDETERMINED,
        "5 years if you allow model improvement, 30 days if not",
        "only if you allow model improvement (set airlock.modelImprovement to know)",
        (f"consumer account ({kind.value}); the model-improvement choice is not set",),
    )


def _commercial_terms(
    context: Context, provider: Provider, kind: AccountType, where: str
) -> AccountTerms:
    dpp = context.development_partner_program
    reasons = [f"commercial account ({kind.value}, {where}): 30-day retention"]
    if dpp.value and provider is Provider.FIRST_PARTY:
        training = "yes: the organisation joined the Development Partner Program"
        reasons.append(f"Development Partner Program joined ({dpp.origin.describe()})")
    elif dpp.value:
        training = (
            "never: the Development Partner Program applies to the first-party API only, "
            f"not to {provider.label}"
        )
        reasons.append("Development Partner Program is set but does not apply to this provider")
    else:
        training = "never under commercial terms"
    return AccountTerms(RetentionClass.COMMERCIAL, "30 days", training, tuple(reasons))


def operational_terms(terms: AccountTerms) -> AccountTerms:
    """Terms for metrics and error logs: the account's, except that on Bedrock and Vertex these
    still go to the vendor's own services, under commercial terms."""
    if terms.retention_class is not RetentionClass.PROVIDER_TERMS:
        return terms
    return AccountTerms(RetentionClass.COMMERCIAL, "30 days", "never under commercial terms", ())


def vendor_retention(terms: AccountTerms, keeper: str) -> Retention:
    """The :class:`Retention` of data kept under ``terms`` by ``keeper``."""
    return Retention(
        summary=terms.summary,
        days=RETENTION_DAYS[terms.retention_class],
        keeper=keeper,
        retention_class=terms.retention_class.value,
    )


def class_retention(retention_class: RetentionClass, summary: str, keeper: str) -> Retention:
    """The :class:`Retention` of a fixed class such as feedback (5 years)."""
    return Retention(
        summary=summary,
        days=RETENTION_DAYS[retention_class],
        keeper=keeper,
        retention_class=retention_class.value,
    )


TRUSTED_SOURCES = frozenset({Source.MANAGED, Source.COMMAND_LINE, Source.USER})
"""Settings sources a repository cannot plant: a project's own files are the others."""


@dataclass(frozen=True, slots=True)
class LocalPeriod:
    """How long local transcripts are kept (``cleanupPeriodDays``), and whether to trust it."""

    days: int
    reason: str
    """Where the period comes from, in words."""
    shortened_by_project: str | None
    """Why the period is suspect: a project's own settings file sets it shorter than the
    sources a repository cannot plant (or the default) would; ``None`` when it does not."""
    undetermined: str | None = None
    """Why the period cannot be relied on at all: a settings file that sets it, or may set
    it, cannot be used (unless managed settings set it, which then decide); ``None`` when the
    period is determined. Whatever removes transcripts by it must refuse."""


def local_period(context: Context) -> LocalPeriod:
    """The local transcript retention period, and whether a project's file shortened it."""
    days = context.cleanup_period_days
    reason = (
        f"cleanupPeriodDays={days.value} ({days.origin.describe()}): "
        "sessions inactive longer are pruned"
    )
    return LocalPeriod(
        days.value, reason, _shortened_by_project(context, days), _undetermined(context, days)
    )


def _undetermined(context: Context, days: Setting[int]) -> str | None:
    if not context.cleanup_period_days_problems or days.origin.source is Source.MANAGED:
        return None
    listed = "; ".join(context.cleanup_period_days_problems)
    return (
        "the settings that define the retention period (cleanupPeriodDays) cannot be used: "
        f"{listed}"
    )


def _shortened_by_project(context: Context, days: Setting[int]) -> str | None:
    if days.origin.source not in (Source.PROJECT, Source.PROJECT_LOCAL):
        return None
    trusted = next(
        (
            found
            for found in context.cleanup_period_days_by_file
            if found.origin.source in TRUSTED_SOURCES
        ),
        Setting(DEFAULT_CLEANUP_PERIOD_DAYS),
    )
    if days.value >= trusted.value:
        return None
    where = "the default" if trusted.origin.source is Source.DEFAULT else trusted.origin.describe()
    return (
        f"the retention period cleanupPeriodDays={days.value} comes from "
        f"{days.origin.describe()}, shorter than the {trusted.value} days of {where}, and "
        "applies to the sessions of every project"
    )
