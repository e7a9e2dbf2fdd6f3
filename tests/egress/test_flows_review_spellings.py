"""Spellings of a request of a flow that is off which some server still routes to it: overlong
UTF-8, a NUL, control characters around a segment, Unicode letters that fold to the path's,
and a path held in the query. Each is refused as that flow, by the flow check alone and on
the wire (inside inspected TLS, and in plain HTTP to an inspected host), and none reaches
the origin."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock.egress.audit_read import read_records
from airlock.egress.flows import enforce, off_flow, off_rows, refusal_body
from airlock.policy import FlowId, decide
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, exchange, origin, running
from tests.policy.helpers import context

API = "api.anthropic.com"
TELEMETRY_OFF = {"DISABLE_TELEMETRY": "1"}

# fmt: off
ROUTED_TO_METRICS = [
    pytest.param("/api%c0%afevent_logging/v2/batch", id="overlong_slash"),  # IIS, old Java
    pytest.param("/v1/messages/%c0%ae%c0%ae/%c0%ae%c0%ae/api/event_logging/v2/batch", id="overlong_dots"),
    pytest.param("/api/%e0%80%afevent_logging/v2/batch", id="overlong_slash_three_bytes"),
    pytest.param("/api%c1%9cevent_logging/v2/batch", id="overlong_backslash"),
    pytest.param("/api/event_logging%00/v2/batch", id="nul_ends_the_path"),  # C strings
    pytest.param("/api/event_logging%09/v2/batch", id="tab_trimmed"),  # Java's trim (Spring)
    pytest.param("/api/%20event_logging/v2/batch", id="leading_space_trimmed"),
    pytest.param("/api/event_logging%0d%0a/v2/batch", id="line_end_trimmed"),
    pytest.param("/api/%ef%bd%85vent_logging/v2/batch", id="full_width_letter"),  # NFKC
    pytest.param("/api/%uff45vent_logging/v2/batch", id="full_width_letter_iis"),
    pytest.param("/api/claude_code/metric%c5%bf", id="long_s_folds_to_s"),  # case-insensitive
    pytest.param("/api/event_logging%ff/v2/batch", id="invalid_byte_dropped"),
    pytest.param("/?/api/event_logging/v2/batch", id="query_is_the_path"),  # CodeIgniter
    pytest.param("/index.php?/api/eval/sdk", id="query_is_the_path_after_a_script"),
    pytest.param("/v1/models?_url=%2Fapi%2Fevent_logging%2Fv2%2Fbatch", id="path_in_a_query_value"),
    pytest.param("/v1/models?a=1;q=/api/eval/sdk", id="path_in_a_later_query_value"),
]
# fmt: on


@pytest.mark.parametrize("target", ROUTED_TO_METRICS)
def test_a_spelling_some_server_routes_to_an_off_flow_is_refused(target: str) -> None:
    """With telemetry off, each spelling is refused as metrics, in the engine's words."""
    decisions = decide(context(TELEMETRY_OFF))
    verdict = off_flow(off_rows(API, decisions), target, decisions)
    assert verdict is not None and verdict.flow == FlowId.METRICS and not verdict.allowed
    assert "DISABLE_TELEMETRY" in verdict.reason


ALLOWED = [
    "/v1/messages?beta=true",
    "/v1/messages/count_tokens?beta=true",
    "/v1/models?limit=20&after_id=a/b",  # a value with a slash, not a path
    "/mcp-registry/v0/servers?version=latest",
    "/v1/messages%c0%af",  # an overlong slash that reaches nothing off
    "/v1/%ef%bd%8dessages",  # a full-width letter of an allowed path
]
"""Requests that are no spelling of an off flow's: they go."""


def _overlong(char: str) -> str:
    return f"%{0xC0 | ord(char) >> 6:02x}%{0x80 | ord(char) & 0x3F:02x}"


_SPELLINGS = {
    "plain": lambda char: char,
    "encoded": lambda char: f"%{ord(char):02x}",
    "overlong": _overlong,
    "full_width": lambda char: (
        "".join(f"%{byte:02x}" for byte in chr(ord(char) + 0xFEE0).encode())
        if char.isalpha()
        else char
    ),
    "upper": str.upper,
}


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            ("/api/event_logging", "/v2/batch"),
            ("/api/eval", "/sdk"),
            ("/api/claude_code/metrics", ""),
        ]
    ),
    st.lists(st.sampled_from(sorted(_SPELLINGS)), min_size=1, max_size=30),
    st.sampled_from(["", "%00", "%09", "%20", ".", ";x"]),
)
def test_every_mixed_spelling_of_an_off_flows_path_is_refused(
    path: tuple[str, str], ways: list[str], noise: str
) -> None:
    """A metrics path whose characters (but its slashes) are each written one of several
    ways (as they are, percent-encoded, overlong UTF-8, full-width, upper case), with noise
    after the segment that makes it metrics, is refused as metrics."""

    def spell(text: str) -> str:
        return "".join(
            char if char == "/" else _SPELLINGS[ways[index % len(ways)]](char)
            for index, char in enumerate(text)
        )

    prefix, rest = path
    target = spell(prefix) + noise + spell(rest)
    decisions = decide(context(TELEMETRY_OFF))
    verdict = off_flow(off_rows(API, decisions), target, decisions)
    assert verdict is not None and verdict.flow == FlowId.METRICS, target


ON_THE_WIRE = [
    "/api%c0%afevent_logging/v2/batch",
    "/api/event_logging%00/v2/batch",
    "/api/%ef%bd%85vent_logging/v2/batch",
    "/?/api/event_logging/v2/batch",
]


def test_such_spellings_are_refused_on_the_wire_and_logged(tmp_path: Path) -> None:
    """Inside inspected TLS and in plain HTTP to an inspected host, each spelling gets a
    ``403`` naming the flow and the variable that turned it off; the origin sees none of
    them, and each is logged as denied with the flow in its reason; requests that are no
    spelling of an off flow's still go."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, TELEMETRY_OFF)
    cfg = config(tmp_path, inspection=inspection)
    answers = []
    with tls_origin(origin_ca, "localhost") as site, origin() as plain:
        port, plain_port = site.server_address[1], plain.server_address[1]
        with running(cfg) as (url, _):
            for target in ON_THE_WIRE:
                answers.append(inspected_post(url, bundle, port, target))
                answers.append(
                    exchange(
                        url,
                        f"GET http://localhost:{plain_port}{target} HTTP/1.1\r\n"
                        f"Host: localhost:{plain_port}\r\nConnection: close\r\n\r\n".encode(),
                    )
                )
            allowed = []
            for target in ALLOWED:
                allowed.append(inspected_post(url, bundle, port, target))
        tls_seen = [path for _, path, _ in site.seen]
        plain_seen = [path for path, _ in plain.seen]
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        assert b"data flow: metrics (off)" in answer and b"DISABLE_TELEMETRY" in answer
    for answer in answers[::2]:  # inside TLS: the URL asked for, its port too
        assert f"https://localhost:{port}/".encode() in answer
    for answer in answers[1::2]:  # in plain HTTP alike
        assert f"http://localhost:{plain_port}/".encode() in answer
    assert all(answer.startswith(b"HTTP/1.1 200") for answer in allowed)
    assert tls_seen == ALLOWED and plain_seen == []
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    denied = [r for r in records if r["decision"] == "deny"]
    assert len(denied) == 2 * len(ON_THE_WIRE)
    for record in denied:
        assert record["status"] == 403 and record["flow"] == "metrics"
        assert "flow metrics is off" in record["reason"]
        assert "DISABLE_TELEMETRY" in record["reason"]


def test_a_refusal_names_the_url_asked_for_with_its_port() -> None:
    """The port is written when it is not the scheme's own, an IPv6 address in brackets."""
    verdict = enforce("metrics", decide(context(TELEMETRY_OFF)))
    shown = [
        refusal_body(verdict, "POST", host, "/api/event_logging/v2/batch", port=port)
        for host, port in (("127.0.0.2", 8443), ("::1", 8443), ("api.anthropic.com", 443))
    ]
    assert b"POST https://127.0.0.2:8443/api/event_logging/v2/batch\n" in shown[0]
    assert b"POST https://[::1]:8443/api/event_logging/v2/batch\n" in shown[1]
    assert b"POST https://api.anthropic.com/api/event_logging/v2/batch\n" in shown[2]
