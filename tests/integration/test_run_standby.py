"""The proxy on stand-by: loaded at the command's first connection, never for one that makes none.

Each case runs in a child process (this one has loaded the proxy already), with a real sandbox,
the real proxy and a real site on the host's 127.0.0.2; the child prints whether the proxy's
modules were loaded, and the audit log it wrote is checked here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.cli import airlock
from tests.integration.run_servers import HOST, web_site

ROOT = Path(__file__).parents[2]

CHILD = """
import json, os, sys
from pathlib import Path
from airlock.cli._run_build import serve_until_done
from airlock.egress import EgressConfig, StandbyProxy
from airlock.sandbox import Spec, check, launch
from tests.sandbox.helpers import rules_for

workspace, home, log, allow, script = sys.argv[1:]
workspace, home, log = Path(workspace), Path(home), Path(log)
environ = {"PATH": os.environ["PATH"], "HOME": str(home)}
rules = tuple(rules_for(workspace, home))
sandbox = launch(Spec(("sh", "-c", script), workspace, environ, rules), check(os.environ))
config = EgressConfig(
    allow=EgressConfig.rules([allow], "--allow"),
    allow_private=True,
    audit_log=log,
)
proxy = StandbyProxy(config, [sandbox.listener])
code = 125
try:
    code = serve_until_done(proxy, sandbox, standby=30)
finally:
    sandbox.kill()
    report = proxy.close({"exit_code": code})
    sandbox.close()
print(json.dumps({
    "code": code,
    "proxy_loaded": "airlock.egress.running" in sys.modules,
    "asyncio_loaded": "asyncio" in sys.modules,
    "hosts": [host.host for host in report.hosts],
    "final_hash": report.final_hash,
}))
"""


def _child(tmp_path: Path, allow: str, script: str) -> dict[str, Any]:
    workspace, home = tmp_path / "run-workspace", tmp_path / "run-home"
    workspace.mkdir()
    home.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(workspace),
            str(home),
            str(tmp_path / "audit.jsonl"),
            allow,
            script,
        ],
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def _types(log: Path) -> list[str]:
    return [json.loads(line)["type"] for line in log.read_text().splitlines()]


def test_a_command_that_connects_nowhere_never_loads_the_proxy(tmp_path: Path) -> None:
    """It runs, its exit status comes back, and the log holds the run's start and end (the
    chain verifies) without asyncio or the proxy ever being imported."""
    result = _child(tmp_path, "example.test", "echo hi > out.txt; exit 4")
    assert result["code"] == 4
    assert result["proxy_loaded"] is False and result["asyncio_loaded"] is False
    assert result["hosts"] == []
    assert (tmp_path / "run-workspace" / "out.txt").read_text() == "hi\n"
    log = tmp_path / "audit.jsonl"
    assert _types(log) == ["start", "run"]
    verified = airlock("audit", "verify", "--audit-log", str(log))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact, 2 records, 1 runs" in verified.stdout
    assert json.loads(log.read_text().splitlines()[-1])["exit_code"] == 4
    assert result["final_hash"]


def test_the_first_connection_loads_the_proxy_and_is_served(tmp_path: Path) -> None:
    """A connection the command opens before the proxy is loaded waits, is served once it is,
    and is in the log like any other."""
    with web_site() as site:
        port = site.server_address[1]
        result = _child(
            tmp_path,
            f"{HOST}:{port}",
            f"curl -sS --noproxy '' -x http://127.0.0.1:3128 http://{HOST}:{port}/early > got.txt",
        )
    assert result["code"] == 0
    assert result["proxy_loaded"] is True
    assert result["hosts"] == [HOST]
    assert site.seen == ["GET /early"]
    assert "GET /early" in (tmp_path / "run-workspace" / "got.txt").read_text()
    log = tmp_path / "audit.jsonl"
    types = _types(log)
    assert types[0] == "start" and types[-1] == "run" and len(types) >= 3
    verified = airlock("audit", "verify", "--audit-log", str(log))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_airlock_run_of_a_command_that_connects_nowhere_loads_no_proxy_module(
    tmp_path: Path,
) -> None:
    """The whole ``airlock run -- true``, as a user starts it: neither asyncio nor the
    proxy's modules, nor ``cryptography`` (the CA's), nor what reads a log back
    (``airlock.egress.audit_read``), are imported (tens of milliseconds of every run's start:
    a CA variable's list read from ``airlock.egress.ca`` and the git gateway's name read from
    ``airlock.egress.connection`` loaded them for every run; the reading, 15 M instructions,
    was part of the log's module)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "airlock", "run",
         "--audit-log", str(tmp_path / "audit.jsonl"), "--", "true"],
        cwd=workspace,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    assert "airlock.cli._run_build" in imported  # the listing is the run's
    loaded = imported & {
        "asyncio",
        "cryptography",
        "airlock.egress.audit_read",
        "airlock.egress.ca",
        "airlock.egress.connection",
        "airlock.egress.running",
        "httpx",
    }
    assert not loaded, loaded
