"""The dotless ``ı`` (U+0131) and the dotted ``İ`` (U+0130) in a path of a flow that is off:
case-insensitive matchers take either for ``i`` though Unicode's case folding does not (Java's
``equalsIgnoreCase``, which Spring's path matcher with case sensitivity off compares a literal
segment with; Python's ``re`` with ``IGNORECASE``), so ``/api/event_logg%C4%B1ng/v2/batch``
reaches the metrics batch there. It went out, named ``unclassified``, with metrics off."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.flows import classify, off_flow, off_rows
from airlock.policy import FlowId, decide
from tests.egress.harness import inspected_post, inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.policy.helpers import context

API = "api.anthropic.com"
TELEMETRY_OFF = {"DISABLE_TELEMETRY": "1"}

SPELLINGS = [
    pytest.param("/api/event_logg%C4%B1ng/v2/batch", id="dotless_i"),
    pytest.param("/ap%C4%B0/event_logging/v2/batch", id="dotted_capital_i"),
    pytest.param("/ap%c4%b1/eval/sdk", id="dotless_i_lower_case_escapes"),
    pytest.param("/api/claude_code/organ%C4%B0zations/metrics_enabled", id="dotted_in_a_get_row"),
]


@pytest.mark.parametrize("target", SPELLINGS)
def test_the_i_case_insensitive_matchers_read_is_refused_and_named(target: str) -> None:
    """Each spelling is refused as metrics, and named metrics."""
    decisions = decide(context(TELEMETRY_OFF))
    verdict = off_flow(off_rows(API, decisions), target, decisions)
    assert verdict is not None and verdict.flow == FlowId.METRICS and not verdict.allowed
    method = "GET" if "metrics_enabled" in target else "POST"
    assert classify(method, API, target) == FlowId.METRICS


def test_such_a_matcher_does_route_it_there() -> None:
    """What the test stands on: Python's ``re`` with ``IGNORECASE`` matches the metrics
    batch's path with either letter in place of its ``i``."""
    route = re.compile(r"/api/event_logging/v2/batch", re.IGNORECASE)
    assert route.fullmatch("/api/event_logg\u0131ng/v2/batch")
    assert route.fullmatch("/ap\u0130/event_logging/v2/batch")


def test_other_letters_of_an_allowed_path_still_go() -> None:
    """Only those two letters are read as ``i``: a model request with one is no off flow's."""
    decisions = decide(context(TELEMETRY_OFF))
    rows = off_rows(API, decisions)
    assert off_flow(rows, "/v1/messages/count_tokens%C4%B1", decisions) is None


def test_on_the_wire(tmp_path: Path) -> None:
    """Inside inspected TLS: ``403`` naming the flow, nothing at the origin, logged as a
    refused metrics request."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, TELEMETRY_OFF)
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        with running(cfg) as (url, _):
            answers = [inspected_post(url, bundle, port, target.values[0]) for target in SPELLINGS]
        seen = list(site.seen)
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 403"), answer[:200]
        assert b"data flow: metrics (off)" in answer
    assert seen == []
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["flow"], r["decision"]) for r in records] == [("metrics", "deny")] * len(SPELLINGS)
