"""``airlock run --repo``, second review: what git inside reaches is the repository granted, as
``--repo`` spells it, and the token never crosses the network in the clear. Real bubblewrap,
the real proxy and gateway, real git, a code host on 127.0.0.2 (git's own http-backend, which
tells repository names apart by case, as a file system does)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli import airlock
from tests.egress.codehost import TOKEN, code_host, git, make_repo

HOST = "127.0.0.2"  # reached through the proxy, as a real host
IDENTITY = "-c user.name=t -c user.email=t@example.org"


def test_a_repository_asked_in_another_case_is_the_granted_one(
    tmp_path: Path, project: Path
) -> None:
    """``--repo octo/allowed`` (matched in any case, as GitHub reads names): git inside asks
    for ``OCTO/ALLOWED``, another repository on a code host that tells names apart by case.
    It used to clone that repository and push to it with the token; it reaches
    ``octo/allowed`` instead, and the code host is never asked for the other."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    make_repo(root, "OCTO", "ALLOWED")  # not granted
    with code_host(root, bind=HOST) as host:
        upstream = f"http://{HOST}:{host.server_address[1]}"
        script = "; ".join(
            [
                f"git clone -q {upstream}/OCTO/ALLOWED upper",
                "cat upper/README",
                f"(cd upper && git {IDENTITY} commit -q --allow-empty -m pushed-as-upper"
                " && git push -q origin main && echo PUSHED)",
            ]
        )
        done = airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"),
            "--repo", "octo/allowed", "--git-upstream", upstream,
            "--", "sh", "-c", script,
            env={"GH_TOKEN": TOKEN}, cwd=project, timeout=180,
        )  # fmt: skip
        seen = [path for _, path, _ in host.seen]
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "octo/allowed", done.stdout
    assert "PUSHED" in done.stdout, done.stderr
    assert seen and not [path for path in seen if "/OCTO/" in path], seen
    granted = git("log", "--format=%s", "main", cwd=root / "octo" / "allowed.git")
    assert granted.stdout.split() == ["pushed-as-upper", "first"]
    other = git("log", "--format=%s", "main", cwd=root / "OCTO" / "ALLOWED.git")
    assert other.stdout.split() == ["first"]


def test_a_plain_http_code_host_is_not_reached_through_a_proxy_elsewhere(
    tmp_path: Path, project: Path
) -> None:
    """``--git-upstream http://127.0.0.1:…`` (plain HTTP, allowed for the loopback) with an
    upstream proxy on another machine: the gateway would send that proxy each request as it
    is, the token in its ``Authorization`` header, unencrypted. The run stops before anything
    runs (125), saying what to give instead; the token is not shown. With the code host in
    NO_PROXY, as said, the run goes on. (The command never makes a request: no packet leaves
    the loopback either way.)"""
    marker = project / "ran"

    def run(**env: str) -> subprocess.CompletedProcess[str]:
        return airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"),
            "--repo", "octo/allowed", "--git-upstream", "http://127.0.0.1:9",
            "--upstream-proxy", "http://10.0.0.1:3128",
            "--", "touch", str(marker),
            env={"GH_TOKEN": TOKEN, **env}, cwd=project, timeout=120,
        )  # fmt: skip

    done = run()
    assert done.returncode == 125, (done.returncode, done.stderr)
    assert not marker.exists()
    assert "--git-upstream 'http://127.0.0.1:9' is plain http://" in done.stderr, done.stderr
    assert "'http://10.0.0.1:3128'" in done.stderr
    assert "add 127.0.0.1 to NO_PROXY" in done.stderr
    assert TOKEN not in done.stdout + done.stderr
    direct = run(NO_PROXY="localhost,127.0.0.1")
    assert direct.returncode == 0, direct.stderr
    assert marker.exists()


def test_a_code_host_that_cannot_be_reached_is_a_failure_in_the_log_and_report(
    tmp_path: Path, project: Path
) -> None:
    """The code host is down: git inside is told (502), and the request's record says it
    failed, why, and the report counts it among the failures (the record said status 502,
    allowed, no error, and the report showed nothing failed)."""
    import json
    import socket

    with socket.socket() as closed:  # a port nothing listens on
        closed.bind((HOST, 0))
        port = closed.getsockname()[1]
    upstream = f"http://{HOST}:{port}"
    log = tmp_path / "audit.jsonl"
    report = tmp_path / "report.json"
    done = airlock(
        "run", "--audit-log", str(log), "--report-json", str(report),
        "--repo", "octo/allowed", "--git-upstream", upstream,
        "--", "sh", "-c", f"git clone -q {upstream}/octo/allowed x; echo cloned=$?",
        env={"GH_TOKEN": TOKEN}, cwd=project, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "cloned=128" in done.stdout, done.stdout + done.stderr
    records = [json.loads(line) for line in log.read_text().splitlines()]
    [request] = [r for r in records if r.get("type") == "request"]
    assert (request["status"], request["decision"]) == (502, "allow"), request
    assert str(request["error"]).startswith("git gateway: "), request
    assert TOKEN not in log.read_text() and TOKEN not in done.stderr
    hosts = json.loads(report.read_text())["hosts"]
    failed = [error for host in hosts for error in host["errors"]]
    assert failed and failed[0]["reason"] == request["error"], hosts
    assert "failed 1×: git gateway: " in done.stderr, done.stderr
