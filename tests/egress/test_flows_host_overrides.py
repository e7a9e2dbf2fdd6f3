"""A request carrying a header some front ends route by instead of ``Host``
(``X-Forwarded-Host``, ``Forwarded: host=``, …) is judged as a request to the host it names
too: an allowed model request naming the metrics host of earlier versions is refused as
metrics when metrics are off, inside inspected TLS and in plain HTTP alike."""

from __future__ import annotations

import subprocess
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import ca_environment
from airlock.egress.flows import host_overrides
from tests.egress.harness import inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.serving import Handler, in_thread

METRICS_HOST = "statsig.anthropic.com"  # every path there is metrics (earlier versions)


def _curl(proxy: str, url: str, *args: str, bundle: Path | None = None) -> bytes:
    env = {"PATH": "/usr/bin:/bin", **(ca_environment(bundle) if bundle else {})}
    done = subprocess.run(
        ["curl", "-sS", "--max-time", "20", "--proxy", proxy, "-o", "-", *args, url],
        env=env,
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.stdout


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        ([(b"X-Forwarded-Host", b"Example.COM.:8443")], ["example.com"]),
        ([(b"x_forwarded_host", b"a.example, b.example")], ["a.example", "b.example"]),
        ([(b"X-Host", b"[::1]:80"), (b"X-Original-Host", b"::1")], ["::1", "::1"]),
        (
            [(b"Forwarded", b'for=192.0.2.1;Host="a.example:443", proto=https;host=b.example')],
            ["a.example", "b.example"],
        ),
        ([(b"X-HTTP-Host-Override", b"not a host!"), (b"X-Forwarded-For", b"c.example")], []),
        ([(b"Host", b"a.example")], []),
    ],
)
def test_the_hosts_a_request_names_besides_host(
    headers: list[tuple[bytes, bytes]], named: list[str]
) -> None:
    """Each host named, in its canonical form, a list's members each, the port left out;
    no host where a value is none, and ``Host`` itself is not among them."""
    assert host_overrides(headers) == named


@pytest.mark.parametrize(
    "header",
    [
        f"X-Forwarded-Host: {METRICS_HOST}",
        f"X-Forwarded-Host: localhost, {METRICS_HOST}:443",
        f"Forwarded: for=192.0.2.1;host={METRICS_HOST}",
        f'Forwarded: host="{METRICS_HOST.upper()}."',
        f"X-Host: {METRICS_HOST}",
        f"X-Original-Host: {METRICS_HOST}",
        f"X_Forwarded_Host: {METRICS_HOST}",
    ],
)
def test_an_inspected_request_naming_another_host_is_judged_there_too(
    tmp_path: Path, header: str
) -> None:
    """Inside inspected TLS, with metrics off: a model request naming the metrics host in a
    header a front end may route by is refused as metrics (and logged so); the same request
    naming its own host goes out."""
    origin_ca, bundle, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    with tls_origin(origin_ca, "localhost") as site:
        messages = f"https://localhost:{site.server_address[1]}/v1/messages"
        with running(cfg) as (url, proxy):
            routed = _curl(url, messages, "-H", header, "-d", "{}", bundle=bundle)
            own = _curl(
                url, messages, "-H", "X-Forwarded-Host: localhost", "-d", "{}", bundle=bundle
            )
            proxy.close({"command": ["test"], "exit_code": 0})
    assert b"metrics" in routed and b"DISABLE_TELEMETRY" in routed
    assert b'"received"' in own
    assert cfg.audit_log is not None
    inspected = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["flow"], r["decision"], r["status"]) for r in inspected] == [
        ("metrics", "deny", 403),
        ("model_requests", "allow", 200),
    ]


class _Site(ThreadingHTTPServer):
    daemon_threads = True
    named: list[str]


class _Received(Handler):
    """Answers ``received``, keeping the ``X-Forwarded-Host`` of each request it got."""

    server: _Site

    def do_POST(self) -> None:
        self.read_body()
        self.server.named.append(self.headers.get("X-Forwarded-Host", ""))
        self.answer(200, [], b"received")


def test_a_plain_request_naming_another_host_is_judged_there_too(tmp_path: Path) -> None:
    """In plain HTTP to an inspected host, with metrics off: the same refusal, before any of
    the request leaves (the origin sees only the request naming its own host)."""
    _, _, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    cfg = config(tmp_path, inspection=inspection)
    site = _Site(("127.0.0.1", 0), _Received)
    site.named = []
    with in_thread(site), running(cfg) as (url, proxy):
        messages = f"http://localhost:{site.server_address[1]}/v1/messages"
        routed = _curl(url, messages, "-H", f"X-Forwarded-Host: {METRICS_HOST}", "-d", "{}")
        own = _curl(url, messages, "-H", "X-Forwarded-Host: localhost", "-d", "{}")
        proxy.close({"command": ["test"], "exit_code": 0})
    assert b"metrics" in routed and b"DISABLE_TELEMETRY" in routed, routed
    assert own == b"received"
    assert site.named == ["localhost"]
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert [(r["flow"], r["decision"], r["status"]) for r in records] == [
        ("metrics", "deny", 403),
        ("model_requests", "allow", 200),
    ]
