"""The vendor API served under a prefix (a gateway: ``ANTHROPIC_BASE_URL=https://gw/anthropic``):
its requests are named by their flow below the prefix, and one of a flow that is off is
refused whatever prefix it carries, by the flow check alone and inside inspected TLS."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.flows import UNCLASSIFIED, classify, off_flow, off_rows
from airlock.policy import FlowId, decide
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.policy.helpers import context

GATEWAY = "gw.example.net"
HOSTS = frozenset({"api.anthropic.com", GATEWAY})


@pytest.mark.parametrize(
    ("method", "path", "flow"),
    [
        ("POST", "/anthropic/v1/messages?beta=true", FlowId.MODEL_REQUESTS),
        ("POST", "/a/b/v1/messages/count_tokens", FlowId.MODEL_REQUESTS),
        ("POST", "/anthropic/api/event_logging/v2/batch", FlowId.METRICS),
        ("GET", "/anthropic/api/web/domain_info?domain=example.org", FlowId.WEBFETCH_PREFLIGHT),
    ],
)
def test_the_api_below_a_gateways_prefix_is_named_by_flow(
    method: str, path: str, flow: str
) -> None:
    assert classify(method, GATEWAY, path, api_hosts=HOSTS) == flow


def test_a_prefix_is_read_on_the_api_only_and_covers_whole_segments() -> None:
    """On the gateway the model request below a prefix is named; on another host, or as a
    part of a segment (``/v1/messagesX``), it is not."""
    assert classify("POST", GATEWAY, "/anthropic/v1/messages", api_hosts=HOSTS) == "model_requests"
    assert classify("POST", "example.org", "/anthropic/v1/messages") == UNCLASSIFIED
    assert classify("POST", GATEWAY, "/anthropic/v1/messagesX", api_hosts=HOSTS) == UNCLASSIFIED
    assert classify("POST", GATEWAY, "/anthropic/other", api_hosts=HOSTS) == UNCLASSIFIED


@pytest.mark.parametrize(
    "target",
    [
        "/anthropic/api/event_logging/v2/batch",
        "/x/y/api/eval/sdk",
        "/anthropic/api/claude_code/organizations/metrics_enabled",
        "/anthropic/%61pi/event_logging/v2/batch",
    ],
)
def test_an_off_flow_below_any_prefix_is_refused(target: str) -> None:
    decisions = decide(context({"DISABLE_TELEMETRY": "1"}))
    rows = off_rows(GATEWAY, decisions)
    verdict = off_flow(rows, target, decisions)
    assert verdict is not None and verdict.flow == FlowId.METRICS and not verdict.allowed


def test_a_gateways_prefix_does_not_carry_metrics_out(tmp_path: Path) -> None:
    """Inside inspected TLS to the API host, the metrics batch below a prefix gets a ``403``
    naming the flow and DISABLE_TELEMETRY and is logged denied as metrics; the model request
    below it goes, logged as model_requests."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    answers = []
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, _):
            for path in ("/gw/api/event_logging/v2/batch", "/gw/v1/messages?beta=true"):
                answers.append(inspected_post(url, bundle, port, path))
        seen = [path for _, path, _ in site.seen]
    assert answers[0].startswith(b"HTTP/1.1 403")
    assert b"data flow: metrics (off)" in answers[0] and b"DISABLE_TELEMETRY" in answers[0]
    assert answers[1].startswith(b"HTTP/1.1 200")
    assert seen == ["/gw/v1/messages?beta=true"]
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["flow"], r["decision"], r["status"]) for r in records] == [
        ("metrics", "deny", 403),
        ("model_requests", "allow", 200),
    ]
    assert "flow metrics is off" in records[0]["reason"]
