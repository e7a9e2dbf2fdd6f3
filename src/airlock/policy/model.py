"""The vocabulary of the policy engine: what it is told and what it answers.

Everything here is a frozen value. The settings adapter (``airlock.settings``) builds a
:class:`Context` from files and the environment; :func:`airlock.policy.decide` turns it into
:class:`Decisions`. Nothing in this package does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

T = TypeVar("T")

DEFAULT_CLEANUP_PERIOD_DAYS = 30
"""``cleanupPeriodDays`` when no settings file sets it (the reference's default)."""


class FlowId(StrEnum):
    """One data flow of the agent, named as in the CLI and the JSON output."""

    MODEL_REQUESTS = "model_requests"
    METRICS = "metrics"
    ERROR_REPORTING = "error_reporting"
    FEEDBACK_COMMAND = "feedback_command"
    SURVEY_RATING = "survey_rating"
    TRANSCRIPT_SHARE = "transcript_share"
    WEBFETCH_PREFLIGHT = "webfetch_preflight"
    AUTO_UPDATE = "auto_update"
    LOCAL_TRANSCRIPTS = "local_transcripts"


class State(StrEnum):
    """The state of a flow. Not every state applies to every flow (see the README table)."""

    ON = "on"
    OFF = "off"
    OTEL_ONLY = "otel_only"
    UPLOAD = "upload"
    LOCAL_ARCHIVE = "local_archive"


class Provider(StrEnum):
    """Where model requests go."""

    FIRST_PARTY = "first_party"
    BEDROCK = "bedrock"
    VERTEX = "vertex"
    FOUNDRY = "foundry"
    GATEWAY = "gateway"

    @property
    def label(self) -> str:
        return _PROVIDER_LABELS[self]

    @property
    def is_cloud_platform(self) -> bool:
        """Bedrock, Vertex and Foundry: the providers whose defaults differ in the seeds."""
        return self in (Provider.BEDROCK, Provider.VERTEX, Provider.FOUNDRY)


_PROVIDER_LABELS = {
    Provider.FIRST_PARTY: "Anthropic API (first-party)",
    Provider.BEDROCK: "Amazon Bedrock",
    Provider.VERTEX: "Google Cloud Vertex AI / Agent Platform",
    Provider.FOUNDRY: "Microsoft Foundry",
    Provider.GATEWAY: "Claude apps gateway (signed-in)",
}


class AccountType(StrEnum):
    """The account the agent runs under (our setting ``airlock.accountType``)."""

    UNKNOWN = "unknown"
    FREE = "free"
    PRO = "pro"
    MAX = "max"
    TEAM = "team"
    ENTERPRISE = "enterprise"
    API = "api"
    THIRD_PARTY = "third_party"
    GOV = "gov"

    @property
    def is_consumer(self) -> bool:
        return self in (AccountType.FREE, AccountType.PRO, AccountType.MAX)

    @property
    def is_commercial(self) -> bool:
        return self not in (AccountType.UNKNOWN, AccountType.FREE, AccountType.PRO, AccountType.MAX)


class Source(StrEnum):
    """Where a setting or variable came from, highest precedence first."""

    MANAGED = "managed"
    COMMAND_LINE = "command_line"
    PROJECT_LOCAL = "project_local"
    PROJECT = "project"
    USER = "user"
    ENVIRONMENT = "environment"
    DEFAULT = "default"
    STATE = "state"


@dataclass(frozen=True, slots=True)
class Origin:
    """Where one value came from: a source and, for files, the file's path."""

    source: Source
    path: str | None = None

    def describe(self) -> str:
        """Say where the value came from, in words."""
        if self.source is Source.ENVIRONMENT:
            return "the process environment"
        if self.source is Source.DEFAULT:
            return "the built-in default"
        if self.source is Source.STATE:
            return f"remembered state in {self.path}"
        where = _SOURCE_LABELS[self.source]
        return f"{where} {self.path}" if self.path else where


_SOURCE_LABELS = {
    Source.MANAGED: "managed settings",
    Source.COMMAND_LINE: "--settings file",
    Source.PROJECT_LOCAL: "project local settings",
    Source.PROJECT: "project settings",
    Source.USER: "user settings",
}


@dataclass(frozen=True, slots=True)
class Var:
    """An environment variable as the engine sees it: its value and every place that set it.

    ``values`` holds every value with its origin, highest precedence first: the settings
    files' ``env`` blocks (managed first), then the process environment. Empty values are kept,
    since an empty string cancels a variable for the sources below it. The settings adapter
    decides nothing; the engine applies the variable's own rule (``policy.variables``).
    """

    name: str
    values: tuple[tuple[str, Origin], ...] = ()


_BUILT_IN = Origin(Source.DEFAULT)


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """A resolved setting: its value and where that value came from."""

    value: T
    origin: Origin = _BUILT_IN


@dataclass(frozen=True, slots=True)
class Rule:
    """One permission rule (``WebFetch(domain:example.com)``) with the file it came from."""

    text: str
    origin: Origin


@dataclass(frozen=True, slots=True)
class Permissions:
    """The ``permissions`` lists of every settings file, unioned."""

    allow: tuple[Rule, ...] = ()
    ask: tuple[Rule, ...] = ()
    deny: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class Context:
    """Everything the engine needs to decide, resolved; no I/O is left to do.

    Built by :func:`airlock.settings.load`. ``env`` maps each variable the engine reads to
    every place it was set; a variable absent from the mapping is unset everywhere. The
    defaults below are the one table of built-in defaults: the settings adapter passes only
    what a file sets.
    """

    env: Mapping[str, Var] = field(default_factory=dict)
    account_type: Setting[AccountType] = Setting(AccountType.UNKNOWN)
    model_improvement: Setting[bool | None] = Setting(None)
    zero_data_retention: Setting[bool] = Setting(False)
    product_feedback_disabled: Setting[bool] = Setting(False)
    development_partner_program: Setting[bool] = Setting(False)
    gateway: Setting[bool] = Setting(False)
    cleanup_period_days: Setting[int] = Setting(DEFAULT_CLEANUP_PERIOD_DAYS)
    feedback_survey_rate: Setting[float | None] = Setting(None)
    skip_webfetch_preflight: Setting[bool] = Setting(False)
    domain_safety_url: Setting[str | None] = Setting(None)
    """``airlock.domainSafetyUrl``; ``AIRLOCK_DOMAIN_SAFETY_URL`` wins over it."""
    webfetch_private_mode: Setting[bool] = Setting(False)
    """``airlock.webFetchPrivateMode``: send hash prefixes instead of hostnames."""
    auto_updates: Setting[bool] = Setting(True)
    transcript_share_declined: Setting[bool] = Setting(False)
    permissions: Permissions = Permissions()
    managed_invalid: tuple[str, ...] = ()
    """Paths of managed settings files that could not be used: the engine fails closed."""
    collector_url: Setting[str | None] = Setting(None)
    """``airlock.collectorUrl``; ``AIRLOCK_COLLECTOR_URL`` wins over it."""
    cleanup_period_days_by_file: tuple[Setting[int], ...] = ()
    """``cleanupPeriodDays`` of every usable settings file that sets it, highest precedence
    first: the engine compares a project's value with the ones a repository cannot plant."""
    cleanup_period_days_problems: tuple[str, ...] = ()
    """Problems of the settings files that leave ``cleanupPeriodDays`` undetermined (a file
    that sets it, or may set it, cannot be used), each naming its file and key."""

    def var(self, name: str) -> Var:
        """The variable ``name``, empty when unset everywhere."""
        return self.env.get(name) or Var(name)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long what a flow carries is kept, and by whom."""

    summary: str
    days: int | None
    """Days kept, ``0`` for nothing persisted, ``None`` when not a fixed number of days."""
    keeper: str
    """Who keeps it: the vendor, the provider, or this machine."""
    retention_class: str = "none"
    """The class the collector files it under (``policy.retention.RetentionClass``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "days": self.days,
            "keeper": self.keeper,
            "class": self.retention_class,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    """The engine's answer for one flow."""

    id: FlowId
    state: State
    reasons: tuple[str, ...]
    destination: str
    what: str
    retention: Retention
    training: str
    """Whether what this flow carries may be used to train models, and why, in words."""
    required: bool = False
    """A required connection (solid line in the diagram) rather than an optional one."""
    parameters: Mapping[str, Any] = field(default_factory=dict)
    """Figures other parts need: the survey rate, the local retention in days, …"""

    @property
    def active(self) -> bool:
        """Whether anything flows at all."""
        return self.state is not State.OFF

    def to_json(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "state": str(self.state),
            "reasons": list(self.reasons),
            "destination": self.destination,
            "what": self.what,
            "retention": self.retention.to_json(),
            "training": self.training,
            "required": self.required,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, slots=True)
class Decisions:
    """One decision per flow, in the order of :class:`FlowId`."""

    provider: Provider
    provider_reasons: tuple[str, ...]
    flows: tuple[Decision, ...]
    fail_closed: bool = False
    warnings: tuple[str, ...] = ()

    def __getitem__(self, flow: FlowId | str) -> Decision:
        wanted = FlowId(flow)
        for decision in self.flows:
            if decision.id is wanted:
                return decision
        raise KeyError(wanted)  # pragma: no cover - every flow is always decided

    def __iter__(self) -> Iterator[Decision]:
        return iter(self.flows)

    def to_json(self) -> dict[str, Any]:
        return {
            "provider": str(self.provider),
            "provider_reasons": list(self.provider_reasons),
            "fail_closed": self.fail_closed,
            "warnings": list(self.warnings),
            "flows": [decision.to_json() for decision in self.flows],
        }
