"""What a walkthrough of ``airlock run``'s inspection found in its refusals and its log (issue
16), each with the real command: real bubblewrap, the real proxy, curl inside, a TLS origin on
127.0.0.2 (not the sandbox's ``NO_PROXY``) trusted through ``--upstream-ca``.

- The log could not tell ``--secrets report`` from ``redact``: both request records read
  ``decision allow, secrets {"github_token": 1}``. The ``start`` record says the mode and the
  hosts inspected.
- ``--secrets block``'s refusal named ``https://127.0.0.2/v1/messages`` for a request to port
  18443, and wrote ``github_token x1`` where the report writes ``×1``.
- ``--secrets redact``'s refusal of a token in the path said nothing of what to do.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.egress.harness import NOW, OriginServer, tls_origin

HOST = "127.0.0.2"  # not the sandbox's NO_PROXY: reached through the proxy, as a real host
KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"  # made up, of a GitHub token's shape


@pytest.fixture
def origin(project: Path) -> Iterator[OriginServer]:
    """A TLS origin on 127.0.0.2, its CA written to ``project/origin.pem``."""
    origin_ca = RunCA(now=NOW, name="test origin CA")
    project.mkdir(parents=True, exist_ok=True)
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    with tls_origin(origin_ca, HOST, bind=HOST) as site:
        yield site


def _run(tmp_path: Path, project: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--inspect", HOST,
        "--allow", f"{HOST}:{port}", "--upstream-ca", str(project / "origin.pem"), *args,
        cwd=project, timeout=180,
    )  # fmt: skip


def _start_records(log: Path) -> list[dict[str, object]]:
    done = airlock("audit", "--json", "--audit-log", str(log))
    assert done.returncode == 0, done.stderr
    return [record for record in json.loads(done.stdout) if record.get("type") == "start"]


def test_the_start_record_tells_report_from_redact(
    tmp_path: Path, project: Path, origin: OriginServer
) -> None:
    port = origin.server_address[1]
    for mode in ("report", "redact"):
        done = _run(tmp_path, project, port, "--secrets", mode, "--", "true")
        assert done.returncode == 0, done.stderr
    plain = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", "true",
        cwd=project, timeout=180,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    starts = _start_records(tmp_path / "audit.jsonl")
    assert [(s["inspect"], s["secrets"]) for s in starts] == [
        ([HOST], "report"),
        ([HOST], "redact"),
        ([], None),
    ]
    assert all(s["repos"] == [] and s["git_upstream"] is None for s in starts)


def test_a_blocked_body_is_refused_naming_its_port_and_counts_as_the_report_does(
    tmp_path: Path, project: Path, origin: OriginServer
) -> None:
    port = origin.server_address[1]
    (project / "body.json").write_text(json.dumps({"content": f"my key {KEY}"}))
    done = _run(
        tmp_path, project, port, "--secrets", "block", "--",
        "curl", "-sS", "-i", "--suppress-connect-headers", f"https://{HOST}:{port}/v1/messages", "--data-binary", "@body.json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert origin.seen == []
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    assert head.startswith("HTTP/1.1 403")
    assert "content-type: text/plain; charset=utf-8" in head.lower()
    assert body.startswith(f"airlock refused POST https://{HOST}:{port}/v1/messages\n")
    assert "(github_token ×1); nothing was sent" in body
    assert KEY not in done.stdout + done.stderr


def test_a_token_in_the_path_under_redact_says_what_to_do(
    tmp_path: Path, project: Path, origin: OriginServer
) -> None:
    port = origin.server_address[1]
    done = _run(
        tmp_path, project, port, "--secrets", "redact", "--",
        "curl", "-sS", f"https://{HOST}:{port}/v1/keys/{KEY}",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert origin.seen == []
    assert (
        "--secrets redact: the request's path holds secrets (github_token ×1), which cannot be "
        "replaced there: nothing was sent; send it in the body or a header, or use --secrets "
        "report"
    ) in done.stdout
    assert KEY not in done.stdout + done.stderr
