"""A request carrying a header some front ends route by instead of ``Host``
(``X-Forwarded-Host``, ``Forwarded: host=``, …) is judged as a request to the host it names
too: an allowed model request naming the metrics host of earlier versions is refused as
metrics when metrics are off, inside inspected TLS and in plain HTTP alike."""

from __future__ import annotations

import ssl
import subprocess
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA, ca_environment
from airlock.egress.flows import (
    AGENT_SIGNATURES,
    Signature,
    host_overrides,
    off_flow,
    off_rows,
    off_rows_at,
)
from airlock.egress.inspect import Inspector
from airlock.policy import Decisions, FlowId, decide
from tests.egress.harness import NOW, inspected_setup, tls_origin
from tests.egress.origin import config, running
from tests.policy.helpers import context
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


@pytest.mark.parametrize(
    ("headers", "named"),
    [
        # Express's req.hostname cuts at the first ":", a port after it or not
        ([(b"X-Forwarded-Host", f"{METRICS_HOST}:x".encode())], [METRICS_HOST]),
        ([(b"X-Forwarded-Host", f"{METRICS_HOST}:".encode())], [METRICS_HOST]),
        ([(b"X-Host", f"{METRICS_HOST}:443:1".encode())], [METRICS_HOST]),
        # a quoted Forwarded value's escapes, read as Symfony reads them
        ([(b"Forwarded", rb'host="statsig\.anthropic\.co\m"')], [METRICS_HOST]),
        ([(b"X-Original-Host", b"::ffff:1.2.3.4")], ["1.2.3.4"]),
    ],
)
def test_the_hosts_named_past_a_colon_or_an_escape(
    headers: list[tuple[bytes, bytes]], named: list[str]
) -> None:
    """A name with anything after its first ``:`` is that name (an address's colons are
    its own); a quoted ``Forwarded`` value is read with its escapes."""
    assert host_overrides(headers) == named


HOSTS = (
    METRICS_HOST,
    "localhost",
    "o1.ingest.sentry.io",
    "claude-code-dist-86c565f3.storage.googleapis.com",
    "storage.googleapis.com",
    "bedrock-runtime.us-east-1.amazonaws.com",
    "example.com",
)


@pytest.mark.parametrize(
    "environ",
    [{}, {"DISABLE_TELEMETRY": "1"}, {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}],
)
def test_the_rows_off_at_many_hosts_are_those_off_at_each(environ: dict[str, str]) -> None:
    """:func:`off_rows_at` is :func:`off_rows` of each host, each row once, in the table's
    order."""
    decisions = decide(context(environ))
    for count in range(len(HOSTS) + 1):
        hosts = HOSTS[:count]
        each = {row for host in hosts for row in off_rows(host, decisions)}
        assert set(off_rows_at(hosts, decisions)) == each
        table = [row for row in AGENT_SIGNATURES["claude-code"] if row in each]
        assert list(off_rows_at(hosts, decisions)) == table


def test_thousands_of_hosts_named_read_the_path_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A head naming thousands of hosts (all its 64 KiB hold) costs one more reading of the
    path, not one per host: the path's readings are many, and the proxy waits on them. The
    metrics host among them is still found."""
    import airlock.egress.inspect as inspect_module

    _, _, inspection = inspected_setup(tmp_path, {"DISABLE_TELEMETRY": "1"})
    inspector = Inspector(
        RunCA(now=NOW), ssl.create_default_context(), inspection.decisions, lambda _: None
    )
    reads: list[str] = []
    real = off_flow

    def counted(rows: tuple[Signature, ...], target: str, decisions: Decisions) -> object:
        reads.append(target)
        return real(rows, target, decisions)

    monkeypatch.setattr(inspect_module, "off_flow", counted)
    names = ",".join(f"h{n}.sentry.io" for n in range(4000))
    headers = [(b"X-Forwarded-Host", f"{names}, {METRICS_HOST}".encode())]
    verdict = inspector.judge("POST", "api.anthropic.com", "/v1/messages", headers)
    assert verdict.flow == FlowId.METRICS and not verdict.allowed
    assert len(reads) == 2
    reads.clear()
    headers = [(b"X-Forwarded-Host", names.encode())]
    assert inspector.judge("POST", "api.anthropic.com", "/v1/messages", headers).allowed
    assert len(reads) <= 2
