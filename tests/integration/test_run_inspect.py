"""``airlock run --inspect`` and ``--repo`` end to end: real bubblewrap, the real proxy, clients
inside, a TLS origin with its own CA and a code host that requires a token, on 127.0.0.2."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.egress.codehost import TOKEN, code_host, git, make_repo
from tests.egress.harness import NOW, tls_origin

HOST = "127.0.0.2"  # not the sandbox's NO_PROXY: reached through the proxy, as a real host
OTHER = "127.0.0.3"
KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"

NODE = """
const http = require('http'), tls = require('tls');
const proxy = new URL(process.env.HTTPS_PROXY);
http.request({host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: '%s'})
  .on('connect', (res, socket) => {
    const s = tls.connect({socket, servername: '%s'}, () => s.write(
      'POST /api/eval/sdk HTTP/1.1\\r\\nHost: %s\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}'));
    let b = ''; s.on('data', d => b += d);
    s.on('end', () => console.log('node ' + b.split(' ')[1]));
    s.on('error', e => { console.error(e.message); process.exit(1); });
  }).end();
"""


def _records(log: Path) -> list[dict[str, object]]:
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_inspected_requests_are_named_enforced_and_scrubbed(tmp_path: Path, project: Path) -> None:
    """curl, Python and Node inside reach an inspected host; each request is a record with its
    flow; a metrics request with DISABLE_TELEMETRY is refused 403; a planted key is redacted
    before it leaves and never logged; an un-inspected host stays a tunnel (same bytes)."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    (project / "body.json").write_text(json.dumps({"content": f"my key {KEY}"}))
    log = tmp_path / "audit.jsonl"
    with (
        tls_origin(origin_ca, HOST, bind=HOST) as site,
        tls_origin(origin_ca, OTHER, bind=OTHER) as other,
    ):
        port, other_port = site.server_address[1], other.server_address[1]
        script = "; ".join(
            [
                f"curl -sS https://{HOST}:{port}/v1/messages --data-binary @body.json",
                "echo",
                f"curl -sS https://{HOST}:{port}/api/event_logging/v2/batch -d '{{}}'",
                'python3 -c "import urllib.request as u; '
                f"print('python', u.urlopen('https://{HOST}:{port}/api/claude_cli/bootstrap').status)\"",
                'node -e "$NODE_SCRIPT"',
                f"curl -sS --cacert origin.pem https://{OTHER}:{other_port}/bytes/300000 -o out.bin",
            ]
        )
        done = airlock(
            "run", "--audit-log", str(log), "--report-json", str(tmp_path / "report.json"),
            "--allow", f"{HOST}:{port}", "--allow", f"{OTHER}:{other_port}",
            "--inspect", HOST, "--upstream-ca", str(project / "origin.pem"),
            "--secrets", "redact", "--", "sh", "-c", script,
            env={
                    "DISABLE_TELEMETRY": "1",
                    "ANTHROPIC_BASE_URL": f"https://{HOST}:{port}",  # the stand-in vendor API
                    "NODE_SCRIPT": NODE % (f"{HOST}:{port}", HOST, HOST),
                },
            cwd=project, timeout=180,
        )  # fmt: skip
        received = {path: body for _, path, body in site.seen}
        blob = other.blob[:300000]
    assert done.returncode == 0, done.stderr
    assert '"received"' in done.stdout
    assert "DISABLE_TELEMETRY" in done.stdout and "metrics" in done.stdout
    assert "python 200" in done.stdout and "node 403" in done.stdout
    assert (
        hashlib.sha256((project / "out.bin").read_bytes()).digest() == hashlib.sha256(blob).digest()
    )
    assert KEY.encode() not in received["/v1/messages"]
    assert b"[REDACTED:github_token]" in received["/v1/messages"]
    assert "/api/event_logging/v2/batch" not in received
    records = _records(log)
    inspected = [r for r in records if r.get("inspected")]
    assert [(r["path"], r["flow"], r["decision"], r["status"]) for r in inspected] == [
        ("/v1/messages", "model_requests", "allow", 200),
        ("/api/event_logging/v2/batch", "metrics", "deny", 403),
        ("/api/claude_cli/bootstrap", "model_requests", "allow", 200),
        ("/api/eval/sdk", "metrics", "deny", 403),
    ]
    for record in inspected:
        assert {"time", "method", "host", "port", "path", "status", "flow", "decision", "reason",
                "bytes_out", "bytes_in", "secrets"} <= set(record)  # fmt: skip
    assert inspected[0]["secrets"] == {"github_token": 1}
    assert all("metrics" in str(r["reason"]) for r in inspected if r["decision"] == "deny")
    assert [r["host"] for r in records if r.get("type") == "tunnel"] == [OTHER]
    assert KEY not in log.read_text() and KEY not in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    flows = {row["flow"]: row for row in report["flows"]}
    assert flows["metrics"]["refused"] == 2 and flows["metrics"]["difference"]


def test_git_through_the_gateway_from_inside(tmp_path: Path, project: Path) -> None:
    """Inside, git clones (by the code host's URL, which airlock rewrites to the gateway) and
    pushes the granted repository, is refused the other one and a push to the :ro one with the
    gateway's words, and the token is nowhere inside."""
    root = tmp_path / "host"
    for name in ("allowed", "other", "readonly"):
        make_repo(root, "octo", name)
    log = tmp_path / "audit.jsonl"
    with code_host(root, bind=HOST) as host:
        upstream = f"http://{HOST}:{host.server_address[1]}"
        identity = "-c user.name=t -c user.email=t@example.org"
        script = "; ".join(
            [
                f"git clone -q {upstream}/octo/allowed a",
                f"(cd a && git {identity} commit -q --allow-empty -m second && git push -q origin main"
                " && echo PUSHED)",
                f"git clone -q {upstream}/octo/other o 2>&1",
                f"git clone -q {upstream}/octo/readonly r",
                f"(cd r && git {identity} commit -q --allow-empty -m x && git push -q origin main 2>&1)",
                "env > env.txt",
                "git -C a config --list > config.txt",
            ]
        )
        done = airlock(
            "run", "--audit-log", str(log),
            "--repo", "octo/allowed", "--repo", "octo/readonly:ro",
            "--git-upstream", upstream,
            "--", "sh", "-c", script,
            env={"GH_TOKEN": TOKEN}, cwd=project, timeout=180,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "PUSHED" in done.stdout
    assert "airlock: repository 'octo/other' is not granted to this run" in done.stdout
    assert "read-only in this run" in done.stdout
    history = git("log", "--format=%s", "main", cwd=root / "octo" / "allowed.git").stdout.split()
    assert history == ["second", "first"]
    assert git("log", "--format=%s", "main", cwd=root / "octo" / "readonly.git").stdout.split() == [
        "first"
    ]
    for path in project.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    names = [line.split("=", 1)[0] for line in (project / "env.txt").read_text().splitlines()]
    assert "GH_TOKEN" not in names and "GITHUB_TOKEN" not in names
    assert TOKEN not in done.stdout + done.stderr + log.read_text()


def test_a_token_in_the_git_upstream_url_is_refused(tmp_path: Path, project: Path) -> None:
    """--git-upstream with a user and password: airlock stops before anything runs (125),
    says where the token goes instead, and shows it nowhere."""
    marker = tmp_path / "ran"
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--repo", "octo/allowed",
        "--git-upstream", f"http://x-access-token:{TOKEN}@{HOST}:9",
        "--", "touch", str(marker),
        env={"GH_TOKEN": TOKEN}, cwd=project,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert "--git-upstream" in done.stderr and "GH_TOKEN or GITHUB_TOKEN" in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("options", "environ"),
    [
        (["--env", "GH_TOKEN"], {}),
        (["--env", "CI_SECRET"], {"CI_SECRET": TOKEN}),
        (["--env", f"CLONE_URL=https://x:{TOKEN}@example.org/"], {}),
        (["--env", "PLAIN", "--env", "AGAIN"], {"PLAIN": "x", "AGAIN": f" {TOKEN}\n"}),
    ],
    ids=["same_name", "other_name", "set_on_the_line", "second_of_two"],
)
def test_the_gateways_token_passed_on_by_env_is_refused(
    tmp_path: Path, project: Path, options: list[str], environ: dict[str, str]
) -> None:
    """--env that would put the gateway's own token inside, under any name or set on the
    command line: airlock stops before anything runs (125), naming the variable, not the
    value."""
    marker = tmp_path / "ran"
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--repo", "octo/allowed",
        *options, "--", "touch", str(marker),
        env={"GH_TOKEN": TOKEN, **environ}, cwd=project,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert "the token the git gateway uses for --repo" in done.stderr
    name = options[-1].split("=", 1)[0]
    assert f"--env {name}" in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    assert not marker.exists()
