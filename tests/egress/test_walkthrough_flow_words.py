"""What the audit and the report say of inspected requests, after a walkthrough: a vendor API
path sent to an inspected host that is not the vendor API's is said to be one (not "no
signature matches"), the report's difference says so too, and a flow's refused requests are
said to be tried, not sent. Through the real proxy, with a real TLS origin on loopback."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from airlock.egress import flows
from airlock.egress.audit import heads_path
from airlock.egress.audit_read import read_records
from airlock.egress.ca import ca_environment
from airlock.policy import decide
from tests.cli import airlock
from tests.egress.harness import inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.policy.helpers import context

VENDOR_PATH_ELSEWHERE = (
    "/api/event_logging/… is the vendor API's metrics path, but 127.0.0.1 is not the vendor "
    "API's host (api.anthropic.com, or ANTHROPIC_BASE_URL's: localhost): unclassified"
)
"""The reason of ``POST /api/event_logging/batch`` on 127.0.0.1 when the run takes
``localhost`` as the vendor API's host (the harness's stand-in)."""


def _curl(proxy: str, bundle: Path, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--proxy", proxy, "-o", "-", *args, url],
        env={"PATH": "/usr/bin:/bin", **ca_environment(bundle)},
        capture_output=True,
        timeout=30,
        check=False,
    )


def _run(
    tmp_path: Path, environ: dict[str, str], requests: list[tuple[str, str, str]]
) -> tuple[list[dict[str, Any]], list[str], Path, Path]:
    """``requests`` (method, host, path) through the real proxy, inspecting ``localhost``
    (the vendor API's stand-in) and ``127.0.0.1`` (another origin), with the engine's
    decisions for ``environ``: the inspected records, the report's lines, the log and the
    config dir whose heads file vouches for it."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, environ)
    inspection = dataclasses.replace(inspection, hosts=frozenset({"localhost", "127.0.0.1"}))
    config_dir = tmp_path / "config"
    log = tmp_path / "audit.jsonl"
    cfg = config(
        tmp_path, inspection=inspection, audit_log=log, heads_file=heads_path(log, config_dir)
    )
    with tls_origin(origin_ca, "localhost") as site, tls_origin(origin_ca, "127.0.0.1") as other:
        ports = {"localhost": site.server_address[1], "127.0.0.1": other.server_address[1]}
        with running(cfg) as (url, proxy):
            for method, host, path in requests:
                done = _curl(url, bundle, f"https://{host}:{ports[host]}{path}", "-X", method)
                assert done.returncode == 0, done.stderr
            report = proxy.close({"command": ["test"], "exit_code": 0})
    records = [r for r in read_records(log) if r.get("inspected")]
    return records, report.lines(), log, config_dir


def test_a_vendor_path_on_another_host_is_said_to_be_one() -> None:
    """The metrics path on a host that is not the vendor API's: unclassified, and the reason
    names the path's flow and what the engine takes as the vendor API's hosts; a path no row
    has keeps its reason."""
    decisions = decide(context({}))
    verdict = flows.verdict_for(
        "POST", "127.0.0.2", "/api/event_logging/batch", decisions, api_hosts={"api.anthropic.com"}
    )
    assert (verdict.flow, verdict.allowed) == (flows.UNCLASSIFIED, True)
    assert verdict.reason == (
        "/api/event_logging/… is the vendor API's metrics path, but 127.0.0.2 is not the vendor "
        "API's host (api.anthropic.com, or ANTHROPIC_BASE_URL's): unclassified"
    )
    exact = flows.verdict_for("POST", "gw.example", "/v1/messages", decisions)
    assert exact.reason.startswith("/v1/messages is the vendor API's model_requests path, but ")
    other = flows.verdict_for("GET", "127.0.0.2", "/nothing/here", decisions)
    assert other.reason == "no flow signature matches: the host rules decide"
    on_api = flows.verdict_for("POST", "api.anthropic.com", "/api/event_logging/batch", decisions)
    assert (on_api.flow, on_api.allowed) == ("metrics", True)


def test_the_record_of_a_vendor_path_on_another_host_says_why(tmp_path: Path) -> None:
    """Through the proxy: the audit record of the metrics path sent to 127.0.0.1, inspected
    but not the vendor API's host, names the path's flow and the vendor API's hosts."""
    records, _, _, _ = _run(tmp_path, {}, [("POST", "127.0.0.1", "/api/event_logging/batch")])
    [record] = records
    assert (record["flow"], record["decision"]) == ("unclassified", "allow")
    assert record["reason"] == VENDOR_PATH_ELSEWHERE


def test_the_report_says_what_unclassified_requests_may_be_and_audit_lists_them(
    tmp_path: Path,
) -> None:
    """The report's difference for unclassified requests said they match "none of the
    agent's known endpoints", false of a vendor API path sent to another host: it now says
    either may be the case, and how to list them; ``airlock audit --flow`` lists them."""
    records, lines, log, config_dir = _run(
        tmp_path,
        {},
        [
            ("POST", "localhost", "/v1/messages"),
            ("POST", "127.0.0.1", "/api/event_logging/batch"),
            ("GET", "localhost", "/nothing/here"),
        ],
    )
    assert [(r["path"], r["flow"]) for r in records] == [
        ("/v1/messages", "model_requests"),
        ("/api/event_logging/batch", "unclassified"),
        ("/nothing/here", "unclassified"),
    ]
    text = "\n".join(lines)
    assert "unclassified: 2 sent, 0 refused" in text
    assert "known endpoints, so no data flow covers them" not in text
    assert (
        "differs: requests no data flow covers (a path none of the agent's known endpoints "
        "has, or one of the vendor API's paths on a host that is not the vendor API's: "
        "api.anthropic.com, or ANTHROPIC_BASE_URL's): the engine could not predict them "
        "(airlock audit --flow unclassified lists them, each with why)"
    ) in text
    env = {"CLAUDE_CONFIG_DIR": str(config_dir)}
    listed = airlock("audit", "--audit-log", str(log), "--flow", "unclassified", "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [r["path"] for r in json.loads(listed.stdout)] == [
        "/api/event_logging/batch",
        "/nothing/here",
    ]


def test_a_flows_refused_requests_are_said_to_be_tried(tmp_path: Path) -> None:
    """ "0 sent, 1 refused" was followed by "yet the agent sent 1 request(s)": the difference
    now says the agent tried it, and how many of those were refused, in the line's words."""
    records, lines, _, _ = _run(
        tmp_path,
        {"DISABLE_TELEMETRY": "1"},
        [("POST", "localhost", "/api/event_logging/v2/batch")],
    )
    assert [(r["flow"], r["decision"]) for r in records] == [("metrics", "deny")]
    text = "\n".join(lines)
    assert "metrics: 0 sent, 1 refused" in text
    assert "differs: the engine predicted off, yet the agent tried 1 request(s) (1 refused)" in text
    assert "yet the agent sent" not in text


@pytest.mark.parametrize(
    ("counts", "said"),
    [
        ((2, 0, 0), "yet the agent sent 2 request(s)"),
        ((0, 1, 0), "yet the agent tried 1 request(s) (1 refused)"),
        ((1, 2, 0), "yet the agent tried 3 request(s) (1 sent, 2 refused)"),
        ((0, 1, 1), "yet the agent tried 2 request(s) (1 refused, 1 failed before leaving)"),
    ],
)
def test_the_difference_counts_in_the_reports_words(
    counts: tuple[int, int, int], said: str
) -> None:
    """Requests of a flow that is off, by what became of them: ``sent`` (the JSON's
    ``allowed``), refused, failed before they left."""
    allowed, refused, failed = counts
    records = [{"flow": "metrics", "decision": "allow", "bytes_out": 10}] * allowed
    records += [{"flow": "metrics", "decision": "deny"}] * refused
    records += [
        {"flow": "metrics", "decision": "allow", "error": "refused", "bytes_out": 0}
    ] * failed
    summaries = flows.compare(records, decide(context({"DISABLE_TELEMETRY": "1"})))
    [metrics] = [s for s in summaries if s.flow == "metrics"]
    assert (metrics.allowed, metrics.refused, metrics.failed) == counts
    assert metrics.difference == f"the engine predicted off, {said}"
