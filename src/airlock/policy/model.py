"""The vocabulary of the policy engine: what it is told and what it answers.

Everything here is a frozen value. The settings adapter (``airlock.settings``) builds a
:class:`Context` from files and the environment; :func:`airlock.policy.decide` turns it into
:class:`Decisions`. Nothing in this package does I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from enum import StrEnum

from airlock._frozen import frozen
from airlock._frozen import set_field as _set

# ``typing`` is not imported at run time: it costs ``airlock flows`` start-up time and the
# annotations are strings anyway. mypy reads the block below as if TYPE_CHECKING were true.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Generic, TypeVar

    T = TypeVar("T")

    class _Generic(Generic[T]):
        """``Setting[T]`` for the type checker."""

else:

    class _Generic:
        """``Setting[T]`` at run time: subscripting gives the class itself."""

        __slots__ = ()

        def __class_getitem__(cls, item: object) -> type:
            return cls


_DEFAULT: Any = object()
"""Stands for an argument not given, where the default is a fresh value."""


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


@frozen
class Origin:
    """Where one value came from: a source and, for files, the file's path."""

    __slots__ = ("path", "source")
    source: Source
    path: str | None

    def __init__(self, source: Source, path: str | None = None) -> None:
        _set(self, "source", source)
        _set(self, "path", path)

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


@frozen
class Var:
    """An environment variable as the engine sees it: its value and every place that set it.

    ``values`` holds every value with its origin, highest precedence first: the settings
    files' ``env`` blocks (managed first), then the process environment. Empty values are kept,
    since an empty string cancels a variable for the sources below it. The settings adapter
    decides nothing; the engine applies the variable's own rule (``policy.variables``).
    """

    __slots__ = ("name", "values")
    name: str
    values: tuple[tuple[str, Origin], ...]

    def __init__(self, name: str, values: tuple[tuple[str, Origin], ...] = ()) -> None:
        _set(self, "name", name)
        _set(self, "values", values)


@frozen
class Setting(_Generic["T"]):
    """A resolved setting: its value and where that value came from."""

    __slots__ = ("origin", "value")
    value: T
    origin: Origin

    def __init__(self, value: T, origin: Origin = _DEFAULT) -> None:
        _set(self, "value", value)
        _set(self, "origin", Origin(Source.DEFAULT) if origin is _DEFAULT else origin)


@frozen
class Rule:
    """One permission rule (``WebFetch(domain:example.com)``) with the file it came from."""

    __slots__ = ("origin", "text")
    text: str
    origin: Origin

    def __init__(self, text: str, origin: Origin) -> None:
        _set(self, "text", text)
        _set(self, "origin", origin)


@frozen
class Permissions:
    """The ``permissions`` lists of every settings file, unioned."""

    __slots__ = ("allow", "ask", "deny")
    allow: tuple[Rule, ...]
    ask: tuple[Rule, ...]
    deny: tuple[Rule, ...]

    def __init__(
        self, allow: tuple[Rule, ...] = (), ask: tuple[Rule, ...] = (), deny: tuple[Rule, ...] = ()
    ) -> None:
        _set(self, "allow", allow)
        _set(self, "ask", ask)
        _set(self, "deny", deny)


_SETTING_DEFAULTS: dict[str, object] = {
    "account_type": AccountType.UNKNOWN,
    "model_improvement": None,
    "zero_data_retention": False,
    "product_feedback_disabled": False,
    "development_partner_program": False,
    "gateway": False,
    "cleanup_period_days": 30,
    "feedback_survey_rate": None,
    "skip_webfetch_preflight": False,
    "domain_safety_url": None,
    "webfetch_private_mode": False,
    "auto_updates": True,
    "transcript_share_declined": False,
}
"""The value of each setting of a :class:`Context` not given (a built-in default)."""


@frozen
class Context:
    """Everything the engine needs to decide, resolved; no I/O is left to do.

    Built by :func:`airlock.settings.load`. ``env`` maps each variable the engine reads to
    every place it was set; a variable absent from the mapping is unset everywhere.
    """

    __slots__ = (
        "account_type",
        "auto_updates",
        "cleanup_period_days",
        "development_partner_program",
        "domain_safety_url",
        "env",
        "feedback_survey_rate",
        "gateway",
        "managed_invalid",
        "model_improvement",
        "permissions",
        "product_feedback_disabled",
        "skip_webfetch_preflight",
        "transcript_share_declined",
        "webfetch_private_mode",
        "zero_data_retention",
    )
    env: Mapping[str, Var]
    account_type: Setting[AccountType]
    model_improvement: Setting[bool | None]
    zero_data_retention: Setting[bool]
    product_feedback_disabled: Setting[bool]
    development_partner_program: Setting[bool]
    gateway: Setting[bool]
    cleanup_period_days: Setting[int]
    feedback_survey_rate: Setting[float | None]
    skip_webfetch_preflight: Setting[bool]
    domain_safety_url: Setting[str | None]
    """``airlock.domainSafetyUrl``; ``AIRLOCK_DOMAIN_SAFETY_URL`` wins over it."""
    webfetch_private_mode: Setting[bool]
    """``airlock.webFetchPrivateMode``: send hash prefixes instead of hostnames."""
    auto_updates: Setting[bool]
    transcript_share_declined: Setting[bool]
    permissions: Permissions
    managed_invalid: tuple[str, ...]
    """Paths of managed settings files that could not be used: the engine fails closed."""

    def __init__(
        self,
        env: Mapping[str, Var] = _DEFAULT,
        account_type: Setting[AccountType] = _DEFAULT,
        model_improvement: Setting[bool | None] = _DEFAULT,
        zero_data_retention: Setting[bool] = _DEFAULT,
        product_feedback_disabled: Setting[bool] = _DEFAULT,
        development_partner_program: Setting[bool] = _DEFAULT,
        gateway: Setting[bool] = _DEFAULT,
        cleanup_period_days: Setting[int] = _DEFAULT,
        feedback_survey_rate: Setting[float | None] = _DEFAULT,
        skip_webfetch_preflight: Setting[bool] = _DEFAULT,
        domain_safety_url: Setting[str | None] = _DEFAULT,
        webfetch_private_mode: Setting[bool] = _DEFAULT,
        auto_updates: Setting[bool] = _DEFAULT,
        transcript_share_declined: Setting[bool] = _DEFAULT,
        permissions: Permissions = _DEFAULT,
        managed_invalid: tuple[str, ...] = (),
    ) -> None:
        # A default is a fresh value each time, as a dataclass's default_factory gives.
        given = locals()  # the arguments by name, for the settings' loop below
        _set(self, "env", {} if env is _DEFAULT else env)
        for name, default in _SETTING_DEFAULTS.items():
            value = given[name]
            _set(self, name, Setting(default) if value is _DEFAULT else value)
        _set(self, "permissions", Permissions() if permissions is _DEFAULT else permissions)
        _set(self, "managed_invalid", managed_invalid)

    def var(self, name: str) -> Var:
        """The variable ``name``, empty when unset everywhere."""
        return self.env.get(name) or Var(name)


@frozen
class Retention:
    """How long what a flow carries is kept, and by whom."""

    __slots__ = ("days", "keeper", "retention_class", "summary")
    summary: str
    days: int | None
    """Days kept, ``0`` for nothing persisted, ``None`` when not a fixed number of days."""
    keeper: str
    """Who keeps it: the vendor, the provider, or this machine."""
    retention_class: str
    """The class the collector files it under (``policy.retention.RetentionClass``)."""

    def __init__(
        self, summary: str, days: int | None, keeper: str, retention_class: str = "none"
    ) -> None:
        _set(self, "summary", summary)
        _set(self, "days", days)
        _set(self, "keeper", keeper)
        _set(self, "retention_class", retention_class)

    def to_json(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "days": self.days,
            "keeper": self.keeper,
            "class": self.retention_class,
        }


@frozen
class Decision:
    """The engine's answer for one flow."""

    __slots__ = (
        "destination",
        "id",
        "parameters",
        "reasons",
        "required",
        "retention",
        "state",
        "training",
        "what",
    )
    id: FlowId
    state: State
    reasons: tuple[str, ...]
    destination: str
    what: str
    retention: Retention
    training: str
    """Whether what this flow carries may be used to train models, and why, in words."""
    required: bool
    """A required connection (solid line in the diagram) rather than an optional one."""
    parameters: Mapping[str, Any]
    """Figures other parts need: the survey rate, the local retention in days, …"""

    def __init__(
        self,
        id: FlowId,
        state: State,
        reasons: tuple[str, ...],
        destination: str,
        what: str,
        retention: Retention,
        training: str,
        required: bool = False,
        parameters: Mapping[str, Any] = _DEFAULT,
    ) -> None:
        _set(self, "id", id)
        _set(self, "state", state)
        _set(self, "reasons", reasons)
        _set(self, "destination", destination)
        _set(self, "what", what)
        _set(self, "retention", retention)
        _set(self, "training", training)
        _set(self, "required", required)
        _set(self, "parameters", {} if parameters is _DEFAULT else parameters)

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


@frozen
class Decisions:
    """One decision per flow, in the order of :class:`FlowId`."""

    __slots__ = ("fail_closed", "flows", "provider", "provider_reasons", "warnings")
    provider: Provider
    provider_reasons: tuple[str, ...]
    flows: tuple[Decision, ...]
    fail_closed: bool
    warnings: tuple[str, ...]

    def __init__(
        self,
        provider: Provider,
        provider_reasons: tuple[str, ...],
        flows: tuple[Decision, ...],
        fail_closed: bool = False,
        warnings: tuple[str, ...] = (),
    ) -> None:
        _set(self, "provider", provider)
        _set(self, "provider_reasons", provider_reasons)
        _set(self, "flows", flows)
        _set(self, "fail_closed", fail_closed)
        _set(self, "warnings", warnings)

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
