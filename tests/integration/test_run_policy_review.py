"""``airlock run`` lets out by default exactly the hosts the reference agent sends each flow
the engine has on to, and ``airlock flows --json`` names the same hosts: a Vertex gateway
(``ANTHROPIC_VERTEX_BASE_URL``), Vertex's multi-region hosts, Bedrock's region from
``AWS_DEFAULT_REGION``, the survey's own OpenTelemetry collector. Real bubblewrap, the real
proxy and curl inside; the proxy chains to an upstream proxy on loopback that answers every
``CONNECT`` ``502``, so nothing leaves the machine and every allowed tunnel is seen there."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.policy.rules import matches, parse_domain
from tests.cli import airlock, run_script
from tests.integration.refusing_upstream import refusing_upstream


def _decisions(log: Path) -> dict[str, str]:
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    return {r["host"]: r["decision"] for r in json.loads(done.stdout) if r.get("host")}


def _probe(tmp_path: Path, hosts: list[str], *options: str, env: dict[str, str]) -> dict[str, str]:
    """curl each host from inside; the proxy's decision for each, from the audit log."""
    script = "; ".join(f"curl -s -o /dev/null --max-time 10 https://{host}/" for host in hosts)
    with refusing_upstream() as upstream:
        done = run_script(
            tmp_path,
            script + "; true",
            "--upstream-proxy",
            f"127.0.0.1:{upstream.server_address[1]}",
            *options,
            env=env,
        )
    assert done.returncode == 0, done.stderr
    decided = _decisions(tmp_path / "audit.jsonl")
    assert [authority.rsplit(":", 1)[0] for authority in upstream.asked] == [
        host.rsplit(":", 1)[0] for host in hosts if decided.get(host.rsplit(":", 1)[0]) == "allow"
    ]
    return decided


@pytest.mark.parametrize(
    ("env", "options", "hosts"),
    [
        (
            {
                "CLAUDE_CODE_USE_VERTEX": "1",
                "ANTHROPIC_VERTEX_BASE_URL": "https://llm-gw.corp.example/vertex",
            },
            [],
            ["llm-gw.corp.example"],
        ),
        (
            {"CLAUDE_CODE_USE_VERTEX": "1", "CLOUD_ML_REGION": "us"},
            [],
            ["aiplatform.us.rep.googleapis.com"],
        ),
        (
            {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_DEFAULT_REGION": "eu-north-1"},
            ["--env", "AWS_DEFAULT_REGION"],
            ["bedrock-runtime.eu-north-1.amazonaws.com"],
        ),
        (
            {
                "DISABLE_TELEMETRY": "1",
                "CLAUDE_CODE_ENABLE_FEEDBACK_SURVEY_FOR_OTEL": "1",
                "OTEL_EXPORTER_OTLP_ENDPOINT": "https://otel.corp.example:4318",
            },
            [],
            ["otel.corp.example:4318"],
        ),
    ],
    ids=["vertex_gateway", "vertex_multi_region", "bedrock_default_region", "survey_collector"],
)
def test_the_hosts_the_agent_sends_an_on_flow_to_are_let_out(
    tmp_path: Path, env: dict[str, str], options: list[str], hosts: list[str]
) -> None:
    """Each host the reference sends a flow the engine has on to goes through the proxy by
    default (it was refused: no allow rule matched), and ``airlock flows --json`` names it
    among that flow's hosts, as the run's start record lists it."""
    decided = _probe(tmp_path, hosts, *options, env=env)
    names = [host.rsplit(":", 1)[0] for host in hosts]
    assert {name: decided.get(name) for name in names} == dict.fromkeys(names, "allow")
    flows = json.loads(airlock("flows", "--json", env=env).stdout)["flows"]
    listed = [parse_domain(host) for flow in flows for host in flow.get("hosts", [])]
    for name in names:
        assert any(matches(pattern, name) for pattern in listed), name


def test_flows_json_names_the_hosts_a_run_lets_out(tmp_path: Path) -> None:
    """``airlock flows --json`` gives each flow the hosts ``airlock run`` lets out for it by
    default: the same pairs as the run's start record, flow by flow."""
    env = {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1"}
    done = run_script(tmp_path, "true", "--env", "AWS_REGION", env=env)
    assert done.returncode == 0, done.stderr
    log = airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl"))
    [start] = [r for r in json.loads(log.stdout) if r.get("type") == "start"]
    flows = json.loads(airlock("flows", "--json", env=env).stdout)["flows"]
    listed = sorted(
        f"{host} (policy: flow {flow['id']} is on)" for flow in flows for host in flow["hosts"]
    )
    assert listed == sorted(start["default_allow"])
    assert {flow["id"]: flow["hosts"] for flow in flows}["model_requests"] == [
        "bedrock-runtime.eu-west-1.amazonaws.com",
        "bedrock.eu-west-1.amazonaws.com",
    ]


def test_a_default_region_bedrock_needs_stops_the_run_when_dropped(
    tmp_path: Path, project: Path
) -> None:
    """``AWS_DEFAULT_REGION`` names Bedrock's host when ``AWS_REGION`` does not; it is dropped
    by its name, so without ``--env AWS_DEFAULT_REGION`` the agent inside would use another
    region than the one the proxy lets out: the run stops before the command starts, naming
    the way out."""
    marker = project / "ran"  # in the workspace: written inside
    env = {"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_DEFAULT_REGION": "eu-north-1"}
    done = run_script(tmp_path, f"touch {marker}", env=env)
    assert done.returncode == 125, done.stderr
    assert not marker.exists()
    assert "--env AWS_DEFAULT_REGION" in done.stderr


@pytest.mark.parametrize(
    ("option", "name"),
    [("--env=CLAUDE_CONFIG_DIR={other}/cfg", "CLAUDE_CONFIG_DIR"), ("--env=HOME={other}", "HOME")],
)
def test_an_env_that_moves_the_agents_settings_is_said(
    tmp_path: Path, project: Path, option: str, name: str
) -> None:
    """``--env CLAUDE_CONFIG_DIR=DIR`` (or ``--env HOME=DIR`` with no config dir set) has the
    agent inside read other settings than airlock decides from: the run says so, and goes on."""
    other = tmp_path / "other"
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), option.format(other=other),
        "--", "sh", "-c", "exit 4",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert f"--env {name}={other}" in done.stderr
    assert "the agent inside reads its settings there" in done.stderr
    assert f"set {name} in airlock's environment too" in done.stderr


def test_an_env_that_gives_the_same_settings_places_says_nothing(
    tmp_path: Path, project: Path, home: Path
) -> None:
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), f"--env=HOME={home}",
        "--", "sh", "-c", "exit 4",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "reads its settings there" not in done.stderr


def test_the_note_of_an_env_shows_a_terminals_escapes_as_text(
    tmp_path: Path, project: Path
) -> None:
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"),
        f"--env=CLAUDE_CONFIG_DIR={tmp_path}/x\x1b]0;title\x07\x1b[2J", "--", "true",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr and "\\x1b]0;title\\x07" in done.stderr
