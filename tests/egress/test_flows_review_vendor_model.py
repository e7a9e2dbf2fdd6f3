"""Model requests to the vendor's own API while the engine sends them elsewhere, and the
start-up configuration requests where the reference sends none.

On Bedrock, Vertex or Foundry, or with a base URL naming a gateway, the engine's
``model_requests`` go to the provider's (or the gateway's) host; ``api.anthropic.com`` stays
allowed for the WebFetch preflight (and the vendor flows that are on). A prompt posted to
``api.anthropic.com/v1/messages`` there was named ``model_requests``, a flow that is on, and
let out: the conversation reached a destination the engine did not send it to. And the
start-up configuration requests (bootstrap, remote settings, …) were named
``model_requests`` too, so they went out with ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC``
set and on Bedrock, where the reference was observed sending none."""

from __future__ import annotations

import ssl

import pytest

from airlock.egress.ca import RunCA
from airlock.egress.flows import (
    classify,
    off_flow,
    off_rows,
    refusal_body,
    verdict_for,
)
from airlock.egress.inspect import Inspector
from airlock.policy import Decisions, FlowId, decide
from airlock.policy.endpoints import flow_hosts
from tests.egress.harness import NOW
from tests.policy.helpers import context

API = "api.anthropic.com"
ELSEWHERE = [
    pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"}, id="bedrock"),
    pytest.param({"CLAUDE_CODE_USE_VERTEX": "1"}, id="vertex"),
    pytest.param({"CLAUDE_CODE_USE_FOUNDRY": "1"}, id="foundry"),
    pytest.param({"ANTHROPIC_BASE_URL": "https://gw.example/anthropic"}, id="base_url"),
    pytest.param(
        {"CLAUDE_CODE_USE_BEDROCK": "1", "ANTHROPIC_BEDROCK_BASE_URL": "https://gw.example"},
        id="bedrock_gateway",
    ),
]
MODEL_CALLS = [
    ("POST", "/v1/messages?beta=true"),
    ("POST", "/v1/messages/count_tokens"),
    ("POST", "/V1/Messages"),
    ("POST", "/v1/%6Dessages"),
    ("POST", "/gw/anthropic/v1/messages"),  # below a prefix
    ("GET", "/v1/models"),
    ("POST", "/v1/complete"),
    ("POST", "/v1/files"),
    ("GET", "/v1/files/file_011/content"),
    ("POST", "/model/anthropic.claude/invoke"),
    ("POST", "/v1/projects/p/locations/us/publishers/anthropic/models/m:rawPredict"),
]


@pytest.mark.parametrize("environ", ELSEWHERE)
@pytest.mark.parametrize(("method", "target"), MODEL_CALLS)
def test_a_model_call_to_the_vendor_api_is_refused_when_the_engine_sends_it_elsewhere(
    environ: dict[str, str], method: str, target: str
) -> None:
    """Named ``model_requests`` still, but refused, in the engine's words."""
    decisions = decide(context(environ))
    assert decisions[FlowId.MODEL_REQUESTS].parameters["vendor_api"] is False
    assert classify(method, API, target) == FlowId.MODEL_REQUESTS
    _refused_as_model_requests(decisions, method, target, f"not to {API}", "on")


def _refused_as_model_requests(
    decisions: Decisions, method: str, target: str, why: str, shown: str
) -> None:
    """``target`` on the vendor's API is named ``model_requests`` and refused, its reason
    holding ``why``, and its 403 showing the flow as ``model_requests (shown)``."""
    verdict = verdict_for(method, API, target, decisions)
    assert verdict.flow == FlowId.MODEL_REQUESTS and not verdict.allowed, target
    assert why in verdict.reason
    body = refusal_body(verdict, method, API, target).decode()
    assert f"data flow: model_requests ({shown})" in body


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="first_party"),
        pytest.param({"DISABLE_TELEMETRY": "1"}, id="telemetry_off"),
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, id="nonessential"),
        pytest.param({"ANTHROPIC_BASE_URL": "https://API.Anthropic.com./"}, id="base_url_is_it"),
    ],
)
@pytest.mark.parametrize(("method", "target"), MODEL_CALLS)
def test_a_model_call_to_the_vendor_api_goes_when_the_engine_sends_it_there(
    environ: dict[str, str], method: str, target: str
) -> None:
    """First-party, the vendor's API is where model requests go: nothing changes."""
    decisions = decide(context(environ))
    assert decisions[FlowId.MODEL_REQUESTS].parameters["vendor_api"] is True
    assert verdict_for(method, API, target, decisions).allowed, target
    assert off_flow(off_rows(API, decisions), target, decisions) is None, target


@pytest.mark.parametrize("environ", ELSEWHERE)
def test_the_model_call_is_refused_however_the_request_reaches_it(
    environ: dict[str, str],
) -> None:
    """Another spelling that some server routes to the model (a ``..;`` segment after a
    start-up path, a header naming the path), is refused as the model call too."""
    decisions = decide(context(environ))
    rows = off_rows(API, decisions)
    verdict = off_flow(rows, "/api/oauth/x/..;/../../v1/messages", decisions)
    assert verdict is not None and verdict.flow == FlowId.MODEL_REQUESTS and not verdict.allowed
    inspector = Inspector(RunCA(now=NOW), ssl.create_default_context(), decisions, lambda _: None)
    headers = [(b"X-Original-URL", b"/v1/messages")]
    verdict = inspector.judge("GET", API, "/api/oauth/profile", headers)
    assert verdict.flow == FlowId.MODEL_REQUESTS and not verdict.allowed


@pytest.mark.parametrize("environ", ELSEWHERE)
def test_the_model_call_goes_to_the_hosts_the_engine_names(environ: dict[str, str]) -> None:
    """At another host (the gateway's, the cloud's) a model call is not refused by this."""
    decisions = decide(context(environ))
    for host in ("gw.example", "bedrock-runtime.us-east-1.amazonaws.com", "127.0.0.1"):
        assert off_flow(off_rows(host, decisions), "/v1/messages", decisions) is None
        verdict = verdict_for("POST", host, "/v1/messages", decisions, api_hosts={API, host})
        assert verdict.allowed, host


STARTUP = [
    ("GET", "/api/claude_cli/bootstrap"),
    ("GET", "/api/claude_code_penguin_mode"),
    ("GET", "/api/directory/server-urls"),
    ("GET", "/mcp-registry/v0/servers?version=latest"),
]


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, id="nonessential"),
        pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1"}, id="bedrock"),
        pytest.param(
            {"CLAUDE_CODE_USE_VERTEX": "1", "CLAUDE_CODE_PROVIDER_MANAGED_BY_HOST": "1"},
            id="vertex_managed_by_host",
        ),
    ],
)
@pytest.mark.parametrize(("method", "target"), STARTUP)
def test_startup_config_is_refused_where_the_reference_sends_none(
    environ: dict[str, str], method: str, target: str
) -> None:
    """Each start-up request is named ``model_requests`` and refused where the engine has the
    start-up configuration off, in its words; the 403 says so."""
    _refused_as_model_requests(
        decide(context(environ)),
        method,
        target,
        "not the agent's start-up configuration",
        "on; start-up configuration off",
    )


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({}, id="first_party"),
        pytest.param({"DISABLE_TELEMETRY": "1"}, id="telemetry_off"),
        pytest.param({"DO_NOT_TRACK": "1"}, id="do_not_track"),
    ],
)
@pytest.mark.parametrize(("method", "target"), STARTUP)
def test_startup_config_goes_where_the_reference_sends_it(
    environ: dict[str, str], method: str, target: str
) -> None:
    """Observed still sent with telemetry off: allowed."""
    verdict = verdict_for(method, API, target, decide(context(environ)))
    assert verdict.flow == FlowId.MODEL_REQUESTS and verdict.allowed


def test_bedrocks_inference_profiles_are_the_models_and_its_host_is_let_out() -> None:
    """On Bedrock the reference asks the region's control plane for the account's inference
    profiles (``GET bedrock.REGION.amazonaws.com/inference-profiles``) before its first model
    request: that request is the model's, and its host is one the proxy lets out by
    default, as ``airlock flows --json`` says (it was refused: no rule named the host)."""
    from airlock.egress.rules import default_rules

    environ = {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"}
    ctx = context(environ)
    decisions = decide(ctx)
    control = "bedrock.us-east-1.amazonaws.com"
    assert (FlowId.MODEL_REQUESTS, control) in flow_hosts(ctx, decisions)
    assert any(rule.covers(control, 443) for rule in default_rules(ctx, decisions))
    target = "/inference-profiles?type=SYSTEM_DEFINED&maxResults=1000"
    assert classify("GET", control, target) == FlowId.MODEL_REQUESTS
    assert verdict_for("GET", control, target, decisions).allowed
    gateway = "bedrock-gw.example"
    assert classify("GET", gateway, target, api_hosts={API, gateway}) == FlowId.MODEL_REQUESTS


QUIET = [
    pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, id="nonessential"),
    pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"}, id="bedrock"),
    pytest.param({"CLAUDE_CODE_USE_FOUNDRY": "1"}, id="foundry"),
]
UNKNOWN = [
    ("POST", "/v1/sessions"),
    ("POST", "/v1/code/sessions/abc/events"),
    ("GET", "/api/hello"),
    ("POST", "/api/claude_code_grove"),
]


@pytest.mark.parametrize("environ", QUIET)
@pytest.mark.parametrize(("method", "target"), UNKNOWN)
def test_an_unclassified_request_to_the_vendor_api_is_refused_where_it_expects_none(
    environ: dict[str, str], method: str, target: str
) -> None:
    """With non-essential traffic blocked, and on the cloud providers, the reference sends
    the vendor nothing but the model's requests and the WebFetch preflight (observed): the
    vendor's host is let out for those, so a request no row names (a session upload, the
    Files API's cousins) was let out with them. It is refused now, saying why, and the 403
    names the flow to explain."""
    decisions = decide(context(environ))
    verdict = verdict_for(method, API, target, decisions)
    assert not verdict.allowed and verdict.flow == "unclassified", target
    assert "the agent's start-up configuration is off" in verdict.reason
    body = refusal_body(verdict, method, API, target).decode()
    assert "data flow: unclassified (start-up configuration off)" in body
    assert "airlock flows --explain model_requests" in body


@pytest.mark.parametrize("environ", QUIET)
def test_the_vendors_requests_the_engine_has_on_still_go_there(environ: dict[str, str]) -> None:
    """The WebFetch preflight goes; an unclassified request to another host is the host
    rules' as before."""
    decisions = decide(context(environ))
    assert verdict_for("GET", API, "/api/web/domain_info?domain=example.org", decisions).allowed
    assert verdict_for("POST", "gw.example", "/v1/sessions", decisions).allowed


@pytest.mark.parametrize(
    "environ", [pytest.param({}, id="first_party"), pytest.param({"DO_NOT_TRACK": "1"}, id="dnt")]
)
@pytest.mark.parametrize(("method", "target"), UNKNOWN)
def test_an_unclassified_request_to_the_vendor_api_goes_while_startup_config_is_on(
    environ: dict[str, str], method: str, target: str
) -> None:
    """First-party with the start-up configuration on, the host rules decide as before."""
    assert verdict_for(method, API, target, decide(context(environ))).allowed


def test_vertexs_token_exchange_is_the_models_and_its_host_is_let_out() -> None:
    """With Google credentials (a service account's key), the reference exchanges them for an
    access token at ``oauth2.googleapis.com`` before its first Vertex AI request: without
    that host the model flow, on, could not work (``API Error: Proxy refused to open a
    tunnel: 403``), though ``airlock flows --json`` named only the Vertex hosts. It is a
    model host now, and the request is the model's."""
    from airlock.egress.rules import default_rules

    ctx = context({"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "us-east5"})
    decisions = decide(ctx)
    token = "oauth2.googleapis.com"
    assert (FlowId.MODEL_REQUESTS, token) in flow_hosts(ctx, decisions)
    assert any(rule.covers(token, 443) for rule in default_rules(ctx, decisions))
    assert classify("POST", token, "/token") == FlowId.MODEL_REQUESTS
    assert verdict_for("POST", token, "/token", decisions).allowed
    first_party = context()
    assert token not in {host for _, host in flow_hosts(first_party, decide(first_party))}
