"""The real reference agent (Claude Code, the exact version ``scripts/setup.sh --dev`` installs
under ``.cache/reference-agent``) inside ``airlock run --inspect``, against stand-ins of its
vendor's API on loopback: its requests are named by flow, and the metrics flow follows both
the agent's opt-out and the policy. ``ANTHROPIC_BASE_URL`` names one stand-in on 127.0.0.2;
the agent sends metrics, feature flags and bootstrap calls to ``api.anthropic.com`` itself,
which an upstream proxy on loopback (``--upstream-proxy``) routes to a second stand-in, so
allowed requests get real answers and no name is looked up outside."""

from __future__ import annotations

import contextlib
import json
import socket
import socketserver
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.ca import RunCA
from tests.cli import airlock
from tests.egress.harness import NOW, OriginServer, tls_origin
from tests.serving import in_thread

HOST = "127.0.0.2"  # reached through the proxy, as the vendor's host would be
VERSION = "2.1.328"
AGENT = Path(__file__).resolve().parents[2] / ".cache" / "reference-agent"
CLAUDE = AGENT / "node_modules" / "@anthropic-ai" / "claude-code"
API_KEY = "sk-ant-api03-" + "standin" * 12  # the stand-in takes any key

_EVENTS = [
    {"type": "message_start", "message": {
        "id": "msg_standin", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 5, "output_tokens": 1}}},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0,
     "delta": {"type": "text_delta", "text": "hi from the stand-in"}},
    {"type": "content_block_stop", "index": 0},
    {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
     "usage": {"output_tokens": 3}},
    {"type": "message_stop"},
]  # fmt: skip
MODEL_STREAM = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in _EVENTS).encode()


class _Router(socketserver.ThreadingTCPServer):
    """An upstream proxy for ``--upstream-proxy`` that only knows loopback: ``CONNECT`` to a
    host in ``routes`` goes to its stand-in, to a loopback address goes there, and any other
    is refused, so nothing the agent asks for leaves the machine (no name is looked up)."""

    daemon_threads = True
    routes: dict[str, tuple[str, int]]
    asked: list[str]


class _RouterHandler(socketserver.BaseRequestHandler):
    server: _Router

    def handle(self) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            data = self.request.recv(4096)
            if not data:
                return
            head += data
        authority = head.split(b" ", 2)[1].decode()
        self.server.asked.append(authority)
        host, _, port = authority.rpartition(":")
        target = self.server.routes.get(host, (host, int(port)))
        if not target[0].startswith("127."):
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
            return
        with socket.create_connection(target) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            upstream.sendall(head.split(b"\r\n\r\n", 1)[1])
            inward = threading.Thread(target=_copy, args=(upstream, self.request), daemon=True)
            inward.start()
            _copy(self.request, upstream)
            inward.join(30)


def _copy(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(1 << 16):
            sink.sendall(data)
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


def _router(routes: dict[str, tuple[str, int]]) -> contextlib.AbstractContextManager[_Router]:
    server = _Router(("127.0.0.1", 0), _RouterHandler)
    server.routes, server.asked = routes, []
    return in_thread(server)


@contextlib.contextmanager
def stand_ins(tmp_path: Path) -> Iterator[tuple[OriginServer, OriginServer, _Router]]:
    """The vendor's stand-ins (its API on ``HOST`` for ``ANTHROPIC_BASE_URL``, and its own
    host, reached through the router) answering as the agent expects, with their CA at
    ``tmp_path/origin.pem`` (for ``--upstream-ca``); and the router."""
    origin_ca = RunCA(now=NOW, name="stand-in vendor CA")
    (tmp_path / "origin.pem").write_bytes(origin_ca.certificate_pem)
    with (
        tls_origin(origin_ca, HOST, bind=HOST) as site,
        tls_origin(origin_ca, "api.anthropic.com") as vendor,
        _router({"api.anthropic.com": vendor.server_address}) as router,
    ):
        site.answers["/v1/messages"] = ("text/event-stream", MODEL_STREAM)
        site.answers["/api/"] = ("application/json", b"{}")
        vendor.answers["/api/"] = ("application/json", b"{}")
        yield site, vendor, router


def _agent_version() -> str:
    return str(json.loads((CLAUDE / "package.json").read_text())["version"])


def agent_run(
    tmp_path: Path, project: Path, passed: list[str], environ: dict[str, str]
) -> tuple[subprocess.CompletedProcess[str], list[tuple[str, str]], list[str], list[str]]:
    """The real agent's ``-p "say hi"`` inside ``airlock run``, its vendor API and the site
    that stands in for ``ANTHROPIC_BASE_URL`` inspected, the audit log at
    ``tmp_path/audit.jsonl``; airlock's options ``passed`` and the variables ``environ`` added.
    The run, what the site saw (method, path), what the vendor saw (paths) and the hosts
    the upstream proxy was asked for."""
    assert _agent_version() == VERSION, "run scripts/setup.sh --dev to install the agent"
    (project / ".claude" / "commands").mkdir(parents=True)  # no settings files: placeholders
    log = tmp_path / "audit.jsonl"
    with stand_ins(tmp_path) as (site, vendor, router):
        port = site.server_address[1]
        done = airlock(
            "run", "--audit-log", str(log),
            "--upstream-proxy", f"http://127.0.0.1:{router.server_address[1]}",
            "--allow", f"{HOST}:{port}", "--allow", "api.anthropic.com",
            "--inspect", HOST, "--inspect", "api.anthropic.com",
            "--upstream-ca", str(tmp_path / "origin.pem"),
            "--ro", str(AGENT), "--env", "ANTHROPIC_API_KEY", *passed,
            "--", str(AGENT / "node_modules" / ".bin" / "claude"), "-p", "say hi",
            env={
                "ANTHROPIC_BASE_URL": f"https://{HOST}:{port}",  # the stand-in vendor API
                "ANTHROPIC_API_KEY": API_KEY,
                "DISABLE_AUTOUPDATER": "1",
                **environ,
            },
            cwd=project, timeout=90,
        )  # fmt: skip
        seen = [(method, path) for method, path, _ in site.seen]
        vendor_seen = [path for _, path, _ in vendor.seen]
    return done, seen, vendor_seen, list(router.asked)


@pytest.mark.parametrize(
    ("environ", "passed", "metrics"),
    [
        ({}, [], "allow"),  # the agent sends metrics and the policy lets them out
        ({"DISABLE_TELEMETRY": "1"}, [], None),  # the agent is told: it sends none
        # the policy turns metrics off (airlock's --settings) but the agent is not told: refused
        ({}, ["--settings", '{"env": {"DISABLE_TELEMETRY": "1"}}'], "deny"),
    ],
    ids=["metrics-on", "agent-opted-out", "policy-off-agent-not-told"],
)
def test_reference_agent_requests_are_named_by_flow(
    tmp_path: Path, project: Path, environ: dict[str, str], passed: list[str], metrics: str | None
) -> None:
    """The real agent's requests are named by flow; metrics go out, are absent, or are refused."""
    done, seen, vendor_seen, asked = agent_run(tmp_path, project, passed, environ)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "hi from the stand-in" in done.stdout
    # the placeholders at the missing settings files (the home's, the project's) read as no
    # settings: no warning
    assert "did not load" not in done.stderr and "EISDIR" not in done.stderr, done.stderr
    # the state it saved inside (in its config dir) is where it reads it outside
    home = tmp_path / "home"
    assert "userID" in json.loads((home / ".claude.json").read_text())
    assert not (home / ".claude" / ".claude.json").exists()
    done = airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert done.returncode == 0, done.stderr
    inspected = [r for r in json.loads(done.stdout) if r.get("inspected")]
    flows = {(r["method"], str(r["path"]).split("?")[0]): r["flow"] for r in inspected}
    assert flows[("POST", "/v1/messages")] == "model_requests", flows
    assert all(r["flow"] != "other" for r in inspected), flows
    assert any(r["host"] == "api.anthropic.com" for r in inspected), flows  # named by --inspect
    batches = [r for r in inspected if str(r["path"]).startswith("/api/event_logging/")]
    decisions = {(r["flow"], r["decision"], r["status"]) for r in batches}
    if metrics is None:
        assert batches == [] and all(r["flow"] != "metrics" for r in inspected), flows
    elif metrics == "allow":
        # allowed and forwarded: the agent sends them to api.anthropic.com itself, not to
        # ANTHROPIC_BASE_URL; the upstream proxy routes that name to the vendor's stand-in
        assert batches and decisions == {("metrics", "allow", 200)}, decisions
        assert all(r["host"] == "api.anthropic.com" for r in batches)
        assert any(path.startswith("/api/event_logging/") for path in vendor_seen)
    else:
        assert batches and decisions == {("metrics", "deny", 403)}, decisions
        assert all("metrics" in str(r["reason"]) for r in batches)
    assert not any(path.startswith("/api/event_logging/") for _, path in seen)
    if metrics != "allow":
        assert not any(path.startswith("/api/event_logging/") for path in vendor_seen)
    assert {a.rpartition(":")[0] for a in asked} <= {HOST, "api.anthropic.com"}
