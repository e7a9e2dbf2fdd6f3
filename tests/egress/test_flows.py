"""The signature table, enforcement from the engine's decisions, and the flow report."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.egress.flows import (
    AGENT_SIGNATURES,
    UNCLASSIFIED,
    classify,
    compare,
    enforce,
    refusal_body,
)
from airlock.policy import FlowId, decide
from tests.policy.helpers import context

CLASSIFIED = [
    pytest.param(
        "POST", "api.anthropic.com", "/v1/messages?beta=true", "model_requests", id="model"
    ),
    pytest.param(
        "POST", "API.Anthropic.COM.", "/v1/messages", "model_requests", id="host_case_and_dot"
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/claude_cli/bootstrap",
        "model_requests",
        id="bootstrap_is_startup_config",
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/claude_code/settings",
        "model_requests",
        id="remote_settings",
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/claude_code/policy_limits",
        "model_requests",
        id="policy_limits",
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/claude_code_penguin_mode",
        "model_requests",
        id="penguin_mode",
    ),
    pytest.param(
        "GET", "api.anthropic.com", "/api/directory/server-urls", "model_requests", id="server_urls"
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/mcp-registry/v0/servers?version=latest",
        "model_requests",
        id="mcp_registry_is_startup_config",
    ),
    pytest.param(
        "POST", "api.anthropic.com", "/api/event_logging/v2/batch", "metrics", id="metrics_batch"
    ),
    pytest.param(
        "POST", "api.anthropic.com", "/api/eval/sdk-abc", "metrics", id="feature_flags_are_metrics"
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/claude_code/organizations/metrics_enabled",
        "metrics",
        id="metrics_enabled",
    ),
    pytest.param(
        "GET",
        "api.anthropic.com",
        "/api/web/domain_info?domain=example.org",
        "webfetch_preflight",
        id="preflight",
    ),
    pytest.param(
        "GET",
        "safety.example.net",
        "/api/web/domain_hashes?p=ab12",
        "webfetch_preflight",
        id="preflight_own_service",
    ),
    pytest.param(
        "POST", "api.anthropic.com", "/api/claude_cli_feedback", "feedback_command", id="feedback"
    ),
    pytest.param(
        "POST",
        "api.anthropic.com",
        "/api/claude_code_shared_session_transcripts",
        "transcript_share",
        id="transcript_share",
    ),
    pytest.param(
        "POST",
        "api.anthropic.com",
        "/api/claude_code/feedback_survey",
        "survey_rating",
        id="survey",
    ),
    pytest.param(
        "POST", "o1.ingest.us.sentry.io", "/api/42/envelope/", "error_reporting", id="sentry"
    ),
    pytest.param(
        "GET", "registry.npmjs.org", "/@anthropic-ai%2fclaude-code", "auto_update", id="npm_update"
    ),
    pytest.param(
        "GET",
        "downloads.claude.ai",
        "/claude-code-releases/stable",
        "auto_update",
        id="native_update",
    ),
    pytest.param(
        "POST",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/x/invoke",
        "model_requests",
        id="bedrock",
    ),
    pytest.param("GET", "api.anthropic.com", "/v1/messages", UNCLASSIFIED, id="wrong_method"),
    pytest.param("POST", "example.org", "/v1/messages", UNCLASSIFIED, id="model_path_elsewhere"),
    pytest.param("GET", "registry.npmjs.org", "/left-pad", UNCLASSIFIED, id="other_package"),
    pytest.param("POST", "api.anthropic.com", "/api/unknown", UNCLASSIFIED, id="unknown_path"),
]


@pytest.mark.parametrize(("method", "host", "path", "flow"), CLASSIFIED)
def test_classify(method: str, host: str, path: str, flow: str) -> None:
    """Each observed or documented request is named by its flow; anything else is unclassified."""
    assert classify(method, host, path) == flow


def test_api_hosts_stand_in_for_the_vendor() -> None:
    """A stand-in API host given by the run is matched like api.anthropic.com."""
    assert classify("POST", "127.0.0.1", "/api/event_logging/v2/batch") == UNCLASSIFIED
    hosts = {"api.anthropic.com", "127.0.0.1"}
    assert (
        classify("POST", "127.0.0.1", "/api/event_logging/v2/batch", api_hosts=hosts) == "metrics"
    )


def test_every_signature_names_an_engine_flow_and_a_reason() -> None:
    """Every row of every table maps to a flow the engine decides and says why."""
    flows = {str(flow) for flow in FlowId}
    for table in AGENT_SIGNATURES.values():
        for row in table:
            assert str(row.flow) in flows
            assert row.why


def test_unknown_agent_is_an_error() -> None:
    """Asking for a table that does not exist fails instead of classifying nothing."""
    with pytest.raises(KeyError):
        classify("GET", "h", "/", agent="nope")


@given(st.sampled_from(["GET", "POST", "PUT"]), st.text(max_size=30), st.text(max_size=60))
def test_classify_is_total(method: str, host: str, path: str) -> None:
    """Whatever the request, the answer is a flow id or unclassified, never an error."""
    assert classify(method, host, path) in {str(f) for f in FlowId} | {UNCLASSIFIED}


ENFORCED = [
    pytest.param({}, "metrics", True, None, id="default_metrics_on"),
    pytest.param(
        {"DISABLE_TELEMETRY": "1"}, "metrics", False, "DISABLE_TELEMETRY", id="telemetry_off"
    ),
    pytest.param({"DO_NOT_TRACK": "1"}, "metrics", False, "DO_NOT_TRACK", id="do_not_track"),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        "feedback_command",
        False,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
        id="nonessential_feedback",
    ),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        "webfetch_preflight",
        True,
        None,
        id="nonessential_keeps_preflight",
    ),
    pytest.param(
        {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"},
        "model_requests",
        True,
        None,
        id="model_always",
    ),
    pytest.param(
        {"DISABLE_ERROR_REPORTING": "1"},
        "error_reporting",
        False,
        "DISABLE_ERROR_REPORTING",
        id="error_reporting_off",
    ),
    pytest.param(
        {"CLAUDE_CODE_USE_BEDROCK": "1"},
        "metrics",
        False,
        "off by default on Amazon Bedrock",
        id="bedrock_default_off",
    ),
    pytest.param(
        {"CLAUDE_CODE_USE_BEDROCK": "1"},
        "transcript_share",
        False,
        "local",
        id="local_archive_is_not_sent",
    ),
    pytest.param(
        {"DISABLE_AUTOUPDATER": "1"}, "auto_update", False, "DISABLE_AUTOUPDATER", id="autoupdater"
    ),
    pytest.param({}, UNCLASSIFIED, True, None, id="unclassified_left_to_host_rules"),
]


@pytest.mark.parametrize(("environ", "flow", "allowed", "named"), ENFORCED)
def test_enforce(environ: dict[str, str], flow: str, allowed: bool, named: str | None) -> None:
    """A flow the engine turns off is refused with a reason naming the flow and what turned it off."""
    verdict = enforce(flow, decide(context(environ)))
    assert verdict.allowed is allowed
    if named is not None:
        assert named in verdict.reason
        assert flow in verdict.reason


def test_enforce_setting_named_with_its_file() -> None:
    """A setting that turns a flow off is named with the file it came from."""
    verdict = enforce("webfetch_preflight", decide(context(skip_webfetch_preflight=True)))
    assert not verdict.allowed
    assert "skipWebFetchPreflight" in verdict.reason
    assert "/home/u/.claude/settings.json" in verdict.reason


def test_refusal_body_names_flow_and_variable_not_query() -> None:
    """The 403 body names the flow and the variable, and leaves the query string out."""
    verdict = enforce("metrics", decide(context({"DISABLE_TELEMETRY": "1"})))
    body = refusal_body(
        verdict, "POST", "api.anthropic.com", "/api/event_logging/v2/batch?k=s3cr3t"
    )
    assert b"metrics" in body
    assert b"DISABLE_TELEMETRY" in body
    assert b"s3cr3t" not in body


def test_compare_flags_what_the_engine_did_not_predict() -> None:
    """The report lists every sending flow, flags a sent flow predicted off, and unclassified traffic."""
    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    records = [
        {"flow": "model_requests", "decision": "allow", "bytes_out": 10, "bytes_in": 20},
        {"flow": "model_requests", "decision": "allow", "bytes_out": 1, "bytes_in": 2},
        {"flow": "metrics", "decision": "deny", "bytes_out": 0, "bytes_in": 0},
        {"flow": UNCLASSIFIED, "decision": "allow", "bytes_out": 5, "bytes_in": 5},
        {"host": "tunnel.example", "decision": "allow", "bytes_out": 7},
    ]
    rows = {row.flow: row for row in compare(records, decisions)}
    assert "local_transcripts" not in rows
    model = rows["model_requests"]
    assert (model.allowed, model.refused, model.bytes_out, model.bytes_in) == (2, 0, 11, 22)
    assert model.difference == ""
    assert rows["metrics"].refused == 1
    assert "predicted off" in rows["metrics"].difference
    assert rows[UNCLASSIFIED].difference
    assert rows["feedback_command"].allowed == 0
    assert rows["feedback_command"].difference == ""
