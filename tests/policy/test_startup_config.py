"""The agent's start-up configuration requests (bootstrap, feature availability, server URLs,
the MCP registry) are a flow of their own: observed still sent with
DISABLE_TELEMETRY or DO_NOT_TRACK, never with CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC ("no
request at all besides the model's"), nor on Bedrock, Vertex or Foundry ("no request to the
vendor besides the model's"), even with CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST ("metrics
requests only")."""

from __future__ import annotations

import pytest

from airlock.policy import Context, FlowId, State, decide
from airlock.policy.endpoints import flow_hosts
from tests.policy.helpers import context, states


@pytest.mark.parametrize(
    ("environ", "state"),
    [
        pytest.param({}, "on", id="first_party"),
        pytest.param({"DISABLE_TELEMETRY": "1"}, "on", id="telemetry_off_leaves_it"),
        pytest.param({"DO_NOT_TRACK": "1"}, "on", id="do_not_track_leaves_it"),
        pytest.param({"DISABLE_ERROR_REPORTING": "1"}, "on", id="error_reporting_off_leaves_it"),
        pytest.param({"ANTHROPIC_BASE_URL": "https://gw.example"}, "on", id="base_url"),
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, "off", id="nonessential"),
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "0"}, "off", id="nonessential_0"),
        pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1"}, "off", id="bedrock"),
        pytest.param({"CLAUDE_CODE_USE_VERTEX": "1"}, "off", id="vertex"),
        pytest.param({"CLAUDE_CODE_USE_FOUNDRY": "1"}, "off", id="foundry"),
        pytest.param(
            {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST": "1"},
            "off",
            id="bedrock_managed_by_host_metrics_only",
        ),
    ],
)
def test_startup_config_follows_what_was_observed(environ: dict[str, str], state: str) -> None:
    """On where the reference was seen sending it, off where it was seen sending none."""
    assert states(environ)["startup_config"] == state


def test_startup_config_is_off_when_failing_closed() -> None:
    """An unusable managed settings file turns it off with every other optional flow."""
    decisions = decide(Context(managed_invalid=("/etc/claude-code/managed-settings.json",)))
    decision = decisions[FlowId.STARTUP_CONFIG]
    assert decision.state is State.OFF
    assert any("failing closed" in reason for reason in decision.reasons)


def test_startup_config_reason_names_the_variable() -> None:
    """The refusal's words name the variable and where it was set."""
    decision = decide(context({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}))[
        FlowId.STARTUP_CONFIG
    ]
    assert any(
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC='1' in the process environment" in reason
        for reason in decision.reasons
    )


def test_startup_config_host_is_the_vendor_api_only_while_on() -> None:
    """Its host is the vendor API's while it is on; off, it names none."""
    on = context()
    assert (FlowId.STARTUP_CONFIG, "api.anthropic.com") in flow_hosts(on, decide(on))
    off = context({"CLAUDE_CODE_USE_BEDROCK": "1"})
    assert all(flow is not FlowId.STARTUP_CONFIG for flow, _ in flow_hosts(off, decide(off)))
