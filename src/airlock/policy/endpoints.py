"""The network hosts each data flow talks to, for the flows the engine has on.

``airlock run``'s proxy lets out, by default, exactly these hosts: the engine's decisions say
which flows are on, and this table says where each one goes, by provider. A flow that is off,
or that stays on this machine, has no host. A host a variable names is the flow's: a model
gateway's (``ANTHROPIC_BASE_URL`` and each provider's own), the domain-safety service's, and
in ``otel_only`` mode the survey's OpenTelemetry collector. A host the seeds do not name
(Sentry's ingest host, the signed-in apps gateway's, the distribution server) is not
guessed: the user allows it by rule. Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from airlock.policy import variables as v
from airlock.policy.model import Context, Decisions, FlowId, Origin, Provider, State
from airlock.policy.services import ANTHROPIC_API

MODEL_HOSTS: dict[Provider, tuple[str, ...]] = {
    Provider.FIRST_PARTY: (ANTHROPIC_API,),
    Provider.BEDROCK: (),
    Provider.VERTEX: (
        "*-aiplatform.googleapis.com",
        "aiplatform.googleapis.com",
        "aiplatform.*.rep.googleapis.com",
        "oauth2.googleapis.com",
    ),
    Provider.FOUNDRY: (),
    Provider.GATEWAY: (),
}
"""Where model requests go, per provider, when no variable names the host (wildcards in the
web-fetch rule syntax). Vertex's are the reference's for its regions: ``REGION-aiplatform``,
``aiplatform`` for ``global`` and ``aiplatform.us.rep`` / ``aiplatform.eu.rep`` for the
multi-regions (``CLOUD_ML_REGION=us``), and Google's token endpoint, where the reference
exchanges the Google credentials (a service account's key, a user's) for an access token
before its first model request. Bedrock's and Foundry's are named by variables only
(:func:`_model_hosts`): a wildcard would also let out ``bedrock-runtime.s3.amazonaws.com``
(an S3 bucket's host, anyone's) or any Azure customer's ``NAME.services.ai.azure.com``."""

BASE_URL_VARIABLES: dict[Provider, str] = {
    Provider.FIRST_PARTY: "ANTHROPIC_BASE_URL",
    Provider.BEDROCK: "ANTHROPIC_BEDROCK_BASE_URL",
    Provider.VERTEX: "ANTHROPIC_VERTEX_BASE_URL",
    Provider.FOUNDRY: "ANTHROPIC_FOUNDRY_BASE_URL",
}
"""The variable that sends each provider's model requests elsewhere (a gateway), as the
reference reads them: each only for its own provider."""

BEDROCK_REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
"""Where the reference finds Bedrock's region, the first that holds one."""
BEDROCK_FAST_MODEL_REGION = "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION"
"""The region of the reference's small, fast model on Bedrock, when it is another."""

_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
"""One DNS label (an AWS region, an Azure resource name)."""

VENDOR_FLOWS = frozenset(
    {
        FlowId.METRICS,
        FlowId.FEEDBACK_COMMAND,
        FlowId.SURVEY_RATING,
        FlowId.TRANSCRIPT_SHARE,
    }
)
"""Flows that go to the vendor's API host when on (see each decision's destination)."""


def flow_hosts(context: Context, decisions: Decisions) -> tuple[tuple[FlowId, str], ...]:
    """``(flow, host pattern)`` for every flow the engine has on that leaves the machine."""
    found: list[tuple[FlowId, str]] = []
    for decision in decisions:
        if not decision.active:
            continue
        if decision.id is FlowId.MODEL_REQUESTS:
            found.extend((decision.id, host) for host in _model_hosts(context, decisions.provider))
            if decision.parameters.get("startup_config"):  # the agent's start-up configuration
                found.append((decision.id, ANTHROPIC_API))
        elif decision.id in VENDOR_FLOWS and decision.state in (State.ON, State.UPLOAD):
            found.append((decision.id, ANTHROPIC_API))
        elif decision.id is FlowId.SURVEY_RATING and decision.state is State.OTEL_ONLY:
            # the user's own collector, named by the variable the decision names
            host = _hostname(str(decision.parameters.get("otel_endpoint", "")))
            if host:
                found.append((decision.id, host))
        elif decision.id is FlowId.WEBFETCH_PREFLIGHT:
            host = _hostname(str(decision.parameters.get("service", "")))
            if host:
                found.append((decision.id, host))
    return tuple(dict.fromkeys(found))


def model_base_url(context: Context, provider: Provider) -> tuple[str, str, Origin] | None:
    """The variable that sends ``provider``'s model requests elsewhere, when set: its name,
    its value and where it was set; ``None`` when the provider's own host is used."""
    name = BASE_URL_VARIABLES.get(provider)
    found = v.first(context, name) if name else None
    return None if name is None or found is None else (name, found[0], found[1])


def model_at_vendor_api(context: Context, provider: Provider) -> bool:
    """Whether model requests may go to the vendor's own API host (``api.anthropic.com``).

    Yes for the first-party API and a signed-in gateway session (whose host is not known),
    unless a base URL variable (:data:`BASE_URL_VARIABLES`) names another host; no on
    Bedrock, Vertex and Foundry, whose model requests go to the cloud's own hosts (or to the
    gateway their variable names): prompts sent to the vendor's API there are not the model
    requests the engine decided, and the proxy refuses them
    (``airlock.egress.flows``)."""
    base = model_base_url(context, provider)
    if base is not None:
        host = _hostname(base[1])
        return host is not None and host.rstrip(".") == ANTHROPIC_API
    return provider in (Provider.FIRST_PARTY, Provider.GATEWAY)


def _model_hosts(context: Context, provider: Provider) -> tuple[str, ...]:
    """The provider's model hosts: its base URL's when set (:data:`BASE_URL_VARIABLES`); for
    Bedrock the region's (:data:`BEDROCK_REGION_VARIABLES`) and the small, fast model's
    (:data:`BEDROCK_FAST_MODEL_REGION`) runtime hosts, and the region's control plane
    (``bedrock.REGION.amazonaws.com``, where the reference asks for the account's inference
    profiles, ``GET /inference-profiles``, before its first model request), for Foundry the resource's
    (``ANTHROPIC_FOUNDRY_RESOURCE``); else the table's. None when nothing names it: the user
    allows it by rule."""
    base = model_base_url(context, provider)
    if base is not None:
        host = _hostname(base[1])
        return (host,) if host else ()
    if provider is Provider.BEDROCK:
        region = _bedrock_region(context)
        regions = (region, _label(context, BEDROCK_FAST_MODEL_REGION))
        hosts = [f"bedrock-runtime.{each}.amazonaws.com" for each in regions if each]
        if region:  # the control plane: the reference lists the inference profiles there
            hosts.append(f"bedrock.{region}.amazonaws.com")
        return tuple(dict.fromkeys(hosts))
    if provider is Provider.FOUNDRY:
        resource = _label(context, "ANTHROPIC_FOUNDRY_RESOURCE")
        return (f"{resource}.services.ai.azure.com",) if resource else ()
    return MODEL_HOSTS[provider]


def _bedrock_region(context: Context) -> str | None:
    """Bedrock's region: the first of :data:`BEDROCK_REGION_VARIABLES` that holds one (a
    value that is no region is passed over, as the reference does); ``None`` when none does."""
    for name in BEDROCK_REGION_VARIABLES:
        region = _label(context, name)
        if region:
            return region
    return None


def _hostname(url: str) -> str | None:
    """The host ``url`` names; ``None`` when it names none, or is no URL Python reads (an
    unbalanced ``[``: "Invalid IPv6 URL"): no host is then let out for it."""
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None


def _label(context: Context, name: str) -> str | None:
    """The variable's value when it is one DNS label (lower-cased); else ``None``."""
    found = v.first(context, name)
    value = found[0].strip().lower() if found is not None else ""
    return value if _LABEL.match(value) else None
