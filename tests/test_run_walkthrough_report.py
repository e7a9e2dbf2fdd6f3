"""What a walkthrough of the README found ``airlock run``'s report leaving out, end to end (real
bubblewrap, the real proxy, real clients inside, origins on loopback): the report written before
the end names the log ``airlock audit`` must read; the secrets found in uploads are in the
report; an inspected origin whose certificate does not verify points to ``--upstream-ca``; an
address refusal says what reaches the host."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.egress.harness import NOW, tls_origin
from tests.integration.run_servers import HOST, web_site
from tests.integration.started import killed_once_started

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
"""A GitHub token's shape (the redaction engine's ``github_token``), made up."""


def _killed_run_report(tmp_path: Path, project: Path, *options: str) -> dict[str, object]:
    """``airlock run OPTIONS --report-json FILE`` killed (``kill -9``) once its command runs:
    the report it left."""
    report = project / "report.json"
    killed_once_started(project, *options, "--report-json", str(report))
    data = json.loads(report.read_text())
    assert isinstance(data, dict) and data["complete"] is False
    return data


def test_a_killed_runs_report_names_its_own_audit_log_and_the_command_that_reads_it(
    tmp_path: Path, project: Path
) -> None:
    """``--audit-log /x/c.jsonl``: the report says ``airlock audit --audit-log /x/c.jsonl
    --run ID`` (plain ``airlock audit --run ID`` reads the default log, where the run is not),
    and holds the log's path; the command it gives, run as given, reads that log."""
    log = tmp_path / "my logs" / "c.jsonl"  # a space: the path is quoted for a shell
    log.parent.mkdir()
    data = _killed_run_report(tmp_path, project, "--audit-log", str(log))
    run = str(data["run"])
    assert data["audit_log"] == str(log)
    command = f"airlock audit --audit-log {shlex.quote(str(log))} --run {run}"
    assert command in str(data["error"])
    words = shlex.split(command)
    assert words[:2] == ["airlock", "audit"]
    done = airlock(*words[1:], "--json")
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout), list)


def test_a_killed_runs_report_with_the_default_log_names_it_too(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """No ``--audit-log``: the plain ``airlock audit --run ID`` reads the right log; the report
    names it all the same (``<config dir>/airlock/audit.jsonl``)."""
    data = _killed_run_report(tmp_path, project)
    assert data["audit_log"] == str(config_dir / "airlock" / "audit.jsonl")
    assert f"in the audit log: airlock audit --run {data['run']}" in str(data["error"])


@pytest.mark.parametrize(
    ("mode", "outcome", "words"),
    [
        ("report", "sent", "sent, --secrets report"),
        ("redact", "replaced", "replaced before they left, --secrets redact"),
        ("block", "refused", "refused: their requests did not leave"),
    ],
)
def test_the_report_says_which_secrets_were_found_in_uploads(
    tmp_path: Path, project: Path, mode: str, outcome: str, words: str
) -> None:
    """A token in a body sent to an inspected host: the end-of-run report (stderr and
    ``--report-json``) says its kind and count, and what became of it under ``--secrets``
    (sent, replaced, refused); never its value."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    (project / "body.json").write_text(json.dumps({"content": f"my key {KEY}"}))
    report = tmp_path / "report.json"
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--report-json", str(report),
            "--allow", f"{HOST}:{port}", "--inspect", HOST,
            "--upstream-ca", str(project / "origin.pem"), "--secrets", mode,
            "--", "curl", "-sS", f"https://{HOST}:{port}/upload", "--data-binary", "@body.json",
            cwd=project, timeout=180,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"secrets found in uploads ({words}): github_token ×1" in done.stderr
    assert KEY not in done.stderr and KEY not in report.read_text()
    assert json.loads(report.read_text())["secrets"] == {outcome: {"github_token": 1}}


def test_an_origin_whose_certificate_does_not_verify_points_to_upstream_ca(
    tmp_path: Path, project: Path
) -> None:
    """An inspected origin with its own CA, no ``--upstream-ca``: the client's 502 and the
    report's failure say to pass that CA with ``--upstream-ca FILE``."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"),
            "--allow", f"localhost:{port}", "--env", "NO_PROXY=", "--inspect", "localhost",
            "--", "curl", "-sS", "-w", "%{http_code}", f"https://localhost:{port}/x",
            cwd=project, timeout=180,
        )  # fmt: skip
        assert site.seen == []
    hint = "if the origin uses its own CA, pass it with --upstream-ca FILE"
    assert done.stdout.endswith("502"), done.stdout
    assert "CERTIFICATE_VERIFY_FAILED" in done.stdout and hint in done.stdout, done.stdout
    [failure] = [line for line in done.stderr.splitlines() if "failed 1×" in line]
    assert "CERTIFICATE_VERIFY_FAILED" in failure and hint in failure
    [flow] = [line for line in done.stderr.splitlines() if "unclassified:" in line]
    assert "0 sent, 0 refused, 1 failed, 0 B out" in flow, done.stderr


def test_an_address_refused_under_allow_all_is_offered_allow(tmp_path: Path, project: Path) -> None:
    """``--allow-all`` lets any name through, never an address that is not public: the report
    says, under the refusal, that ``--allow 127.0.0.2`` reaches it (the 403 said so, the
    report did not)."""
    with web_site() as site:
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--allow-all",
            "--", "curl", "-sS", f"http://{HOST}:{port}/x",
            cwd=project, timeout=180,
        )  # fmt: skip
        assert site.seen == []
    assert f"--allow {HOST}" in done.stdout  # the 403's hint
    lines = done.stderr.splitlines()
    [at] = [i for i, line in enumerate(lines) if "refused 1×" in line and "loopback" in line]
    assert f"run again with --allow {HOST}" in lines[at + 1], done.stderr
    assert f"refused 1×: {HOST} is a loopback address" in lines[at]
    assert f"{HOST} is {HOST}" not in done.stdout + done.stderr
