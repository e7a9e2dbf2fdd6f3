"""Inspection inside the egress proxy itself: its rules, its audit log and its report."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import socket
import subprocess
from pathlib import Path

import pytest

from airlock.egress import Limits, verify
from airlock.egress.audit_read import read_records
from airlock.egress.ca import ca_environment
from airlock.egress.inspect import InspectionConfig
from airlock.egress.scan import SecretsMode
from tests.egress.harness import inspected_setup, inspected_tls, tls_origin
from tests.egress.origin import assert_report_is_the_log, config, running

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"


def _curl(proxy: str, bundle: Path, url: str, *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--proxy", proxy, "-o", "-", *args, url],
        env={"PATH": "/usr/bin:/bin", **ca_environment(bundle)},
        capture_output=True,
        timeout=30,
        check=False,
    )


def test_proxy_inspects_enforces_and_reports(tmp_path: Path) -> None:
    """Through the real proxy: records per request with flows, a refused metrics batch, a
    reported key never logged, an un-inspected host tunnelled unchanged, a verified chain and
    a report that groups by flow and flags the agent's attempt."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site, tls_origin(origin_ca, "127.0.0.1") as other:
        port, other_port = site.server_address[1], other.server_address[1]
        with running(cfg) as (url, proxy):
            model = _curl(
                url,
                bundle,
                f"https://localhost:{port}/v1/messages?beta=true",
                "--data-binary",
                json.dumps({"content": f"key {KEY}"}),
            )
            metrics = _curl(
                url, bundle, f"https://localhost:{port}/api/event_logging/v2/batch", "-d", "{}"
            )
            tunnel = _curl(url, bundle, f"https://127.0.0.1:{other_port}/bytes/500000")
            report = proxy.close({"command": ["test"], "exit_code": 0})
    assert model.returncode == 0 and b'"received"' in model.stdout
    assert b"DISABLE_TELEMETRY" in metrics.stdout and b"metrics" in metrics.stdout
    assert hashlib.sha256(tunnel.stdout).digest() == hashlib.sha256(other.blob[:500000]).digest()
    assert cfg.audit_log is not None
    text = cfg.audit_log.read_text()
    assert KEY not in text
    records = [r for r in read_records(cfg.audit_log) if r["type"] in ("request", "tunnel")]
    inspected = [r for r in records if r.get("inspected")]
    assert [(r["path"], r["flow"], r["decision"], r["status"]) for r in inspected] == [
        ("/v1/messages?beta=…", "model_requests", "allow", 200),
        ("/api/event_logging/v2/batch", "metrics", "deny", 403),
    ]
    assert inspected[0]["secrets"] == {"github_token": 1}
    assert "metrics" in inspected[1]["reason"]
    assert [r["host"] for r in records if not r.get("inspected")] == ["127.0.0.1"]
    assert cfg.heads_file is not None
    assert verify(cfg.audit_log, cfg.heads_file).intact
    flows = {f.flow: f for f in report.flows}
    assert flows["model_requests"].allowed == 1
    assert flows["metrics"].refused == 1 and flows["metrics"].difference
    lines = "\n".join(report.lines())
    assert "metrics: 0 sent, 1 refused" in lines and "differs: the engine predicted off" in lines
    localhost = next(h for h in report.hosts if h.host == "localhost")
    assert localhost.requests == 1  # the metrics request was refused: counted there
    assert_report_is_the_log(report, cfg.audit_log)


@pytest.mark.parametrize(
    ("header", "metrics"),
    [
        ("X-Original-URL", "/api/event_logging/v2/batch"),
        ("x-rewrite-url", "/api/event_logging/v2/batch"),
        ("X-Override-URL", "/api/event_logging/v2/batch"),
        ("X_Original_URL", "/api/event_logging/v2/batch"),  # WSGI reads it as the same
        ("X-Original-URL", "https://localhost/api/event_logging/v2/batch"),
    ],
)
def test_a_path_a_server_may_route_by_instead_is_judged_too(
    tmp_path: Path, header: str, metrics: str
) -> None:
    """An allowed model request carrying a header some servers route by (IIS's URL Rewrite,
    frameworks that trust it) that names a metrics path is refused as metrics when metrics
    are off; the same header naming an allowed path lets it through."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        port = site.server_address[1]
        messages = f"https://localhost:{port}/v1/messages"
        with running(cfg) as (url, proxy):
            routed = _curl(url, bundle, messages, "-H", f"{header}: {metrics}", "-d", "{}")
            plain = _curl(url, bundle, messages, "-H", f"{header}: /v1/messages", "-d", "{}")
            proxy.close({"command": ["test"], "exit_code": 0})
    assert b"metrics" in routed.stdout and b"DISABLE_TELEMETRY" in routed.stdout
    assert b'"received"' in plain.stdout
    assert cfg.audit_log is not None
    inspected = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["flow"], r["decision"], r["status"]) for r in inspected] == [
        ("metrics", "deny", 403),
        ("model_requests", "allow", 200),
    ]


def test_a_refused_flow_needs_no_name_lookup(tmp_path: Path) -> None:
    """With no route out (every lookup fails), a request of a flow that is off is still
    answered 403 by the engine's rule, without a lookup; an allowed one gets a 502 that names
    the failure; both are logged with their flows, and the report counts the refusal as
    refused and the failure as an error, as the log's decisions say."""

    from airlock.egress import start_proxy
    from airlock.errors import AirlockError

    _, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    inspection = InspectionConfig(
        hosts=frozenset({"api.anthropic.com"}),
        ca=inspection.ca,
        upstream=inspection.upstream,
        decisions=inspection.decisions,
    )
    lookups: list[str] = []

    async def no_route(host: str, port: int, private_ok: bool) -> str:
        lookups.append(host)
        raise AirlockError(f"cannot resolve {host}: no route out")

    cfg = config(
        tmp_path,
        inspection=inspection,
        allow=config(tmp_path).allow + config(tmp_path).rules(["api.anthropic.com"], "--allow"),
    )
    sock = socket.create_server(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    proxy = start_proxy(cfg, [sock], check=no_route)
    try:
        metrics = _curl(
            url, bundle, "https://api.anthropic.com/api/event_logging/v2/batch", "-d", "{}"
        )
        assert lookups == []
        model = _curl(url, bundle, "https://api.anthropic.com/v1/messages", "-d", "{}")
    finally:
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert b"DISABLE_TELEMETRY" in metrics.stdout
    assert b"no route out" in model.stdout
    assert lookups == ["api.anthropic.com"]
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["flow"], r["status"], r["decision"]) for r in records] == [
        ("metrics", 403, "deny"),
        ("model_requests", 502, "allow"),
    ]
    [host] = report.hosts
    assert [count for _, count in host.refused] == [1]
    [(error, count)] = host.errors
    assert count == 1 and "no route out" in error
    assert_report_is_the_log(report, cfg.audit_log)


def test_a_tunnel_whose_tls_asks_for_an_inspected_host_is_refused(tmp_path: Path) -> None:
    """``CONNECT 127.0.0.1`` carrying TLS for ``localhost`` (inspected): the requests would
    pass as an opaque tunnel; refused, with a record saying why. The same address with TLS
    for itself stays a tunnel."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site, tls_origin(origin_ca, "127.0.0.1") as other:
        port, other_port = site.server_address[1], other.server_address[1]
        with running(cfg) as (url, _):
            aliased = _curl(
                url,
                bundle,
                f"https://localhost:{port}/api/event_logging/v2/batch",
                "--connect-to",
                f"localhost:{port}:127.0.0.1:{port}",
                "-d",
                "{}",
            )
            direct = _curl(url, bundle, f"https://127.0.0.1:{other_port}/bytes/1000")
    assert aliased.returncode != 0
    assert site.seen == []  # type: ignore[attr-defined]
    assert direct.returncode == 0 and len(direct.stdout) == 1000
    assert cfg.audit_log is not None
    tunnels = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]
    assert [(r["port"], r["decision"]) for r in tunnels] == [(port, "deny"), (other_port, "allow")]
    assert "asks for localhost, an inspected host" in tunnels[0]["reason"]


def test_a_server_that_speaks_first_is_not_held_up(tmp_path: Path) -> None:
    """With inspection on, a tunnel's first client bytes are read for a TLS name; a server
    that greets first (SMTP, SSH) still reaches a client that has sent nothing."""
    import threading

    _, _, inspection = inspected_setup(tmp_path, {})
    server = socket.create_server(("127.0.0.1", 0))
    server_port = server.getsockname()[1]

    def greet() -> None:
        connection, _ = server.accept()
        with connection:
            connection.sendall(b"220 ready\r\n")
            connection.recv(100)

    thread = threading.Thread(target=greet, daemon=True)
    thread.start()
    with running(config(tmp_path, inspection=inspection)) as (url, _):
        proxy_port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", proxy_port), timeout=5) as client:
            client.sendall(f"CONNECT 127.0.0.1:{server_port} HTTP/1.1\r\n\r\n".encode())
            answer = b""
            while b"220 ready" not in answer:
                piece = client.recv(1000)
                assert piece, answer
                answer += piece
            assert answer.startswith(b"HTTP/1.1 200")
            client.sendall(b"QUIT\r\n")
    server.close()
    thread.join(5)


@pytest.mark.parametrize(
    "secrets", [SecretsMode.REPORT, SecretsMode.BLOCK], ids=["streamed", "gathered"]
)
def test_the_upload_budget_cuts_an_inspected_request_before_it_is_passed(
    tmp_path: Path, secrets: SecretsMode
) -> None:
    """A 1.5 MB upload inside inspected TLS with a 1 MB budget: each piece is charged before
    it leaves, as in tunnels and plain HTTP, so the request is cut at the budget (the origin
    never gets it whole), the client is told why, the record says so with the bytes that
    left, and the run says the budget ran out."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {})
    inspection = dataclasses.replace(inspection, secrets=secrets)
    cfg = config(tmp_path, inspection=inspection, limits=Limits(max_upload_mb=1, idle_seconds=30))
    body = b"u" * 1_500_000
    with tls_origin(origin_ca, "localhost") as site, running(cfg) as (url, proxy):
        answer = b""
        with inspected_tls(url, bundle, site.server_address[1]) as tls:
            with contextlib.suppress(OSError):
                tls.sendall(
                    b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
                    % len(body)
                    + body
                )
            with contextlib.suppress(OSError):
                while piece := tls.recv(65536):
                    answer += piece
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert all(len(got) < 1 << 20 for _, _, got in site.seen)  # never whole: cut short
    assert answer == b"" or answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert "upload budget of 1 MiB is used up" in record["error"]
    assert (record["status"], record["decision"]) == (403, "deny")
    assert 0 < record["bytes_out"] <= 1 << 20
    assert report.upload_budget_exhausted
