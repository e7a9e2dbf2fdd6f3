"""Plain HTTP (no CONNECT) to an inspected host: named by flow, enforced and checked for secrets
like a request inside inspected TLS."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA, upstream_context
from airlock.egress.inspect import InspectionConfig
from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import NOW
from tests.egress.origin import assert_report_is_the_log, config, origin, running
from tests.policy.helpers import context

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"


def _inspection(tmp_path: Path, secrets: SecretsMode) -> InspectionConfig:
    run_ca = RunCA(now=NOW)
    pem = tmp_path / "ca.pem"
    pem.write_bytes(run_ca.certificate_pem)
    return InspectionConfig(
        hosts=frozenset({"localhost"}),
        ca=run_ca,
        upstream=upstream_context(pem),
        decisions=decide(context({"DISABLE_TELEMETRY": "1"})),
        secrets=secrets,
        api_hosts=frozenset({"localhost"}),
    )


def _post(proxy: str, url: str, body: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--proxy",
            proxy,
            "-o",
            "-",
            "--data-binary",
            body,
            url,
        ],
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize(
    ("secrets", "model_status", "origin_got", "found"),
    [
        pytest.param(SecretsMode.REPORT, 200, KEY, {"github_token": 1}, id="report_passes_counted"),
        pytest.param(
            SecretsMode.REDACT, 200, "[REDACTED:github_token]", {"github_token": 1}, id="redact"
        ),
        pytest.param(SecretsMode.BLOCK, 403, None, {"github_token": 1}, id="block_sends_nothing"),
    ],
)
def test_plain_http_to_an_inspected_host_is_named_and_enforced_by_flow(
    tmp_path: Path, secrets: SecretsMode, model_status: int, origin_got: str | None, found: dict
) -> None:
    """A model request in the clear is recorded with its flow and its secrets handled as asked;
    a metrics batch, whose flow DISABLE_TELEMETRY turned off, is refused with 403 naming it
    and never reaches the origin; the report counts both by flow, and its host line is the
    log's (the refusal's answer among the bytes in, as inside TLS)."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, secrets))
    with origin() as site, running(cfg) as (url, proxy):
        base = f"http://localhost:{site.server_address[1]}"
        model = _post(url, f"{base}/v1/messages?beta=true", json.dumps({"content": f"key {KEY}"}))
        metrics = _post(url, f"{base}/api/event_logging/v2/batch", "{}")
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert b"DISABLE_TELEMETRY" in metrics.stdout and b"metrics" in metrics.stdout
    assert [path for path, _ in site.seen] == (
        ["/v1/messages?beta=true"] if origin_got is not None else []
    )
    if origin_got is not None:
        assert origin_got.encode() in model.stdout  # the origin echoes what it received
    else:
        assert b"--secrets block" in model.stdout and KEY.encode() not in model.stdout
    assert cfg.audit_log is not None
    assert KEY not in cfg.audit_log.read_text()
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["path"], r["flow"], r["status"], r["decision"]) for r in records] == [
        ("/v1/messages?beta=…", "model_requests", model_status, "allow" if origin_got else "deny"),
        ("/api/event_logging/v2/batch", "metrics", 403, "deny"),
    ]
    assert records[0]["secrets"] == found and records[1]["secrets"] == {}
    assert "DISABLE_TELEMETRY" in records[1]["reason"]
    flows = {f.flow: f for f in report.flows}
    assert flows["metrics"].refused == 1 and flows["metrics"].difference
    assert (flows["model_requests"].allowed, flows["model_requests"].refused) == (
        (1, 0) if origin_got else (0, 1)
    )
    assert records[1]["bytes_in"] > 0
    assert_report_is_the_log(report, cfg.audit_log)
    localhost = next(h for h in report.hosts if h.host == "localhost")
    assert localhost.bytes_in == sum(f.bytes_in for f in report.flows)


def test_a_get_with_a_body_to_an_inspected_host_is_refused(tmp_path: Path) -> None:
    """In the clear as inside TLS: a metrics batch hidden in a GET's body, which a server
    that does not read one takes for a request of its own, never judged."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REPORT))
    with origin() as site, running(cfg) as (url, _):
        base = f"http://localhost:{site.server_address[1]}"
        hidden = "POST /api/event_logging/v2/batch HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"
        done = subprocess.run(
            ["curl", "-sS", "--max-time", "20", "--proxy", url, "-X", "GET", "--data-binary",
             hidden, "-w", "\n%{http_code}", f"{base}/v1/models"],
            env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
    assert done.stdout.endswith("400"), done.stdout
    assert "a body on a GET request: refused" in done.stdout
    assert site.seen == []
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert (record["status"], record["decision"]) == (400, "deny")


def test_a_host_not_inspected_stays_plain_forwarding(tmp_path: Path) -> None:
    """A plain request to a host not named with --inspect carries no flow: the host rules
    alone decide, and the body passes as sent."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.BLOCK))
    with origin() as site, running(cfg) as (url, _):
        answer = _post(url, f"http://127.0.0.1:{site.server_address[1]}/api/event_logging", KEY)
    assert answer.stdout == KEY.encode()
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert [("flow" in r, r["status"]) for r in records] == [(False, 200)]


@pytest.mark.parametrize("secrets", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_key_in_a_plain_request_header_is_handled_as_inside_tls(
    tmp_path: Path, secrets: SecretsMode
) -> None:
    """In plain HTTP too a key in a request header is counted, replaced where it stands or
    refused, with nothing sent; ``Cookie`` (how a client signs in) is left as it is."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, secrets))
    with origin() as site, running(cfg) as (url, _):
        target = f"http://localhost:{site.server_address[1]}/headers"
        done = subprocess.run(
            [
                *("curl", "-sS", "--max-time", "20", "--proxy", url, "-o", "-"),
                *("-H", f"Referer: https://example.org/?token={KEY}", "-H", f"Cookie: s={KEY}"),
                target,
            ],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=30,
            check=False,
        )
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert record["secrets"] == {"github_token": 1}
    if secrets is SecretsMode.BLOCK:
        assert b"headers hold secrets" in done.stdout and site.seen == []
        return
    shown = "[REDACTED:github_token]" if secrets is SecretsMode.REDACT else KEY
    assert f"Referer: https://example.org/?token={shown}\n".encode() in done.stdout
    assert f"Cookie: s={KEY}\n".encode() in done.stdout


def test_a_body_not_read_decoded_to_its_end_is_said_so(tmp_path: Path) -> None:
    """Under ``--secrets report`` a body labelled ``Content-Encoding: gzip`` that is not gzip
    leaves as it came: its key is counted from its bytes, its record says why it was not read
    decoded (``unchecked``), and so does the end-of-run report."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REPORT))
    with origin() as site, running(cfg) as (url, proxy):
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        done = subprocess.run(
            [
                *("curl", "-sS", "--max-time", "20", "--proxy", url, "-o", "-"),
                *("-H", "Content-Encoding: gzip", "--data-binary", f"key {KEY}", target),
            ],
            env={"PATH": "/usr/bin:/bin"},
            capture_output=True,
            timeout=30,
            check=False,
        )
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert done.stdout == f"key {KEY}".encode()  # the origin echoes what it received
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert record["secrets"] == {"github_token": 1}
    assert record["unchecked"] == "the body is not valid gzip"
    assert report.unchecked == (("the body is not valid gzip", 1),)
    assert any("not valid gzip" in line for line in report.lines())
    assert report.to_json()["unchecked"] == [{"reason": "the body is not valid gzip", "count": 1}]


@pytest.mark.parametrize(
    "secrets", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"]
)
def test_a_body_too_large_to_check_is_refused_413_unread(
    tmp_path: Path, secrets: SecretsMode
) -> None:
    """A body over the gathered limit, under --secrets redact or block, gets 413 (Content Too
    Large) before any of it is read, as inside TLS, and nothing reaches the origin."""
    import socket

    from airlock.egress.scan import MAX_GATHERED

    cfg = config(tmp_path, inspection=_inspection(tmp_path, secrets))
    with origin() as site, running(cfg) as (url, _):
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
            sock.sendall(
                f"POST {target} HTTP/1.1\r\nHost: localhost\r\n"
                f"Content-Length: {MAX_GATHERED + 1}\r\n\r\n".encode()
            )
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
    assert b"cannot be checked" in answer
    assert site.seen == []
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["decision"], record["flow"]) == (413, "deny", "model_requests")


def test_a_large_plain_upload_is_forwarded_whole_and_every_key_counted(tmp_path: Path) -> None:
    """A 5 MB body in the clear, keys in several segments, streams through unchanged under
    --secrets report, and each key is counted once (segments scanned beside the forwarding)."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REPORT))
    body = (b"x" * 700_000 + b" " + KEY.encode() + b" ") * 7
    upload = tmp_path / "upload.bin"
    upload.write_bytes(body)
    with origin() as site, running(cfg) as (url, _):
        answer = _post(
            url, f"http://localhost:{site.server_address[1]}/v1/messages", "@" + str(upload)
        )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout == body  # the origin echoes what it received
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert (record["status"], record["secrets"]) == (200, {"github_token": 7})


def _raw(proxy: str, request: bytes) -> bytes:
    """Send ``request`` to the proxy on its own connection; everything it answers."""
    import socket

    with socket.create_connection(("127.0.0.1", int(proxy.rsplit(":", 1)[1])), 10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def _post_inspected(tmp_path: Path, host: str, path: str) -> tuple[bytes, Any, dict[str, Any]]:
    """POST ``{}`` to ``http://HOST:PORT/PATH`` (PORT the origin's) through a proxy that
    inspects ``localhost``: the proxy's answer, the origin (what it saw), and the request's
    audit record."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REPORT))
    with origin() as site, running(cfg) as (url, _):
        target = f"http://{host}:{site.server_address[1]}{path}"
        answer = _raw(
            url,
            f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode(),
        )
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    return answer, site, record


@pytest.mark.parametrize("spelling", ["localhost.", "LOCALHOST", "LocalHost."])
def test_an_inspected_host_is_inspected_however_it_is_spelt(tmp_path: Path, spelling: str) -> None:
    """A trailing dot or upper case names the same host (the rules judge its canonical form):
    the request is inspected like one to ``localhost``, so a metrics batch, whose flow is off,
    is refused and never reaches the origin."""
    answer, site, record = _post_inspected(tmp_path, spelling, "/api/event_logging/v2/batch")
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert b"DISABLE_TELEMETRY" in answer
    assert site.seen == []
    assert (record["inspected"], record["flow"], record["decision"]) == (True, "metrics", "deny")


def test_inspected_hosts_are_kept_in_the_form_the_rules_judge(tmp_path: Path) -> None:
    """The hosts named for inspection are kept canonical, as the rules give a request's host:
    an internationalised name as its A-label, upper case and a trailing dot dropped."""
    from dataclasses import replace

    from airlock.egress.inspect import Inspector

    named = replace(_inspection(tmp_path, SecretsMode.REPORT), hosts=frozenset({"Straße.DE."}))
    inspector = Inspector.from_config(named, lambda record: None)
    assert inspector.inspects("xn--strae-oqa.de")


BYPASSES = [
    pytest.param("/v1/messages/../../api/event_logging/v2/batch", id="dot_segments"),
    pytest.param("/v1/messages/%2e%2E/%2E./api/event_logging/v2/batch", id="encoded_dots"),
    pytest.param("/api/%65vent_logging/v2/batch", id="encoded_letter"),
    pytest.param("//api/event_logging/v2/batch", id="double_slash"),
    pytest.param("/api/./event_logging//v2/batch?x=/v1/messages", id="dot_and_slashes"),
]


@pytest.mark.parametrize("path", BYPASSES)
def test_a_path_spelt_otherwise_is_named_by_the_flow_it_reaches(tmp_path: Path, path: str) -> None:
    """A metrics batch whose path is written with dot segments, percent-encoded letters or
    doubled slashes is still a metrics batch: refused (its flow is off) and never sent."""
    answer, site, record = _post_inspected(tmp_path, "localhost", path)
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert site.seen == []
    assert (record["flow"], record["decision"]) == ("metrics", "deny")


def test_a_path_is_sent_as_the_client_wrote_it(tmp_path: Path) -> None:
    """Only the classification reads the normalised path: the origin gets the path as sent."""
    answer, site, record = _post_inspected(tmp_path, "localhost", "/v1//%6Dessages/./?beta=true")
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert site.seen == [("/v1//%6Dessages/./?beta=true", f"localhost:{site.server_address[1]}")]
    assert (record["flow"], record["decision"]) == ("model_requests", "allow")


@pytest.mark.parametrize("path", ["/v1/messages", "/api/event_logging/v2/batch"])
def test_a_body_malformed_while_it_is_gathered_makes_one_record(tmp_path: Path, path: str) -> None:
    """Under ``--secrets redact`` a body is gathered before it leaves: a bad chunk size there
    is one record of the request (refused as malformed, nothing out), never two."""
    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REDACT))
    with origin() as site, running(cfg) as (url, _):
        port = site.server_address[1]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 5) as sock:
            sock.sendall(
                f"POST http://localhost:{port}{path} HTTP/1.1\r\nHost: localhost:{port}\r\n"
                "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".encode()
            )
            time.sleep(0.3)
            sock.sendall(b"ZZZ\r\nxx\r\n0\r\n\r\n")
            sock.settimeout(3)
            assert sock.recv(200).startswith(b"HTTP/1.1 400")
        time.sleep(0.3)
    records = [r for r in read_records(cfg.audit_log) if r.get("type") == "request"]
    assert len(records) == 1, records
    assert records[0]["decision"] == "deny" and records[0]["bytes_out"] == 0
    assert site.seen == []


def _answer(sock: socket.socket) -> bytes:
    """All that comes back on ``sock`` until the proxy closes it (bounded by its timeout)."""
    answer = b""
    while chunk := sock.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize(
    "secrets", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"]
)
def test_gathered_plain_bodies_share_the_budget_of_tls_ones(
    tmp_path: Path, secrets: SecretsMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain-HTTP bodies gathered to be checked are held within the run's one budget, as
    inside TLS: while one request holds most of it, another's body that would pass it is
    refused ``503`` saying why (unread when its length is known, as soon as it would pass
    when chunked) and recorded; once the first has gone, the budget is free again."""
    from airlock.egress import inspect
    from airlock.egress.scan import Budget

    budgets: list[Budget] = []

    def small() -> Budget:
        budgets.append(Budget(100_000))
        return budgets[-1]

    monkeypatch.setattr(inspect, "Budget", small)
    cfg = config(tmp_path, inspection=_inspection(tmp_path, secrets))
    with origin() as site, running(cfg) as (url, _):
        address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        head = f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n".encode()
        with socket.create_connection(address, 10) as first:
            first.sendall(head % 80_000 + b"x" * 50_000)  # 80 kB held while the rest comes
            time.sleep(0.3)
            with socket.create_connection(address, 5) as sized:
                sized.sendall(head % 30_000)
                refused = _answer(sized)
            with socket.create_connection(address, 5) as chunked:
                chunked.sendall(
                    f"POST {target} HTTP/1.1\r\nHost: localhost\r\n"
                    "Transfer-Encoding: chunked\r\n\r\n".encode()
                )
                for _ in range(5):  # 5 kB at a time: the budget is passed at the fifth
                    chunked.sendall(b"1388\r\n" + b"y" * 5000 + b"\r\n")
                    time.sleep(0.05)
                cut = _answer(chunked)
            first.sendall(b"x" * 30_000)
            answer = b""
            for _ in range(50):
                if answer.endswith(b"x" * 1000):  # the origin echoes the body
                    break
                answer += first.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
        with socket.create_connection(address, 10) as again:  # the budget is free again
            again.sendall(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") % 30_000)
            again.sendall(b"z" * 30_000)
            assert _answer(again).startswith(b"HTTP/1.1 200 ")
    for refusal in (refused, cut):
        assert refusal.startswith(b"HTTP/1.1 503 "), refusal[:80]
        assert b"request bodies to check" in refusal
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert sorted((r["status"], r["decision"]) for r in records) == [
        (200, "allow"),
        (200, "allow"),
        (503, "deny"),
        (503, "deny"),
    ]
    assert all("request bodies to check" in r["reason"] for r in records if r["status"] == 503)
    assert len(site.seen) == 2
    assert [budget.held for budget in budgets] == [0]


@pytest.mark.parametrize(
    "secrets", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"]
)
def test_a_compressed_plain_body_is_held_decoded_within_the_budget(
    tmp_path: Path, secrets: SecretsMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 4 kB gzip body that decodes to 4 MB, under a 1 MB budget of gathered bodies: its
    decoded bytes count too, so it is refused ``413`` (alone it passes the budget: waiting
    would not help) saying why, unsent, and recorded; one that decodes within the budget
    goes; the budget is given back whole."""
    import gzip

    from airlock.egress import inspect
    from airlock.egress.scan import Budget

    budgets: list[Budget] = []

    def small_budget() -> Budget:
        budgets.append(Budget(1_000_000))
        return budgets[-1]

    monkeypatch.setattr(inspect, "Budget", small_budget)
    bomb = gzip.compress(b"0" * 4_000_000)
    small = gzip.compress(b'{"a":"' + b"1" * 200_000 + b'"}')
    cfg = config(tmp_path, inspection=_inspection(tmp_path, secrets))
    with origin() as site, running(cfg) as (url, _):
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        head = (
            f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: gzip\r\n"
            "Connection: close\r\nContent-Length: %d\r\n\r\n"
        ).encode()
        refused = _raw(url, head % len(bomb) + bomb)
        sent = _raw(url, head % len(small) + small)
    assert refused.startswith(b"HTTP/1.1 413 "), refused[:80]
    assert b"on their own" in refused
    assert sent.startswith(b"HTTP/1.1 200 "), sent[:80]
    assert len(site.seen) == 1
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r.get("inspected")]
    assert [(r["status"], r["decision"]) for r in records] == [(413, "deny"), (200, "allow")]
    assert [budget.held for budget in budgets] == [0]


def test_a_redacted_plain_body_stays_charged_until_it_has_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under ``redact`` a body with a secret leaves as a copy of its own: while it goes, the
    run's budget of gathered bodies holds it beside the body as it came; once the request is
    done, nothing is held."""
    from airlock.egress import inspect
    from airlock.egress.scan import Budget

    budgets: list[Budget] = []

    def budget() -> Budget:
        budgets.append(Budget())
        return budgets[-1]

    monkeypatch.setattr(inspect, "Budget", budget)
    body = json.dumps({"k": KEY, "x": "y" * 50_000}).encode()
    redacted = body.replace(KEY.encode(), b"[REDACTED:github_token]")
    held_while_sent: list[int] = []

    class Watched(list[tuple[str, str]]):
        def append(self, item: tuple[str, str]) -> None:  # the origin has the request
            held_while_sent.append(budgets[0].held)
            super().append(item)

    cfg = config(tmp_path, inspection=_inspection(tmp_path, SecretsMode.REDACT))
    with origin() as site, running(cfg) as (url, _):
        site.seen = Watched()
        target = f"http://localhost:{site.server_address[1]}/v1/messages"
        answer = _raw(
            url,
            f"POST {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body,
        )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(redacted), answer[:80]
    assert held_while_sent == [len(body) + len(redacted)]
    assert [budget.held for budget in budgets] == [0]
