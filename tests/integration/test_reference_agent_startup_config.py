"""The real reference agent inside ``airlock run --inspect``, with
``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` in airlock's policy but not told to the agent:
its start-up configuration requests (bootstrap, penguin mode, server URLs) are refused (named
``model_requests``, whose decision has them off), as its metrics are, while the model's go.
They were let out, though the reference was observed sending no request besides the model's
with that variable set."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import airlock
from tests.integration.test_reference_agent import (
    AGENT,
    API_KEY,
    MODEL_STREAM,
    VERSION,
    _agent_version,
    agent_run,
    stand_ins,
)

STARTUP = (
    "/api/claude_cli/bootstrap",
    "/api/claude_code_penguin_mode",
    "/api/directory/server-urls",
)


def test_startup_config_is_refused_when_the_policy_blocks_nonessential_traffic(
    tmp_path: Path, project: Path
) -> None:
    """Refused ``403`` naming the flow and the variable; never reaching the vendor."""
    policy = json.dumps({"env": {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}})
    done, _, vendor_seen, _ = agent_run(tmp_path, project, ["--settings", policy], {})
    log = tmp_path / "audit.jsonl"
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hi from the stand-in" in done.stdout
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    inspected = [r for r in json.loads(done.stdout) if r.get("inspected")]
    startup = [r for r in inspected if str(r["path"]).split("?")[0] in STARTUP]
    assert startup, inspected
    assert {(r["flow"], r["decision"], r["status"]) for r in startup} == {
        ("model_requests", "deny", 403)
    }
    assert all("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC" in str(r["reason"]) for r in startup)
    assert not any(path.split("?")[0] in STARTUP for path in vendor_seen), vendor_seen
    model = [r for r in inspected if str(r["path"]).startswith("/v1/messages")]
    assert model and {(r["flow"], r["decision"]) for r in model} == {("model_requests", "allow")}


def test_the_organisations_policy_still_reaches_the_agent_with_nonessential_traffic_blocked(
    tmp_path: Path, project: Path
) -> None:
    """Told ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` and talking to the vendor's API
    itself (no ``ANTHROPIC_BASE_URL``), the reference still asks for the organisation's
    remote managed settings and policy limits: they go (named ``model_requests``), nothing
    it sends is refused, and the report flags no difference."""
    assert _agent_version() == VERSION, "run scripts/setup.sh --dev to install the agent"
    (project / ".claude" / "commands").mkdir(parents=True)
    log = tmp_path / "audit.jsonl"
    report = tmp_path / "report.json"
    with stand_ins(tmp_path) as (_site, vendor, router):
        vendor.answers["/v1/messages"] = ("text/event-stream", MODEL_STREAM)
        done = airlock(
            "run", "--audit-log", str(log), "--report-json", str(report),
            "--upstream-proxy", f"http://127.0.0.1:{router.server_address[1]}",
            "--allow", "api.anthropic.com", "--inspect", "api.anthropic.com",
            "--upstream-ca", str(tmp_path / "origin.pem"),
            "--ro", str(AGENT), "--env", "ANTHROPIC_API_KEY",
            "--env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC",
            "--", str(AGENT / "node_modules" / ".bin" / "claude"), "-p", "say hi",
            env={
                "ANTHROPIC_API_KEY": API_KEY,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
                "DISABLE_AUTOUPDATER": "1",
            },
            cwd=project, timeout=90,
        )  # fmt: skip
        vendor_seen = [path.split("?")[0] for _, path, _ in vendor.seen]
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hi from the stand-in" in done.stdout
    done = airlock("audit", "--json", "--audit-log", str(log))
    inspected = [r for r in json.loads(done.stdout) if r.get("inspected")]
    assert inspected and all(r["decision"] == "allow" for r in inspected), inspected
    named = {str(r["path"]).split("?")[0]: r["flow"] for r in inspected}
    assert named.get("/api/claude_code/settings") == "model_requests", named
    assert "/api/claude_code/settings" in vendor_seen
    flows = json.loads(report.read_text())["flows"]
    assert not [flow for flow in flows if flow["difference"]], flows
