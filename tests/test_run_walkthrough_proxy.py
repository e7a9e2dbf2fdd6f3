"""What a walkthrough of the README found in the proxy's answers and records (the real proxy on
127.0.0.1, real clients): an ask rule's refusal gets its way forward in the report; the upload
budget is said in MiB, as ``--max-upload-mb`` reads it; the proxy's own refusals count their
answer's bytes, as inspection's do."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import httpx

from airlock.egress import EgressConfig, Limits
from airlock.egress.audit_read import read_records
from tests.egress.origin import assert_report_is_the_log, config, exchange, origin, running

SETTINGS = "user settings /home/me/.claude/settings.json"


def test_an_ask_rules_refusal_says_in_the_report_what_lets_it_through(tmp_path: Path) -> None:
    """An allow rule and an ask rule of the settings cover a host: the proxy (which cannot
    ask) refuses it, and the report says, under that refusal, that ``--allow HOST`` lets it
    through for the run (stderr's lines, and the JSON's refusal)."""
    cfg = config(
        tmp_path,
        allow=EgressConfig.rules(["WebFetch(domain:*)"], f"permissions.allow in {SETTINGS}"),
        ask=EgressConfig.rules(["WebFetch(domain:asked.test)"], f"permissions.ask in {SETTINGS}"),
    )
    with running(cfg) as (url, proxy):
        answer = exchange(url, b"GET http://asked.test/ HTTP/1.1\r\nHost: asked.test\r\n\r\n")
        report = proxy.close({})
    assert answer.startswith(b"HTTP/1.1 403 ") and b"--allow asked.test" in answer
    lines = report.lines()
    [at] = [i for i, line in enumerate(lines) if "refused 1×: an ask rule covers it" in line]
    assert "run again with --allow asked.test" in lines[at + 1]
    [host] = [h for h in report.to_json()["hosts"] if h["host"] == "asked.test"]
    assert "--allow asked.test" in host["refused"][0]["hint"]


def test_the_upload_budget_is_said_in_mib(tmp_path: Path) -> None:
    """``--max-upload-mb 1`` is 1 MiB (1,048,576 bytes), as its help says: the refusal says
    MiB, not MB."""
    cfg = config(tmp_path, limits=Limits(max_upload_mb=1))
    with origin() as site, running(cfg) as (url, proxy):
        port = site.server_address[1]
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), 10) as sock:
            body = b"u" * 1_200_000
            with contextlib.suppress(OSError):
                sock.sendall(
                    b"POST http://127.0.0.1:%d/up HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                    % (port, len(body))
                    + body
                )
                while sock.recv(65536):
                    pass
        with httpx.Client(proxy=url) as client:
            refused = client.get(f"http://127.0.0.1:{port}/next")
        proxy.close({})
    assert refused.status_code == 403
    assert "the upload budget of 1 MiB is used up (--max-upload-mb)" in refused.text
    assert " MB " not in refused.text


def test_a_refusal_for_want_of_a_rule_counts_its_answer(tmp_path: Path) -> None:
    """A plain request and a ``CONNECT`` no rule names, and a malformed request: each answer
    the client got is its record's ``bytes_in`` and its host's in the report (the README: the
    sums include a refusal's answer), as an inspected request's refusal counts its own."""
    cfg = config(tmp_path)
    with running(cfg) as (url, proxy):
        plain = exchange(url, b"GET http://nobody.test/ HTTP/1.1\r\nHost: nobody.test\r\n\r\n")
        tunnel = exchange(url, b"CONNECT nobody.test:443 HTTP/1.1\r\n\r\n")
        malformed = exchange(url, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
        report = proxy.close({})
    assert plain.startswith(b"HTTP/1.1 403 ") and tunnel.startswith(b"HTTP/1.1 403 ")
    assert malformed.startswith(b"HTTP/1.1 400 ")
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] in ("request", "tunnel")]
    assert [(r["host"], r["bytes_in"]) for r in records] == [
        ("nobody.test", len(plain)),
        ("nobody.test", len(tunnel)),
        ("", len(malformed)),
    ]
    [host] = [h for h in report.hosts if h.host == "nobody.test"]
    assert host.bytes_in == len(plain) + len(tunnel)
    assert_report_is_the_log(report, cfg.audit_log)
