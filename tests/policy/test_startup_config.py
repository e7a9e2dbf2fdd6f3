"""The agent's start-up configuration requests (bootstrap, feature availability, server URLs,
the MCP registry) count with ``model_requests``, whose decision's ``startup_config`` says
whether they go: observed still sent with DISABLE_TELEMETRY or DO_NOT_TRACK, never with
CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC ("no request at all besides the model's"), nor on
Bedrock, Vertex or Foundry ("no request to the vendor besides the model's"), even with
CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST ("metrics requests only"). No flow is added to the
seeds' table for them."""

from __future__ import annotations

import pytest

from airlock.policy import Context, FlowId, decide
from airlock.policy.endpoints import flow_hosts
from tests.policy.helpers import context


def startup_config(environ: dict[str, str]) -> bool:
    """Whether the engine lets the start-up configuration go, for ``environ``."""
    value = decide(context(environ))[FlowId.MODEL_REQUESTS].parameters["startup_config"]
    assert isinstance(value, bool)
    return value


@pytest.mark.parametrize(
    ("environ", "goes"),
    [
        pytest.param({}, True, id="first_party"),
        pytest.param({"DISABLE_TELEMETRY": "1"}, True, id="telemetry_off_leaves_it"),
        pytest.param({"DO_NOT_TRACK": "1"}, True, id="do_not_track_leaves_it"),
        pytest.param({"DISABLE_ERROR_REPORTING": "1"}, True, id="error_reporting_off_leaves_it"),
        pytest.param({"ANTHROPIC_BASE_URL": "https://gw.example"}, True, id="base_url"),
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, False, id="nonessential"),
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}, False, id="nonessential_0"),
        pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1"}, False, id="bedrock"),
        pytest.param({"CLAUDE_CODE_USE_VERTEX": "1"}, False, id="vertex"),
        pytest.param({"CLAUDE_CODE_USE_FOUNDRY": "1"}, False, id="foundry"),
        pytest.param(
            {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST": "1"},
            False,
            id="bedrock_managed_by_host_metrics_only",
        ),
    ],
)
def test_startup_config_follows_what_was_observed(environ: dict[str, str], goes: bool) -> None:
    """On where the reference was seen sending it, off where it was seen sending none."""
    assert startup_config(environ) is goes


def test_the_flows_are_the_seeds_nine() -> None:
    """The start-up configuration is a part of ``model_requests``, not a flow of its own:
    ``airlock flows`` and the audit's ``flow`` name the seeds' flows only."""
    assert [str(decision.id) for decision in decide(context())] == [
        "model_requests",
        "metrics",
        "error_reporting",
        "feedback_command",
        "survey_rating",
        "transcript_share",
        "webfetch_preflight",
        "auto_update",
        "local_transcripts",
    ]


def test_startup_config_is_off_when_failing_closed() -> None:
    """An unusable managed settings file turns it off with every optional flow."""
    decisions = decide(Context(managed_invalid=("/etc/claude-code/managed-settings.json",)))
    decision = decisions[FlowId.MODEL_REQUESTS]
    assert decision.parameters["startup_config"] is False
    assert any("start-up configuration" in r and "failing closed" in r for r in decision.reasons)


def test_startup_config_reason_names_the_variable() -> None:
    """The refusal's words name the variable and where it was set."""
    decision = decide(context({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}))[
        FlowId.MODEL_REQUESTS
    ]
    assert any(
        "start-up configuration" in reason
        and "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC='1' in the process environment" in reason
        for reason in decision.reasons
    )


def test_the_vendor_api_is_a_model_host_while_startup_config_goes() -> None:
    """Behind a gateway (``ANTHROPIC_BASE_URL``) the start-up configuration still goes to the
    vendor's API, so that host is one of ``model_requests``'; with it off, it is not."""
    on = context({"ANTHROPIC_BASE_URL": "https://gw.example"})
    assert (FlowId.MODEL_REQUESTS, "api.anthropic.com") in flow_hosts(on, decide(on))
    off = context(
        {
            "ANTHROPIC_BASE_URL": "https://gw.example",
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        }
    )
    assert (FlowId.MODEL_REQUESTS, "api.anthropic.com") not in flow_hosts(off, decide(off))
