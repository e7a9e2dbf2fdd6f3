"""``airlock run``: the policy engine decides with the environment the command will have inside,
not airlock's own: ``--env NAME=VALUE`` counts, a variable dropped as a credential does not.
Its decisions, the proxy's default hosts, what inspection enforces and the report then speak of
what the agent sees; and a variable the engine reads that would be dropped (a gateway's URL
holding a password) stops the run, as the agent would otherwise send its data elsewhere.
Real bubblewrap, the real proxy, curl inside, a TLS origin on 127.0.0.2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from airlock.egress.ca import RunCA
from tests.cli import airlock, run_script
from tests.egress.harness import NOW, tls_origin

HOST = "127.0.0.2"  # not the sandbox's NO_PROXY: reached through the proxy, as a real host
PASSWORD = "Pw!$&'()*+,;=~x9Z"


def _run(
    tmp_path: Path, *args: str, script: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_script(tmp_path, script, *args, env=env)


def _records(log: Path) -> list[dict[str, object]]:
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_an_opt_out_given_with_env_is_what_the_report_predicts(tmp_path: Path) -> None:
    """``--env DISABLE_TELEMETRY=1``: the agent inside sends no metrics, and the report says
    the engine predicted metrics ``off`` (it said ``on``, read from airlock's environment)."""
    report = tmp_path / "report.json"
    done = _run(
        tmp_path,
        "--report-json", str(report), "--inspect", HOST, "--env", "DISABLE_TELEMETRY=1",
        script="true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    flows = {row["flow"]: row for row in json.loads(report.read_text())["flows"]}
    assert flows["metrics"]["predicted"] == "off"


def test_a_base_url_given_with_env_is_the_default_model_host(tmp_path: Path) -> None:
    """``--env ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``: the proxy's default rules let the
    model requests go there; api.anthropic.com stays a host of the flow for the agent's
    start-up configuration alone (the engine's ``startup_config``), and goes with it."""
    done = _run(tmp_path, "--env", "ANTHROPIC_BASE_URL=http://127.0.0.1:9", script="true")
    assert done.returncode == 0, done.stderr
    [start] = [r for r in _records(tmp_path / "audit.jsonl") if r.get("type") == "start"]
    model = [str(rule) for rule in start["default_allow"] if "model_requests" in str(rule)]  # type: ignore[attr-defined]
    assert model == [
        "127.0.0.1 (policy: flow model_requests is on)",
        "api.anthropic.com (policy: flow model_requests is on)",
    ]
    done = _run(
        tmp_path,
        "--env", "ANTHROPIC_BASE_URL=http://127.0.0.1:9",
        "--env", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1",
        script="true",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [_, start] = [r for r in _records(tmp_path / "audit.jsonl") if r.get("type") == "start"]
    model = [str(rule) for rule in start["default_allow"] if "model_requests" in str(rule)]  # type: ignore[attr-defined]
    assert model == ["127.0.0.1 (policy: flow model_requests is on)"]


def test_model_requests_and_opt_outs_are_read_as_the_agent_sees_them(
    tmp_path: Path, project: Path
) -> None:
    """The agent is given its gateway with ``--env ANTHROPIC_BASE_URL`` and ``--env
    DO_NOT_TRACK=0`` over airlock's ``DO_NOT_TRACK=1``: its model request to the gateway is
    a model request (it was ``unclassified``, flagged as a difference), and its metrics go
    out as the engine predicts (they were refused, blaming a value the agent never saw)."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    report = tmp_path / "report.json"
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        script = "; ".join(
            [
                f"curl -sS https://{HOST}:{port}/v1/messages -d '{{}}'",
                "echo",
                f"curl -sS -o /dev/null -w 'metrics %{{http_code}}\\n' "
                f"https://{HOST}:{port}/api/event_logging/v2/batch -d '{{}}'",
            ]
        )
        done = _run(
            tmp_path,
            "--report-json", str(report), "--allow", f"{HOST}:{port}", "--inspect", HOST,
            "--upstream-ca", str(project / "origin.pem"),
            "--env", f"ANTHROPIC_BASE_URL=https://{HOST}:{port}", "--env", "DO_NOT_TRACK=0",
            script=script, env={"DO_NOT_TRACK": "1"},
        )  # fmt: skip
        seen = [path for _, path, _ in site.seen]
    assert done.returncode == 0, done.stderr
    assert "metrics 200" in done.stdout, done.stdout
    assert seen == ["/v1/messages", "/api/event_logging/v2/batch"]
    inspected = [r for r in _records(tmp_path / "audit.jsonl") if r.get("inspected")]
    assert [(r["path"], r["flow"], r["decision"]) for r in inspected] == [
        ("/v1/messages", "model_requests", "allow"),
        ("/api/event_logging/v2/batch", "metrics", "allow"),
    ]
    flows = {row["flow"]: row for row in json.loads(report.read_text())["flows"]}
    assert "unclassified" not in flows
    assert not any(row["difference"] for row in flows.values()), flows
    assert "DO_NOT_TRACK" not in done.stderr


def test_a_base_url_dropped_as_a_credential_stops_the_run(tmp_path: Path, project: Path) -> None:
    """``ANTHROPIC_BASE_URL`` naming a gateway with a password would be dropped (it looks like
    a credential): inside, the agent would send the conversation to api.anthropic.com while
    the engine read the gateway. 125 before anything runs, naming the variable and the ways
    out, never the password; with ``--env ANTHROPIC_BASE_URL`` it is passed in and runs."""
    marker = project / "ran"  # in the workspace: written inside
    url = f"https://svc:{PASSWORD}@llm-gw.corp.example"
    done = _run(tmp_path, script=f"touch {marker}", env={"ANTHROPIC_BASE_URL": url})
    assert done.returncode == 125, done.stderr
    assert not marker.exists()
    assert not (tmp_path / "audit.jsonl").exists()
    said = done.stderr
    assert "ANTHROPIC_BASE_URL in airlock's environment looks like a credential" in said
    assert "--env ANTHROPIC_BASE_URL" in said and "remove the secret" in said
    assert "nothing ran" in said
    assert PASSWORD not in said and PASSWORD not in done.stdout
    passed = _run(
        tmp_path,
        "--env",
        "ANTHROPIC_BASE_URL",
        script=f'touch {marker}; test "$ANTHROPIC_BASE_URL" = "{url}"',
        env={"ANTHROPIC_BASE_URL": url},
    )
    assert passed.returncode == 0, passed.stderr
    assert marker.exists()


def test_a_region_bedrock_needs_stops_the_run_when_dropped(tmp_path: Path, project: Path) -> None:
    """``AWS_REGION`` is dropped by its name. Without Bedrock the engine's decisions do not
    hang on it, so the run goes on as before (the variable not passed in, and said so). With
    Bedrock it names the model host: dropped, it stops the run, and the only way out said is
    ``--env AWS_REGION`` (its name, not a value, looks like a credential)."""
    done = _run(tmp_path, script='test -z "$AWS_REGION"', env={"AWS_REGION": "eu-west-1"})
    assert done.returncode == 0, done.stderr
    assert "AWS_REGION" in done.stderr  # among the variables not passed in
    marker = project / "ran"  # in the workspace: written inside
    env = {"AWS_REGION": "eu-west-1", "CLAUDE_CODE_USE_BEDROCK": "1"}
    done = _run(tmp_path, script=f"touch {marker}", env=env)
    assert done.returncode == 125, done.stderr
    assert not marker.exists()
    assert "--env AWS_REGION" in done.stderr and "remove the secret" not in done.stderr
