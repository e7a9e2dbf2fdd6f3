"""``decide(context) -> Decisions``: every rule of the seeds, in one place.

Theory of operation
-------------------
Each flow has one function below. It starts from the flow's default for the provider, then
applies every opt-out that concerns it, collecting one reason per rule or variable that
played a part, in words that name the variable or setting and the file it came from. A flow
is switched off by any one of its opt-outs; nothing here ever switches a flow back on except
the two rules the seeds give for that (``CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST`` for metrics,
``CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL`` for the survey).

When a managed settings file could not be used, the engine fails closed: every optional flow
is off, and the WebFetch safety check stays on (switching a safety check off is not closing).
"""

from __future__ import annotations

from typing import Any

from airlock.policy import variables as v
from airlock.policy.endpoints import model_at_vendor_api, model_base_url
from airlock.policy.model import (
    Context,
    Decision,
    Decisions,
    FlowId,
    Origin,
    Provider,
    Retention,
    State,
)
from airlock.policy.retention import (
    AccountTerms,
    RetentionClass,
    account_terms,
    class_retention,
    local_period,
    operational_terms,
    vendor_retention,
)
from airlock.policy.services import ANTHROPIC_API, resolve_domain_safety_service

NONESSENTIAL = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"
DEFAULT_SURVEY_RATE_FIRST_PARTY = 0.05
"""airlock's own default: the reference does not publish its first-party built-in rate."""
DEFAULT_SURVEY_RATE_CLOUD = 0.005
"""The reference's documented built-in rate on Bedrock, Vertex and Foundry."""

_PROVIDER_SWITCHES = (
    ("CLAUDE_CODE_USE_BEDROCK", Provider.BEDROCK),
    ("CLAUDE_CODE_USE_VERTEX", Provider.VERTEX),
    ("CLAUDE_CODE_USE_FOUNDRY", Provider.FOUNDRY),
)


def resolve_provider(context: Context) -> tuple[Provider, tuple[str, ...]]:
    """Which provider model requests go to, and why.

    Bedrock, then Vertex, then Foundry, as the reference checks them; then the signed-in apps
    gateway (``airlock.gateway``); else the first-party API.
    """
    chosen: list[tuple[Provider, str]] = []
    for name, provider in _PROVIDER_SWITCHES:
        said = v.switch(context, name)
        if said is not None:
            chosen.append((provider, said))
    if chosen:
        provider, said = chosen[0]
        reasons = [f"{said} selects {provider.label}"]
        reasons += [
            f"{other} is also set but {provider.label} takes precedence" for _, other in chosen[1:]
        ]
        return provider, tuple(reasons)
    if context.gateway.value:
        origin = context.gateway.origin.describe()
        return Provider.GATEWAY, (
            f"airlock.gateway is true in {origin}: a signed-in gateway session",
        )
    return Provider.FIRST_PARTY, ("no CLAUDE_CODE_USE_BEDROCK/VERTEX/FOUNDRY set: first-party API",)


def decide(context: Context) -> Decisions:
    """Decide every flow for ``context``. Pure: same context, same decisions."""
    provider, provider_reasons = resolve_provider(context)
    terms = account_terms(context, provider)
    closed = _fail_closed_reason(context)
    survey = _survey_rating(context, provider, closed)
    flows = (
        _model_requests(context, provider, terms, closed),
        _metrics(context, provider, terms, closed),
        _error_reporting(context, provider, terms, closed),
        _feedback_command(context, provider, closed),
        survey,
        _transcript_share(context, provider, survey, closed),
        _webfetch_preflight(context, closed),
        _auto_update(context, closed),
        _local_transcripts(context),
    )
    warnings = tuple(f"managed settings file {path} is invalid" for path in context.managed_invalid)
    return Decisions(
        provider, provider_reasons, flows, fail_closed=closed is not None, warnings=warnings
    )


def _fail_closed_reason(context: Context) -> str | None:
    if not context.managed_invalid:
        return None
    paths = ", ".join(context.managed_invalid)
    return f"managed settings could not be used ({paths}): failing closed, every optional flow off"


def _off_or(default: State, reasons: list[str], offs: list[str]) -> State:
    reasons.extend(offs)
    return State.OFF if offs else default


def _model_requests(
    context: Context, provider: Provider, terms: AccountTerms, closed: str | None
) -> Decision:
    reasons = [
        f"always on: the agent needs the model ({provider.label}); prompts and outputs travel over TLS 1.2+",
        *terms.reasons,
    ]
    destination = {
        Provider.FIRST_PARTY: f"Anthropic API ({ANTHROPIC_API})",
        Provider.BEDROCK: "Amazon Bedrock (your AWS account)",
        Provider.VERTEX: "Google Cloud Vertex AI / Agent Platform (your project)",
        Provider.FOUNDRY: "Microsoft Foundry (routes to Anthropic infrastructure)",
        Provider.GATEWAY: "Claude apps gateway (signed-in)",
    }[provider]
    base = model_base_url(context, provider)
    if base is not None:  # a gateway in front of the provider
        name, url, origin = base
        destination = f"{v.shown(url)} ({name}, {origin.describe()})"
        reasons.append(f"{name} sends model requests to {v.shown(url)}")
    keeper = "Anthropic" if provider not in (Provider.BEDROCK, Provider.VERTEX) else provider.label
    vendor_api = model_at_vendor_api(context, provider)
    if not vendor_api:
        reasons.append(
            f"model requests go to {destination}, never to {ANTHROPIC_API}: a model request "
            f"sent there is refused"
        )
    startup_offs = _startup_config_offs(context, provider, closed)
    if startup_offs:
        reasons += [f"{STARTUP_CONFIG} is refused: {off}" for off in startup_offs]
    else:
        reasons.append(
            f"{STARTUP_CONFIG} goes to {ANTHROPIC_API} too; DISABLE_TELEMETRY and DO_NOT_TRACK "
            "leave it on"
        )
    return Decision(
        id=FlowId.MODEL_REQUESTS,
        state=State.ON,
        reasons=tuple(reasons),
        destination=destination,
        what="all prompts and model outputs, including code and file contents the agent reads",
        retention=vendor_retention(terms, keeper),
        training=terms.training,
        required=True,
        parameters={"vendor_api": vendor_api, "startup_config": not startup_offs},
    )


STARTUP_CONFIG = (
    "the agent's start-up configuration (bootstrap, feature availability, server URLs, the MCP "
    "server registry)"
)
"""What the ``startup_config`` parameter of the ``model_requests`` decision covers, in the
words of its reasons."""


def _startup_config_offs(context: Context, provider: Provider, closed: str | None) -> list[str]:
    """Why the agent's start-up configuration requests to the vendor's API are off; none when
    they go. They count with ``model_requests`` (no flow of the seeds is theirs; they carry
    account and version facts, no conversation), but were observed still sent with
    ``DISABLE_TELEMETRY`` or ``DO_NOT_TRACK``, never with
    ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` ("no request at all besides the model's"),
    nor on Bedrock, Vertex or Foundry ("no request to the vendor besides the model's"), with
    ``CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST`` too ("metrics requests only"). The
    organisation's remote managed settings and policy limits are not part of it: the reference
    fetches them with non-essential traffic blocked too. The decision's ``startup_config``
    parameter says whether they go; the proxy refuses them when not
    (``airlock.egress.flows``)."""
    offs: list[str] = []
    if provider.is_cloud_platform:
        offs.append(f"on {provider.label} no request goes to the vendor besides the model's")
    offs += [f"{said} turns it off" for said in v.opt_out(context, NONESSENTIAL)]
    if closed:
        offs.append(closed)
    return offs


def _metrics(
    context: Context, provider: Provider, terms: AccountTerms, closed: str | None
) -> Decision:
    reasons: list[str] = []
    default = State.ON
    if provider.is_cloud_platform:
        host = v.switch(context, "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST")
        if host is not None:
            reasons.append(
                f"{host}: metrics default on for {provider.label}, following DISABLE_TELEMETRY"
            )
        else:
            default = State.OFF
            reasons.append(f"off by default on {provider.label}")
    else:
        reasons.append(f"on by default for {provider.label}")
    offs = [f"{said} turns metrics off" for said in _telemetry_opt_outs(context)]
    if closed:
        offs.append(closed)
    return Decision(
        id=FlowId.METRICS,
        state=_off_or(default, reasons, offs),
        reasons=tuple(reasons),
        destination=f"Statsig operational metrics ({ANTHROPIC_API}/api/event_logging)",
        what="latency, reliability and usage events, platform and version, session and device ids "
        "(with feature-flag requests); never code or file paths; failed batches wait on disk "
        "(<config dir>/telemetry/) for a later retry",
        retention=vendor_retention(operational_terms(terms), "Statsig / Anthropic"),
        training="never: operational metrics only",
    )


def _telemetry_opt_outs(context: Context) -> list[str]:
    return [
        *v.opt_out(context, "DISABLE_TELEMETRY"),
        *v.opt_out(context, "DO_NOT_TRACK"),
        *v.opt_out(context, NONESSENTIAL),
    ]


def _error_reporting(
    context: Context, provider: Provider, terms: AccountTerms, closed: str | None
) -> Decision:
    reasons: list[str] = []
    default = State.ON
    if provider.is_cloud_platform:
        default = State.OFF
        reasons.append(f"off by default on {provider.label}")
        if v.switch(context, "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST") is not None:
            reasons.append("CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST leaves error reporting off")
    else:
        reasons.append(f"on by default for {provider.label}")
    offs = [
        f"{said} turns error reporting off"
        for said in (
            *v.opt_out(context, "DISABLE_ERROR_REPORTING"),
            *v.opt_out(context, NONESSENTIAL),
        )
    ]
    if closed:
        offs.append(closed)
    return Decision(
        id=FlowId.ERROR_REPORTING,
        state=_off_or(default, reasons, offs),
        reasons=tuple(reasons),
        destination="Sentry (operational error logs)",
        what="error messages and stack traces of the agent itself, with code and file paths scrubbed",
        retention=vendor_retention(operational_terms(terms), "Sentry / Anthropic"),
        training="never: operational error logs only",
    )


def _feedback_command(context: Context, provider: Provider, closed: str | None) -> Decision:
    reasons: list[str] = []
    default = State.ON
    if provider.is_cloud_platform:
        default = State.OFF
        reasons.append(f"off by default on {provider.label}")
    else:
        reasons.append(f"on by default for {provider.label}")
    offs = [
        f"{said} turns /feedback off"
        for said in (
            *v.opt_out(context, "DISABLE_FEEDBACK_COMMAND"),
            *v.opt_out(context, "DISABLE_BUG_COMMAND"),
            *v.opt_out(context, NONESSENTIAL),
        )
    ]
    offs += _organisation_offs(context, "a /feedback report is kept 5 years")
    if closed:
        offs.append(closed)
    return Decision(
        id=FlowId.FEEDBACK_COMMAND,
        state=_off_or(default, reasons, offs),
        reasons=tuple(reasons),
        destination=f"Anthropic ({ANTHROPIC_API}); optionally a GitHub issue you open yourself",
        what="your description and the full conversation history including code, secrets redacted",
        retention=class_retention(RetentionClass.FEEDBACK, "5 years", "Anthropic"),
        training="may be used to improve products and services",
    )


def _organisation_offs(context: Context, why_zdr: str) -> list[str]:
    offs = []
    if context.zero_data_retention.value:
        where = context.zero_data_retention.origin.describe()
        offs.append(f"zero data retention is on ({where}): {why_zdr}, which ZDR does not allow")
    if context.product_feedback_disabled.value:
        where = context.product_feedback_disabled.origin.describe()
        offs.append(f"the organisation disabled product feedback ({where})")
    return offs


def _survey_rate(context: Context, provider: Provider) -> tuple[float, str]:
    rate = context.feedback_survey_rate
    if rate.value is not None:
        return rate.value, f"feedbackSurveyRate={rate.value:g} in {rate.origin.describe()}"
    if provider.is_cloud_platform:
        return (
            DEFAULT_SURVEY_RATE_CLOUD,
            f"built-in rate {DEFAULT_SURVEY_RATE_CLOUD:g} on {provider.label}",
        )
    return (
        DEFAULT_SURVEY_RATE_FIRST_PARTY,
        f"airlock's default rate {DEFAULT_SURVEY_RATE_FIRST_PARTY:g}",
    )


OTEL_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")


def _otel_endpoint(context: Context) -> tuple[str, str] | None:
    found = _otel_endpoint_variable(context)
    if found is None:
        return None
    name, value, origin = found
    return value, f"{name}={v.shown(value)} in {origin.describe()}"


def _otel_endpoint_variable(context: Context) -> tuple[str, str, Origin] | None:
    for name in OTEL_ENDPOINT_VARIABLES:
        found = v.first(context, name)
        if found is not None:
            return name, found[0], found[1]
    return None


def _survey_rating(context: Context, provider: Provider, closed: str | None) -> Decision:
    rate, rate_reason = _survey_rate(context, provider)
    reasons = [f"runs regardless of provider; {rate_reason} is the chance a session is asked"]
    state = State.ON
    destination = f"Anthropic ({ANTHROPIC_API})"
    disabled = v.opt_out(context, "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY")
    blockers = _telemetry_opt_outs(context)
    if closed:
        reasons.append(closed)
        state = State.OFF
    elif disabled:
        reasons += [f"{said} turns the survey off" for said in disabled]
        otel = v.switch(context, "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL")
        if otel is not None:
            reasons.append(
                f"{otel} does not bring it back: CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY wins"
            )
        state = State.OFF
    elif blockers:
        reasons += [f"{said} turns the survey off" for said in blockers]
        state, destination = _survey_for_otel(context, reasons, destination)
    if state is not State.OFF and rate == 0:
        reasons.append("feedbackSurveyRate is 0: no session is ever asked")
        state = State.OFF
    keeper = "your OpenTelemetry collector" if state is State.OTEL_ONLY else "Anthropic"
    retention = class_retention(RetentionClass.SURVEY_RATING, "the rating only", keeper)
    if context.zero_data_retention.value and state is State.ON:
        retention = class_retention(
            RetentionClass.ZERO_DATA_RETENTION, "nothing persisted (zero data retention)", keeper
        )
        reasons.append(
            f"zero data retention is on ({context.zero_data_retention.origin.describe()}): "
            "the rating is counted, not kept"
        )
    return Decision(
        id=FlowId.SURVEY_RATING,
        state=state,
        reasons=tuple(reasons),
        destination=destination,
        what='the rating alone ("Good", "Fine", "Bad" or "Dismiss"); never a transcript',
        retention=retention,
        training="never: survey answers cannot be used to train models",
        parameters=_survey_parameters(context, state, rate),
    )


def _survey_parameters(context: Context, state: State, rate: float) -> dict[str, Any]:
    """The rate, and in ``otel_only`` mode the user's OTLP endpoint and its variable."""
    parameters: dict[str, Any] = {"rate": rate}
    found = _otel_endpoint_variable(context) if state is State.OTEL_ONLY else None
    if found is not None:
        parameters["otel_endpoint"] = found[1]
        parameters["otel_endpoint_variable"] = found[0]
    return parameters


def _survey_for_otel(context: Context, reasons: list[str], destination: str) -> tuple[State, str]:
    otel = v.switch(context, "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL")
    if otel is None:
        return State.OFF, destination
    endpoint = _otel_endpoint(context)
    if endpoint is None:
        reasons.append(f"{otel} is set, but no OpenTelemetry collector is configured: no survey")
        return State.OFF, destination
    reasons.append(f"{otel} brings the survey back for your own collector only ({endpoint[1]})")
    return State.OTEL_ONLY, f"your OpenTelemetry collector ({v.shown(endpoint[0])})"


def _transcript_share(
    context: Context, provider: Provider, survey: Decision, closed: str | None
) -> Decision:
    reasons: list[str] = []
    offs: list[str] = []
    if closed:
        offs.append(closed)
    offs += _organisation_offs(context, "a shared transcript is kept 6 months")
    offs += [
        f"{said} blocks the transcript-share follow-up" for said in v.opt_out(context, NONESSENTIAL)
    ]
    if survey.state is State.OTEL_ONLY:
        offs.append(
            "the survey runs in otel_only mode: the transcript-share follow-up stays disabled"
        )
    elif survey.state is State.OFF and not offs:
        offs.append("the follow-up only comes after the rating survey, which is off")
    declined = context.transcript_share_declined
    if declined.value:
        offs.append(f'you chose "Don\'t ask again" ({declined.origin.describe()})')
    local = provider.is_cloud_platform or provider is Provider.GATEWAY
    if local:
        reasons.append(
            f"on {provider.label}, Yes writes a local archive under ~/.claude/feedback-bundles/; "
            "nothing leaves the machine until you forward it"
        )
        default, destination = State.LOCAL_ARCHIVE, "this machine (~/.claude/feedback-bundles/)"
        retention = class_retention(
            RetentionClass.SHARED_TRANSCRIPT,
            "kept here until you forward or delete it; 6 months once forwarded",
            "this machine",
        )
    else:
        reasons.append(f"on {provider.label}, Yes uploads the redacted bundle")
        default, destination = State.UPLOAD, f"Anthropic ({ANTHROPIC_API})"
        retention = class_retention(RetentionClass.SHARED_TRANSCRIPT, "up to 6 months", "Anthropic")
    return Decision(
        id=FlowId.TRANSCRIPT_SHARE,
        state=_off_or(default, reasons, offs),
        reasons=tuple(reasons),
        destination=destination,
        what="the session transcript, subagent transcripts and raw session log; known key and "
        "token patterns redacted, code and file contents as-is",
        retention=retention,
        training="never: survey answers and shared transcripts cannot be used to train models",
    )


def _webfetch_preflight(context: Context, closed: str | None) -> Decision:
    skip = context.skip_webfetch_preflight
    reasons = ["on for every provider"]
    if v.opt_out(context, NONESSENTIAL):
        reasons.append(f"{NONESSENTIAL} does not affect the WebFetch safety check")
    state = State.ON
    if closed:
        reasons.append("stays on while failing closed: a safety check is never dropped")
    elif skip.value:
        reasons.append(f"skipWebFetchPreflight is true in {skip.origin.describe()}")
        state = State.OFF
    service, said = resolve_domain_safety_service(context)
    reasons.append(said)
    private = context.webfetch_private_mode
    if private.value:
        reasons.append(
            f"airlock.webFetchPrivateMode is true in {private.origin.describe()}: only a short "
            "hash prefix of the hostname and its parent domains is sent"
        )
    endpoint = "domain_hashes" if private.value else "domain_info"
    what = (
        "a short hash prefix of the hostname and of its parent domains, never the hostname"
        if private.value
        else "the hostname alone, never the URL, path or page"
    )
    return Decision(
        id=FlowId.WEBFETCH_PREFLIGHT,
        state=state,
        reasons=tuple(reasons),
        destination=f"domain-safety service ({v.shown(service)}/api/web/{endpoint})",
        what=what,
        retention=(
            Retention("not stated by the vendor", None, "Anthropic", "none")
            if service == f"https://{ANTHROPIC_API}"
            else Retention(
                "as its operator keeps it", None, f"the operator of {v.shown(service)}", "none"
            )
        ),
        training="never: hostnames only",
        parameters={"service": service, "private_mode": bool(private.value)},
    )


def _auto_update(context: Context, closed: str | None) -> Decision:
    reasons = ["on by default"]
    offs = [
        f"{said} turns auto-update off"
        for said in (*v.opt_out(context, "DISABLE_AUTOUPDATER"), *v.opt_out(context, NONESSENTIAL))
    ]
    setting = context.auto_updates
    if not setting.value:
        offs.append(f"autoUpdates is false in {setting.origin.describe()}")
    if closed:
        offs.append(closed)
    return Decision(
        id=FlowId.AUTO_UPDATE,
        state=_off_or(State.ON, reasons, offs),
        reasons=tuple(reasons),
        destination="the distribution server (package registry or download host)",
        what="the installed version and platform, to find and download updates",
        retention=Retention("not stated by the vendor", None, "distribution server", "none"),
        training="never",
    )


def _local_transcripts(context: Context) -> Decision:
    period = local_period(context)
    parameters: dict[str, Any] = {"cleanup_period_days": period.days}
    if period.shortened_by_project is not None:
        parameters["shortened_by_project"] = period.shortened_by_project
    return Decision(
        id=FlowId.LOCAL_TRANSCRIPTS,
        state=State.ON,
        reasons=("transcripts are cached on this machine for session resumption", period.reason),
        destination="this machine (<config dir>/projects/)",
        what="full transcripts of every session: prompts, outputs, tool calls and file contents",
        retention=Retention(
            f"{period.days} days after last activity", period.days, "this machine", "local"
        ),
        training="never: stays on this machine",
        required=True,
        parameters=parameters,
    )
