"""The signature table, enforcement from the engine's decisions, and the flow report."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.egress.flows import (
    AGENT_SIGNATURES,
    UNCLASSIFIED,
    classify,
    compare,
    enforce,
    normalize_path,
    off_flow,
    off_rows,
    refusal_body,
)
from airlock.policy import FlowId, decide
from tests.policy.helpers import context

API = "api.anthropic.com"


def _request(id: str, method: str, path: str, flow: str, host: str = API) -> Any:
    """A request (to the vendor's API unless ``host`` says otherwise) and the flow it is."""
    return pytest.param(method, host, path, flow, id=id)


# fmt: off
CLASSIFIED = [
    _request("model", "POST", "/v1/messages?beta=true", "model_requests"),
    _request("host_case_and_dot", "POST", "/v1/messages", "model_requests", host="API.Anthropic.COM."),
    _request("bootstrap", "GET", "/api/claude_cli/bootstrap", "model_requests"),
    _request("remote_settings", "GET", "/api/claude_code/settings", "model_requests"),
    _request("policy_limits", "GET", "/api/claude_code/policy_limits", "model_requests"),
    _request("penguin_mode", "GET", "/api/claude_code_penguin_mode", "model_requests"),
    _request("server_urls", "GET", "/api/directory/server-urls", "model_requests"),
    _request("mcp_registry", "GET", "/mcp-registry/v0/servers?version=latest", "model_requests"),
    _request("metrics_batch", "POST", "/api/event_logging/v2/batch", "metrics"),
    _request("feature_flags_are_metrics", "POST", "/api/eval/sdk-abc", "metrics"),
    _request("metrics_enabled", "GET", "/api/claude_code/organizations/metrics_enabled", "metrics"),
    _request("metrics_export", "POST", "/api/claude_code/metrics", "metrics"),
    _request("preflight", "GET", "/api/web/domain_info?domain=example.org", "webfetch_preflight"),
    _request("preflight_own_service", "GET", "/api/web/domain_hashes?p=ab12", "webfetch_preflight", host="safety.example.net"),
    _request("feedback", "POST", "/api/claude_cli_feedback", "feedback_command"),
    _request("transcript_share", "POST", "/api/claude_code_shared_session_transcripts", "transcript_share"),
    _request("survey", "POST", "/api/claude_code/feedback_survey", "survey_rating"),
    _request("sentry", "POST", "/api/42/envelope/", "error_reporting", host="o1.ingest.us.sentry.io"),
    _request("sentry_bare_host", "POST", "/api/42/store/", "error_reporting", host="sentry.io"),
    _request("sentry_look_alike", "POST", "/api/42/store/", UNCLASSIFIED, host="notsentry.io"),
    _request("npm_update", "GET", "/@anthropic-ai%2fclaude-code", "auto_update", host="registry.npmjs.org"),
    _request("native_update", "GET", "/claude-code-releases/stable", "auto_update", host="downloads.claude.ai"),
    _request("bedrock", "POST", "/model/x/invoke", "model_requests", host="bedrock-runtime.us-east-1.amazonaws.com"),
    _request("wrong_method", "GET", "/v1/messages", UNCLASSIFIED),
    _request("model_path_elsewhere", "POST", "/v1/messages", UNCLASSIFIED, host="example.org"),
    _request("other_package", "GET", "/left-pad", UNCLASSIFIED, host="registry.npmjs.org"),
    _request("unknown_path", "POST", "/api/unknown", UNCLASSIFIED),
]
# fmt: on


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


NONESSENTIAL = "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"


def _enforced(id: str, variable: str | None, flow: str, allowed: bool, named: str | None) -> Any:
    """A flow under one variable set to 1 (or none): allowed or not, and what the reason names."""
    environ = {variable: "1"} if variable else {}
    return pytest.param(environ, flow, allowed, named, id=id)


# fmt: off
ENFORCED = [
    _enforced("default_metrics_on", None, "metrics", True, None),
    _enforced("telemetry_off", "DISABLE_TELEMETRY", "metrics", False, "DISABLE_TELEMETRY"),
    _enforced("do_not_track", "DO_NOT_TRACK", "metrics", False, "DO_NOT_TRACK"),
    _enforced("nonessential_feedback", NONESSENTIAL, "feedback_command", False, NONESSENTIAL),
    _enforced("nonessential_keeps_preflight", NONESSENTIAL, "webfetch_preflight", True, None),
    _enforced("model_always", NONESSENTIAL, "model_requests", True, None),
    _enforced("error_reporting_off", "DISABLE_ERROR_REPORTING", "error_reporting", False, "DISABLE_ERROR_REPORTING"),
    _enforced("bedrock_default_off", "CLAUDE_CODE_USE_BEDROCK", "metrics", False, "off by default on Amazon Bedrock"),
    _enforced("local_archive_is_not_sent", "CLAUDE_CODE_USE_BEDROCK", "transcript_share", False, "local"),
    _enforced("autoupdater", "DISABLE_AUTOUPDATER", "auto_update", False, "DISABLE_AUTOUPDATER"),
    _enforced("unclassified_left_to_host_rules", None, UNCLASSIFIED, True, None),
]
# fmt: on


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


# fmt: off
NORMALISED = [
    pytest.param("/v1/messages?beta=true", "/v1/messages", id="query_dropped"),
    pytest.param("/a#frag", "/a", id="fragment_dropped"),
    pytest.param("", "/", id="empty"),
    pytest.param("/", "/", id="root"),
    pytest.param("/a/b/", "/a/b/", id="final_slash_kept"),
    pytest.param("/v1/messages/../../api/event_logging/v2/batch", "/api/event_logging/v2/batch", id="dot_dot"),
    pytest.param("/a/./b/.", "/a/b/", id="dot"),
    pytest.param("/a/b/..", "/a/", id="final_dot_dot"),
    pytest.param("/../../a", "/a", id="not_above_the_root"),
    pytest.param("/api/%65vent_logging", "/api/event_logging", id="encoded_letter"),
    pytest.param("/%41%7a%30%2D%2e%5F%7E", "/Az0-._~", id="every_kind_of_unreserved"),
    pytest.param("/a/%2e%2E/b", "/b", id="encoded_dot_dot"),
    pytest.param("/a/.%2E/b", "/b", id="half_encoded_dot_dot"),
    pytest.param("/a%2Fb/%25/%2565", "/a/b/%25/%2565", id="slash_decoded_others_once"),
    pytest.param("/api\\event_logging%5Cv2/batch", "/api/event_logging/v2/batch", id="backslashes"),
    pytest.param("//api///event_logging", "/api/event_logging", id="slashes_collapsed"),
    pytest.param("/a//../b", "/b", id="slashes_collapsed_before_dots"),
    pytest.param("api/x", "/api/x", id="no_leading_slash"),
]
# fmt: on


@pytest.mark.parametrize(("target", "path"), NORMALISED)
def test_normalize_path(target: str, path: str) -> None:
    """Each spelling is reduced to the one path a server reads it as."""
    assert normalize_path(target) == path


@pytest.mark.parametrize(
    ("method", "path", "flow"),
    [
        ("POST", "/api/%65vent_logging/v2/batch", "metrics"),
        ("POST", "//api/event_logging/v2/batch", "metrics"),
        ("POST", "/v1/%6Dessages?x=/api/event_logging/", "model_requests"),
        ("POST", "/v1/messages/count_tokens", "model_requests"),
        ("POST", "/v1/messages;x", "model_requests"),
        # Read two ways (dot segments resolved, or routed as written): two flows, neither named.
        ("POST", "/v1/messages/../../api/event_logging/v2/batch", UNCLASSIFIED),
        ("POST", "/api/event_logging/%2e%2e/%2e%2e/v1/messages", UNCLASSIFIED),
        # ``..;`` is ``..`` to Tomcat and Spring: the metrics batch there, the model elsewhere.
        ("POST", "/v1/messages/..;/../api/event_logging/v2/batch", UNCLASSIFIED),
        ("POST", "/v1/messagesX", UNCLASSIFIED),
        ("POST", "/v1/messages-x/y", UNCLASSIFIED),
    ],
    ids=[
        "encoded_letter",
        "double_slash",
        "query_not_read",
        "under_the_prefix",
        "parameter_dropped",
        "dot_segments_read_two_ways",
        "encoded_dots_climb_read_two_ways",
        "tomcat_dot_dot_read_two_ways",
        "prefix_inside_a_segment",
        "prefix_inside_a_segment_then_more",
    ],
)
def test_classify_reads_the_normalised_path(method: str, path: str, flow: str) -> None:
    """A request is named by the path it reaches, not by the way it is written; a prefix
    covers whole segments; a path that servers read as two flows is named as neither."""
    assert classify(method, API, path) == flow


def test_a_path_read_as_two_flows_is_refused_as_the_one_that_is_off() -> None:
    """``/v1/messages/..;/../api/event_logging/v2/batch`` with telemetry off: the metrics
    reading is refused as metrics, whatever its record's flow."""
    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    path = "/v1/messages/..;/../api/event_logging/v2/batch"
    verdict = off_flow(off_rows(API, decisions), path, decisions)
    assert verdict is not None and verdict.flow == "metrics" and not verdict.allowed


_TOKENS = st.sampled_from(
    ["/", "//", ".", "..", "%2e", "%2E", "%65", "%7e", "%2F", "%25", "a", "b", "~", "?q", "#f"]
)


def _encode(text: str, which: list[bool]) -> str:
    """``text`` with the unreserved characters chosen by ``which`` percent-encoded."""
    out = []
    for index, char in enumerate(text):
        chosen = which[index % len(which)] if which else False
        out.append(f"%{ord(char):02X}" if chosen and (char.isalnum() or char in "-._~") else char)
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(_TOKENS, max_size=20).map("".join))
def test_normalised_paths_have_one_shape(target: str) -> None:
    """A normalised path starts with one slash, holds no empty, ``.`` or ``..`` segment and no
    encoded unreserved character, and normalising it again changes nothing."""
    path = normalize_path(target)
    assert path.startswith("/") and "//" not in path and "?" not in path
    assert not {".", ".."} & set(path.split("/"))
    assert normalize_path(path) == path


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(st.sampled_from("abcXYZ019-_~"), min_size=1, max_size=6), max_size=6),
    st.lists(st.sampled_from(["", "", "", ".", "//", "x/.."]), min_size=1, max_size=8),
    st.lists(st.booleans(), max_size=8),
)
def test_every_spelling_of_a_path_is_that_path(
    segments: list[str], noise: list[str], which: list[bool]
) -> None:
    """A path written with dot segments, detours (``x/..``), doubled slashes and encoded
    letters normalises to the plain path."""
    plain = "/" + "/".join(segments)
    spelt = ""
    for index, segment in enumerate(segments):
        extra = noise[index % len(noise)]
        spelt += "/" + (extra + "/" if extra else "") + _encode(segment, which)
    assert normalize_path(spelt or "/") == plain


@pytest.mark.parametrize(
    "target",
    [
        "/api/event_logging/v2/batch%2F..%2F..%2F..%2F..%2Fv1/messages",  # %2F kept as data
        "/api/event_logging/v2/batch%5C..%5C..%5C..%5C..%5Cv1/messages",
        "/api/event_logging/v2/batch/../../../../v1/messages",  # dot segments not resolved
        "/v1/messages/..;/..;/api/event_logging/v2/batch",  # Tomcat reads ..; as ..
        "/api/event_logging;x/v2/batch",  # ;parameters dropped
        "/api;/event_logging/v2/batch",
        "/API/EVENT_LOGGING/v2/batch",  # case ignored
        "/api/event_logging./v2/batch",  # a segment's trailing dots dropped (IIS)
        "/api/event_logging",  # no final slash
        "//x/api/event_logging/v2/batch",  # a URL parser reads //x as an authority
        "//api.anthropic.com/api/event_logging/v2/batch",
        "/\\x/api/event_logging/v2/batch",  # WHATWG reads \\ as /
        "///x/api/event_logging/v2/batch",
        "/api/event_logging%u002fv2/batch",  # IIS reads %u002f as /
        "/api/%u0065vent_logging/v2/batch",
    ],
)
def test_any_reading_of_an_off_flows_path_is_refused(target: str) -> None:
    """A path some server would route to a flow that is off is refused as that flow,
    whatever the request's first reading says."""
    from airlock.egress.flows import off_flow, off_rows

    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    verdict = off_flow(off_rows("api.anthropic.com", decisions), target, decisions)
    assert verdict is not None and verdict.flow == FlowId.METRICS and not verdict.allowed


def test_a_method_does_not_narrow_an_off_flows_row() -> None:
    """``PUT`` to a ``POST`` row's path (an origin may take X-HTTP-Method-Override)."""
    from airlock.egress.flows import AGENT_SIGNATURES, off_flow, off_rows

    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    rows = [row for row in AGENT_SIGNATURES["claude-code"] if row.method not in ("*", "GET")]
    assert rows  # the table has method-specific rows
    for row in rows:
        host = "api.anthropic.com" if row.host.startswith("$") else row.host.replace("*.", "x.")
        host = host.replace(".*", ".x")
        off = off_rows(host, decisions)
        if row in off:
            assert off_flow(off, row.path, decisions) is not None


@pytest.mark.parametrize("target", ["/v1/messages", "/v1/messages?beta=true", "/v1/models"])
def test_model_requests_are_not_read_as_off_flows(target: str) -> None:
    from airlock.egress.flows import off_flow, off_rows

    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    assert off_flow(off_rows("api.anthropic.com", decisions), target, decisions) is None


def test_percent_encoded_scope_of_a_package_is_auto_update() -> None:
    """``%40anthropic-ai`` is ``@anthropic-ai`` to npm's registry."""
    from airlock.egress.flows import off_flow, off_rows

    decisions = decide(context({"DISABLE_AUTOUPDATER": "1"}))
    rows = off_rows("registry.npmjs.org", decisions)
    verdict = off_flow(rows, "/%40anthropic-ai/claude-code", decisions)
    assert verdict is not None and verdict.flow == FlowId.AUTO_UPDATE


@pytest.mark.parametrize(
    ("host", "target"),
    [
        (
            "storage.googleapis.com",
            "/storage/v1/b/claude-code-dist-86c565f3/o/x%2Fclaude?alt=media",
        ),
        ("storage.googleapis.com", "/download/storage/v1/b/claude-code-dist-86c565f3/o/x"),
        ("www.googleapis.com", "/download/storage/v1/b/claude-code-dist-86c565f3/o/x"),
        ("storage.cloud.google.com", "/claude-code-dist-86c565f3/x/claude"),
        ("claude-code-dist-86c565f3.storage.googleapis.com", "/x/claude"),
    ],
)
def test_other_urls_of_the_release_bucket_are_auto_update(host: str, target: str) -> None:
    """Cloud Storage serves one object at several URLs: each is the release download."""
    assert classify("GET", host, target) == FlowId.AUTO_UPDATE


@pytest.mark.parametrize(
    "host",
    [
        "other-bucket.storage.googleapis.com",
        "claude-code-dist-86c565f3.evil.storage.googleapis.com",
        "claude-code-dist-86c565f3.storage.googleapis.com.evil.example",
        "xclaude-code-dist-86c565f3.storage.googleapis.com",
    ],
)
def test_only_the_release_bucket_is_auto_update_by_its_host(host: str) -> None:
    """The virtual-hosted row covers the release bucket's own host, no other bucket's, no
    name below it and no name that merely holds it."""
    assert classify("GET", host, "/x/claude") == UNCLASSIFIED


def test_the_release_bucket_by_its_host_is_refused_with_the_updater_off() -> None:
    """With ``DISABLE_AUTOUPDATER`` a download from the bucket's own host is refused as
    ``auto_update``, by any method and spelling of its path."""
    decisions = decide(context({"DISABLE_AUTOUPDATER": "1"}))
    rows = off_rows("claude-code-dist-86c565f3.storage.googleapis.com", decisions)
    verdict = off_flow(rows, "/latest/%63laude", decisions)
    assert verdict is not None and verdict.flow == FlowId.AUTO_UPDATE
