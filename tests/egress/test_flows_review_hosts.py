"""A request of a flow that is off, to an inspected host the run does not name as the vendor
API's: the engine names the vendor's hosts from the run's configuration only, so an agent
pointed elsewhere from inside the sandbox (``ANTHROPIC_BASE_URL`` set by the command itself)
sent its metrics batches to the inspected host it was pointed at, named ``unclassified`` and
let out with metrics off. The vendor API's rows of flows that are off now refuse on every
inspected host; what such a host's requests are named by stays as it was."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.flows import DEFAULT_API_HOSTS, UNCLASSIFIED, classify, off_flow, off_rows
from airlock.policy import FlowId, decide
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.policy.helpers import context

TELEMETRY_OFF = {"DISABLE_TELEMETRY": "1"}
OTHER = "gw.example"
"""An inspected host the run does not name as the vendor API's."""


@pytest.mark.parametrize(
    ("target", "flow"),
    [
        ("/api/event_logging/v2/batch", FlowId.METRICS),
        ("/api/eval/sdk-abc", FlowId.METRICS),
        ("/api/claude_code/metrics", FlowId.METRICS),
        ("/anthropic/api/event_logging/v2/batch", FlowId.METRICS),  # below a gateway's prefix
        ("/api/claude_code_shared_session_transcripts", FlowId.TRANSCRIPT_SHARE),
    ],
)
def test_an_off_flows_vendor_path_is_refused_on_any_inspected_host(target: str, flow: str) -> None:
    """With telemetry off (and the survey's transcript sharing off by default), the vendor
    API's paths of those flows are refused as them on a host the run did not name."""
    decisions = decide(context(TELEMETRY_OFF))
    verdict = off_flow(off_rows(OTHER, decisions), target, decisions)
    assert verdict is not None and verdict.flow == flow and not verdict.allowed


def test_such_a_host_still_sends_what_is_on_and_names_flows_as_before() -> None:
    """The model's requests go; the name a request gets there is unchanged (only a refusal
    is added): the vendor API's paths are named on the vendor's hosts alone."""
    decisions = decide(context(TELEMETRY_OFF))
    rows = off_rows(OTHER, decisions)
    for target in ("/v1/messages?beta=true", "/v1/models", "/api/claude_cli/bootstrap"):
        assert off_flow(rows, target, decisions) is None, target
    assert classify("POST", OTHER, "/api/event_logging/v2/batch") == UNCLASSIFIED
    assert classify("POST", OTHER, "/v1/messages") == UNCLASSIFIED


def test_on_the_wire_to_an_inspected_host_not_named_the_vendors(tmp_path: Path) -> None:
    """Inside inspected TLS to ``localhost``, which the run does not name as the vendor
    API's: a metrics batch gets ``403`` naming the flow and the variable, never reaches the
    origin, and is logged as a refused metrics request (the report's comparison flags it);
    a model request still goes."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, TELEMETRY_OFF)
    inspection = dataclasses.replace(inspection, api_hosts=DEFAULT_API_HOSTS)
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, proxy):
            refused = inspected_post(url, bundle, port, "/api/event_logging/v2/batch")
            sent = inspected_post(url, bundle, port, "/v1/messages?beta=true")
            report = proxy.close({"command": ["test"], "exit_code": 0})
        seen = [path for _, path, _ in site.seen]
    assert refused.startswith(b"HTTP/1.1 403"), refused[:200]
    assert b"data flow: metrics (off)" in refused and b"DISABLE_TELEMETRY" in refused
    assert sent.startswith(b"HTTP/1.1 200"), sent[:200]
    assert seen == ["/v1/messages?beta=true"]
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["path"], r["flow"], r["decision"]) for r in records] == [
        ("/api/event_logging/v2/batch", "metrics", "deny"),
        ("/v1/messages?beta=…", "unclassified", "allow"),
    ]
    metrics = next(flow for flow in report.flows if flow.flow == "metrics")
    assert metrics.refused == 1 and metrics.difference
