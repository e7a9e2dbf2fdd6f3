"""``airlock run --inspect HOST`` where the command points the agent at HOST itself: the engine
names the vendor API's hosts from airlock's configuration (no ``ANTHROPIC_BASE_URL`` there),
yet metrics requests to the inspected host are refused with ``DISABLE_TELEMETRY`` set. Real
bubblewrap, the real proxy, curl inside, a TLS origin with its own CA on 127.0.0.2."""

from __future__ import annotations

import json
from pathlib import Path

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.egress.harness import NOW, tls_origin

HOST = "127.0.0.2"  # not the sandbox's NO_PROXY: reached through the proxy, as a real host


def test_metrics_to_an_inspected_host_the_engine_did_not_name_are_refused(
    tmp_path: Path, project: Path
) -> None:
    """The command sets ``ANTHROPIC_BASE_URL`` inside the sandbox (airlock's environment has
    none): its metrics batch and feature-flag request to the inspected host are refused
    ``403`` naming ``DISABLE_TELEMETRY``, never reach the origin, and the report counts them
    as refused metrics; its model request goes."""
    project.mkdir(parents=True, exist_ok=True)
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    log = tmp_path / "audit.jsonl"
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        base = f"https://{HOST}:{port}"
        script = "; echo; ".join(
            [
                f'export ANTHROPIC_BASE_URL={base}; curl -sS "$ANTHROPIC_BASE_URL/api/event_logging/v2/batch" -d "{{}}"',
                f"curl -sS {base}/api/eval/sdk-abc -d '{{}}'",
                f"curl -sS {base}/v1/messages -d '{{}}'",
            ]
        )
        done = airlock(
            "run", "--audit-log", str(log), "--report-json", str(tmp_path / "report.json"),
            "--allow", f"{HOST}:{port}", "--inspect", HOST,
            "--upstream-ca", str(project / "origin.pem"),
            "--", "sh", "-c", script,
            env={"DISABLE_TELEMETRY": "1"}, cwd=project, timeout=180,
        )  # fmt: skip
        seen = [path for _, path, _ in site.seen]
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("data flow: metrics (off)") == 2
    assert "DISABLE_TELEMETRY" in done.stdout
    assert seen == ["/v1/messages"]
    report = json.loads((tmp_path / "report.json").read_text())
    flows = {row["flow"]: row for row in report["flows"]}
    assert flows["metrics"]["refused"] == 2 and flows["metrics"]["allowed"] == 0
    assert flows["metrics"]["difference"]
