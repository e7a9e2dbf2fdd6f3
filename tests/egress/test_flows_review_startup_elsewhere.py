"""The start-up configuration's paths are refused, while the engine has it off, at the hosts
the run takes for the vendor's API (``api.anthropic.com``, a base URL's host), not in every
path of every inspected host: with ``CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC`` (or on
Bedrock, Vertex, Foundry) a download from an inspected code or package host whose path held
``/mcp-registry/`` (a repository or an npm package of that name) or
``/api/claude_cli/bootstrap`` was refused as the agent's start-up configuration, though it
had gone out before (the real proxy on loopback, its inspected host ``localhost``, not the
vendor API's)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.inspect import InspectionConfig
from tests.egress.harness import inspected_setup
from tests.egress.origin import _Site, config, running

ELSEWHERE = [
    "/modelcontextprotocol/mcp-registry/archive/main.zip",
    "/mcp-registry/-/mcp-registry-1.0.0.tgz",
    "/org/repo/raw/main/api/claude_cli/bootstrap.md",
]


def _get(url: str, port: int, target: str) -> bytes:
    with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
        sock.sendall(
            f"GET http://localhost:{port}{target} HTTP/1.1\r\nHost: localhost:{port}\r\n"
            "Connection: close\r\n\r\n".encode()
        )
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    return answer


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, id="nonessential"),
        pytest.param({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "us-east-1"}, id="bedrock"),
    ],
)
def test_startup_paths_in_another_hosts_downloads_go_out(
    tmp_path: Path, site: _Site, environ: dict[str, str]
) -> None:
    _, _, inspection = inspected_setup(tmp_path, environ)
    inspection = InspectionConfig(  # localhost inspected, not taken for the vendor's API
        hosts=inspection.hosts,
        ca=inspection.ca,
        upstream=inspection.upstream,
        decisions=inspection.decisions,
    )
    cfg = config(tmp_path, inspection=inspection)
    port = site.server_address[1]
    with running(cfg) as (url, _):
        answers = [_get(url, port, target) for target in ELSEWHERE]
        at_start = _get(url, port, "/api/claude_cli/bootstrap")
    for target, answer in zip(ELSEWHERE, answers, strict=True):
        assert answer.startswith(b"HTTP/1.1 200 "), (target, answer[:300])
    assert at_start.startswith(b"HTTP/1.1 200 "), at_start[:300]
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert [(r["flow"], r["status"]) for r in records] == [("unclassified", 200)] * 4
