"""The network hosts each data flow talks to, for the flows the engine has on.

``airlock run``'s proxy lets out, by default, exactly these hosts: the engine's decisions say
which flows are on, and this table says where each one goes, by provider. A flow that is off,
or that stays on this machine, has no host. A host the seeds do not name (Sentry's ingest
host, the gateway's, the distribution server) is not guessed: the user allows it by rule.
Pure: no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from airlock.policy import variables as v
from airlock.policy.model import Context, Decisions, FlowId, Provider, State
from airlock.policy.services import ANTHROPIC_API

MODEL_HOSTS: dict[Provider, tuple[str, ...]] = {
    Provider.FIRST_PARTY: (ANTHROPIC_API,),
    Provider.BEDROCK: (),
    Provider.VERTEX: ("*-aiplatform.googleapis.com", "aiplatform.googleapis.com"),
    Provider.FOUNDRY: (),
    Provider.GATEWAY: (),
}
"""Where model requests go, per provider, when no variable names the host (wildcards in the
web-fetch rule syntax). Bedrock's and Foundry's are named by variables only
(:func:`_model_hosts`): a wildcard would also let out ``bedrock-runtime.s3.amazonaws.com``
(an S3 bucket's host, anyone's) or any Azure customer's ``NAME.services.ai.azure.com``."""

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
        elif decision.id in VENDOR_FLOWS and decision.state in (State.ON, State.UPLOAD):
            found.append((decision.id, ANTHROPIC_API))
        elif decision.id is FlowId.WEBFETCH_PREFLIGHT:
            host = _hostname(str(decision.parameters.get("service", "")))
            if host:
                found.append((decision.id, host))
    return tuple(dict.fromkeys(found))


def _model_hosts(context: Context, provider: Provider) -> tuple[str, ...]:
    """The provider's model host: its base URL's when set (``ANTHROPIC_BASE_URL``,
    ``ANTHROPIC_BEDROCK_BASE_URL``, ``ANTHROPIC_FOUNDRY_BASE_URL``); for Bedrock the region's
    (``AWS_REGION``), for Foundry the resource's (``ANTHROPIC_FOUNDRY_RESOURCE``); else the
    table's. None when nothing names it: the user allows it by rule."""
    base_variable = {
        Provider.FIRST_PARTY: "ANTHROPIC_BASE_URL",
        Provider.BEDROCK: "ANTHROPIC_BEDROCK_BASE_URL",
        Provider.FOUNDRY: "ANTHROPIC_FOUNDRY_BASE_URL",
    }.get(provider)
    base = v.first(context, base_variable) if base_variable else None
    if base is not None:
        host = _hostname(base[0])
        return (host,) if host else ()
    if provider is Provider.BEDROCK:
        region = _label(context, "AWS_REGION")
        return (f"bedrock-runtime.{region}.amazonaws.com",) if region else ()
    if provider is Provider.FOUNDRY:
        resource = _label(context, "ANTHROPIC_FOUNDRY_RESOURCE")
        return (f"{resource}.services.ai.azure.com",) if resource else ()
    return MODEL_HOSTS[provider]


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
