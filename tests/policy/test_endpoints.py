"""Where each flow the engine has on goes: the hosts ``airlock run``'s proxy lets out by
default are the ones the reference agent sends that flow to, for every provider and every
variable that moves it (a gateway's base URL, a region, the survey's own collector)."""

from __future__ import annotations

import pytest

from airlock.policy import FlowId, decide
from airlock.policy.endpoints import flow_hosts
from airlock.policy.rules import matches, parse_domain
from tests.policy.helpers import context


def _hosts(environ: dict[str, str], flow: FlowId = FlowId.MODEL_REQUESTS) -> list[str]:
    ctx = context(environ)
    return [host for found, host in flow_hosts(ctx, decide(ctx)) if found is flow]


def _let_out(environ: dict[str, str], host: str) -> bool:
    """Whether a host pattern of the model flow covers ``host``."""
    return any(matches(parse_domain(pattern), host) for pattern in _hosts(environ))


VERTEX = {"CLAUDE_CODE_USE_VERTEX": "1"}
BEDROCK = {"CLAUDE_CODE_USE_BEDROCK": "1"}


def test_vertex_through_a_gateway_goes_to_the_gateway() -> None:
    """``ANTHROPIC_VERTEX_BASE_URL`` sends the reference's Vertex requests to a gateway: that
    host is the model's, Google's are not, and the destination names it. Each provider's
    base URL moves that provider's requests only."""
    gateway = "https://llm-gw.corp.example/vertex"
    environ = {**VERTEX, "ANTHROPIC_VERTEX_BASE_URL": gateway}
    assert _hosts(environ) == ["llm-gw.corp.example"]
    decision = decide(context(environ))[FlowId.MODEL_REQUESTS]
    assert decision.destination.startswith(gateway)
    assert "ANTHROPIC_VERTEX_BASE_URL" in decision.destination
    assert _hosts({"ANTHROPIC_VERTEX_BASE_URL": gateway}) == ["api.anthropic.com"]
    assert "llm-gw.corp.example" not in _hosts({**BEDROCK, "ANTHROPIC_VERTEX_BASE_URL": gateway})
    assert "llm-gw.corp.example" not in _hosts({**VERTEX, "ANTHROPIC_BASE_URL": gateway})


def test_a_bedrock_gateway_is_the_destination_named() -> None:
    """Through ``ANTHROPIC_BEDROCK_BASE_URL`` the destination is the gateway, not "your AWS
    account", as the hosts let out say."""
    environ = {**BEDROCK, "ANTHROPIC_BEDROCK_BASE_URL": "https://bedrock-gw.corp.example"}
    decision = decide(context(environ))[FlowId.MODEL_REQUESTS]
    assert "bedrock-gw.corp.example" in decision.destination
    assert _hosts(environ) == ["bedrock-gw.corp.example"]


def test_vertex_every_region_the_reference_uses() -> None:
    """Every host the reference's Vertex client picks for a region is the model's
    (``CLOUD_ML_REGION``: ``us-east5``, ``global``, and the multi-regions ``us`` and ``eu``),
    and no other Google host."""
    for host in (
        "us-east5-aiplatform.googleapis.com",
        "aiplatform.googleapis.com",
        "aiplatform.us.rep.googleapis.com",
        "aiplatform.eu.rep.googleapis.com",
    ):
        assert _let_out(VERTEX, host), host
    for host in ("storage.googleapis.com", "aiplatform.us.rep.evil.example", "rep.googleapis.com"):
        assert not _let_out(VERTEX, host), host


@pytest.mark.parametrize(
    ("environ", "hosts"),
    [
        (
            {"AWS_DEFAULT_REGION": "eu-north-1"},
            ["bedrock-runtime.eu-north-1.amazonaws.com", "bedrock.eu-north-1.amazonaws.com"],
        ),
        (
            {"AWS_REGION": "not a region", "AWS_DEFAULT_REGION": "eu-north-1"},
            ["bedrock-runtime.eu-north-1.amazonaws.com", "bedrock.eu-north-1.amazonaws.com"],
        ),
        (
            {"AWS_REGION": "us-west-2", "ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION": "us-east-1"},
            [
                "bedrock-runtime.us-west-2.amazonaws.com",
                "bedrock-runtime.us-east-1.amazonaws.com",
                "bedrock.us-west-2.amazonaws.com",
            ],
        ),
        (
            {"ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION": "us-east-1"},
            ["bedrock-runtime.us-east-1.amazonaws.com"],
        ),
    ],
    ids=[
        "default_region",
        "a_bad_region_passed_over",
        "fast_model_region_too",
        "fast_model_region_alone",
    ],
)
def test_bedrock_regions_as_the_reference_reads_them(
    environ: dict[str, str], hosts: list[str]
) -> None:
    """Bedrock's region is ``AWS_REGION``, else ``AWS_DEFAULT_REGION`` (the reference's
    order, a value that is no region passed over); the small, fast model's region
    (``ANTHROPIC_SMALL_FAST_MODEL_AWS_REGION``) is a model host too; so is the region's
    control plane, where the reference lists the inference profiles."""
    assert _hosts({**BEDROCK, **environ}) == hosts
    both = {"AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "eu-north-1"}
    assert _hosts({**BEDROCK, **both}) == [
        "bedrock-runtime.us-west-2.amazonaws.com",
        "bedrock.us-west-2.amazonaws.com",
    ]


def test_the_surveys_own_collector_is_its_host_in_otel_only_mode() -> None:
    """With telemetry off and the survey brought back for OpenTelemetry, the rating goes to
    the user's collector: its host is the flow's (the vendor's is not)."""
    environ = {
        "DISABLE_TELEMETRY": "1",
        "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp.example:4318",
    }
    assert decide(context(environ))[FlowId.SURVEY_RATING].state == "otel_only"
    assert _hosts(environ, FlowId.SURVEY_RATING) == ["otel.corp.example"]
    logs = {**environ, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "https://logs.corp.example/v1/logs"}
    assert _hosts(logs, FlowId.SURVEY_RATING) == ["logs.corp.example"]
    # CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY beats the OpenTelemetry switch: no host
    off = {**environ, "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1"}
    assert _hosts(off, FlowId.SURVEY_RATING) == []
