"""The network hosts each data flow talks to, for the flows the engine has on.

``airlock run``'s proxy lets out, by default, exactly these hosts: the engine's decisions say
which flows are on, and this table says where each one goes, by provider. A flow that is off,
or that stays on this machine, has no host. A host the seeds do not name (Sentry's ingest
host, the gateway's, the distribution server) is not guessed: the user allows it by rule.
Pure: no I/O.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from airlock.policy import variables as v
from airlock.policy.model import Context, Decisions, FlowId, Provider, State
from airlock.policy.services import ANTHROPIC_API

MODEL_HOSTS: dict[Provider, tuple[str, ...]] = {
    Provider.FIRST_PARTY: (ANTHROPIC_API,),
    Provider.BEDROCK: ("bedrock-runtime.*.amazonaws.com",),
    Provider.VERTEX: ("*-aiplatform.googleapis.com", "aiplatform.googleapis.com"),
    Provider.FOUNDRY: ("*.services.ai.azure.com",),
    Provider.GATEWAY: (),
}
"""Where model requests go, per provider (wildcards in the web-fetch rule syntax)."""

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
            host = urlsplit(str(decision.parameters.get("service", ""))).hostname
            if host:
                found.append((decision.id, host))
    return tuple(dict.fromkeys(found))


def _model_hosts(context: Context, provider: Provider) -> tuple[str, ...]:
    base = v.first(context, "ANTHROPIC_BASE_URL")
    if base is not None and provider is Provider.FIRST_PARTY:
        host = urlsplit(base[0]).hostname
        return (host,) if host else ()
    return MODEL_HOSTS[provider]
