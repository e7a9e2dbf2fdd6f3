"""``--inspect`` names an IPv6 address too (``::1``, ``[::1]``): its TLS is read with a
certificate for that address, its requests named by flow and enforced, as a name's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from airlock.egress.options import inspected_hosts
from airlock.errors import UsageError
from tests.cli import airlock
from tests.egress.harness import NOW, tls_origin


@pytest.mark.parametrize(
    ("given", "expected"),
    [("::1", "::1"), ("[::1]", "::1"), ("0:0::1", "::1"), ("::ffff:127.0.0.2", "127.0.0.2")],
)
def test_an_ipv6_address_is_a_host_to_inspect(given: str, expected: str) -> None:
    assert inspected_hosts([given], None) == {expected}


@pytest.mark.parametrize("given", ["[::1]:443", "localhost:443", "https://[::1]", "::1/x"])
def test_a_port_or_path_is_still_refused(given: str) -> None:
    with pytest.raises(UsageError, match="no scheme, path or port"):
        inspected_hosts([given], None)


def test_an_inspected_ipv6_origin_is_read_and_enforced(tmp_path: Path, project: Path) -> None:
    origin_ca = RunCA(now=NOW, name="test origin CA")
    (project / "origin.pem").write_bytes(origin_ca.certificate_pem)
    log = tmp_path / "audit.jsonl"
    with tls_origin(origin_ca, "::1", bind="::1") as site:
        port = site.server_address[1]
        base = f"https://[::1]:{port}"
        script = (  # the sandbox's NO_PROXY names ::1: curl is told to use the proxy anyway
            f"curl -sS --noproxy '' -o /dev/null -w '%{{http_code}}\\n' {base}/v1/models;"
            f"curl -sS --noproxy '' -o /dev/null -w '%{{http_code}}\\n' -d '{{}}'"
            f" {base}/api/event_logging/v2/batch"
        )
        done = airlock(
            "run", "--audit-log", str(log), "--allow", f"[::1]:{port}",
            "--inspect", "[::1]", "--upstream-ca", str(project / "origin.pem"),
            "--", "sh", "-c", script,
            env={"DISABLE_TELEMETRY": "1", "ANTHROPIC_BASE_URL": base},
            cwd=project, timeout=180,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "403"], done.stdout + done.stderr
    assert [path for _, path, _ in site.seen] == ["/v1/models"]
    listed = airlock("audit", "--json", "--audit-log", str(log))
    records = [r for r in json.loads(listed.stdout) if r.get("path")]
    assert [(r["host"], r["path"], r["decision"]) for r in records] == [
        ("::1", "/v1/models", "allow"),
        ("::1", "/api/event_logging/v2/batch", "deny"),
    ]
    assert records[1]["flow"] == "metrics"
