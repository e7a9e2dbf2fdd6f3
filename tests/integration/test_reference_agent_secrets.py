"""The real reference agent inside ``airlock run --inspect --secrets redact|block``, with a key
in its user's prompt: redacted, the agent's model request still reaches its vendor's stand-in as
valid JSON without the key and the agent answers; blocked, the request never leaves and the
agent shows its user airlock's refusal. The key is in no record, report or message.

The stand-ins and the upstream proxy that routes the vendor's own host to one of them are those
of ``test_reference_agent`` (``stand_ins``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import airlock
from tests.integration.test_reference_agent import (
    AGENT,
    API_KEY,
    HOST,
    VERSION,
    _agent_version,
    stand_ins,
)

KEY = "ghp_" + "Qw3eR5tY7uI9oP1aS3dF5gH7jK9lZ1xC3vB5"


@pytest.mark.parametrize("mode", ["redact", "block"])
def test_a_key_in_the_agents_prompt(tmp_path: Path, project: Path, mode: str) -> None:
    """The prompt's key is replaced before the model request leaves (the agent still works),
    or the request is refused with a 403 the agent shows; never logged, never let out."""
    assert _agent_version() == VERSION, "run scripts/setup.sh --dev to install the agent"
    project.mkdir(exist_ok=True)
    log = tmp_path / "audit.jsonl"
    report = tmp_path / "report.json"
    with stand_ins(tmp_path) as (site, vendor, router):
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(log), "--report-json", str(report),
            "--upstream-proxy", f"http://127.0.0.1:{router.server_address[1]}",
            "--allow", f"{HOST}:{port}", "--allow", "api.anthropic.com",
            "--inspect", HOST, "--inspect", "api.anthropic.com",
            "--upstream-ca", str(tmp_path / "origin.pem"), "--secrets", mode,
            "--ro", str(AGENT), "--env", "ANTHROPIC_API_KEY",
            "--", str(AGENT / "node_modules" / ".bin" / "claude"),
            "-p", f"say hi; my deploy token is {KEY}",
            env={
                "ANTHROPIC_BASE_URL": f"https://{HOST}:{port}",  # the stand-in vendor API
                "ANTHROPIC_API_KEY": API_KEY,
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
            },
            cwd=project, timeout=120,
        )  # fmt: skip
        received = [(path, body) for _, path, body in site.seen + vendor.seen]
    # the key left in no request, to either stand-in, whatever the mode
    assert all(KEY.encode() not in body and KEY.encode() not in path.encode()
               for path, body in received), [path for path, _ in received]  # fmt: skip
    records = json.loads(airlock("audit", "--json", "--audit-log", str(log)).stdout)
    models = [r for r in records if r.get("inspected") and r.get("flow") == "model_requests"
              and str(r["path"]).startswith("/v1/messages")]  # fmt: skip
    assert models, [(r.get("path"), r.get("flow")) for r in records]
    assert all(r["secrets"].get("github_token", 0) >= 1 for r in models), models
    for text in (log.read_text(), report.read_text(), done.stderr):
        assert KEY not in text
    if mode == "redact":
        assert done.returncode == 0, done.stderr[-2000:]
        assert "hi from the stand-in" in done.stdout
        sent = [body for path, body in received if path.startswith("/v1/messages")]
        assert sent and all(b"[REDACTED:github_token]" in body for body in sent)
        for body in sent:  # still the agent's request: JSON its vendor can read
            assert json.loads(body)["messages"], body[:200]
        assert {(r["decision"], r["status"]) for r in models} == {("allow", 200)}
    else:
        assert not any(path.startswith("/v1/messages") for path, _ in received)
        assert {(r["decision"], r["status"]) for r in models} == {("deny", 403)}
        assert all("github_token" in str(r["reason"]) for r in models), models
        assert done.returncode != 0
        # the agent shows its user airlock's answer: who refused, and why
        assert "airlock refused" in done.stdout and "--secrets block" in done.stdout, done.stdout
