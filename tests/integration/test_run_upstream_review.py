"""``airlock run`` behind a corporate proxy that wants credentials: airlock's own ``HTTPS_PROXY``
names it with a user and password, and only that proxy ever sees them (see
:mod:`tests.egress.test_upstream_review` for the recording upstream proxy)."""

from __future__ import annotations

from pathlib import Path

from tests.cli import airlock, run_script
from tests.egress.test_upstream_review import BASIC, QUOTED, _secret_forms, recording_upstream
from tests.integration.run_servers import HOST, web_site


def test_a_corporate_proxys_credentials_reach_it_and_nothing_else(tmp_path: Path) -> None:
    """``HTTPS_PROXY=http://USER:PASSWORD@HOST:PORT`` in airlock's environment: curl inside
    tunnels through airlock to that proxy, which gets them as ``Proxy-Authorization`` (it
    answers ``407`` without them); the command's environment, airlock's output, the report,
    the audit log and ``airlock audit`` hold no trace of them."""
    report = tmp_path / "report.json"
    with web_site() as site:
        port = site.server_address[1]
        with recording_upstream("forward", (HOST, port), expected=BASIC) as upstream:
            proxy = upstream.url.replace("http://", f"http://{QUOTED}@")
            environ = {"HTTPS_PROXY": proxy, "https_proxy": "", "NO_PROXY": "", "no_proxy": ""}
            done = run_script(
                tmp_path,
                f"curl -sS -p http://origin.test:{port}/page; env",
                "--allow",
                f"origin.test:{port}",
                "--report-json",
                str(report),
                env=environ,
            )
    assert done.returncode == 0, done.stderr
    assert "hello from the origin: GET /page" in done.stdout
    assert upstream.heads[0].startswith(f"CONNECT origin.test:{port} HTTP/1.1".encode())
    assert upstream.authorizations() == [BASIC]
    shown = airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert shown.returncode == 0, shown.stderr
    assert f"http://…@127.0.0.1:{upstream.server_address[1]}" in shown.stdout
    texts = {
        "inside": done.stdout,
        "stderr": done.stderr,
        "report": report.read_text(),
        "log": (tmp_path / "audit.jsonl").read_text(),
        "audit": shown.stdout,
    }
    leaks = {(where, form) for where, text in texts.items() for form in _secret_forms()}
    assert {(where, form) for where, form in leaks if form.decode() in texts[where]} == set()
