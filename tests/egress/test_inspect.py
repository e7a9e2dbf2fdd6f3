"""Inspection end to end on loopback: real clients, a real TLS origin, records per request."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.scan import SecretsMode
from airlock.policy import decide
from tests.egress.harness import Rig, tls_origin, tunnel_ssl
from tests.policy.helpers import context

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
REQUIRED = {
    "time",
    "method",
    "host",
    "port",
    "path",
    "status",
    "flow",
    "decision",
    "reason",
    "bytes_out",
    "bytes_in",
    "secrets",
}


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[object]:
    opened: list[tuple[Rig, object]] = []

    def make(
        environ: dict[str, str] | None = None, secrets: SecretsMode = SecretsMode.REPORT
    ) -> Rig:
        rig = Rig(tmp_path, decide(context(environ or {})), secrets, {"localhost"})
        origin_cm = tls_origin(rig.origin_ca, "localhost")
        rig.origin = origin_cm.__enter__()  # type: ignore[attr-defined]
        rig.origin_port = rig.origin.server_address[1]  # type: ignore[attr-defined]
        rig.front.__enter__()
        opened.append((rig, origin_cm))
        return rig

    yield make
    for rig, origin_cm in opened:
        rig.front.__exit__(None, None, None)
        origin_cm.__exit__(None, None, None)  # type: ignore[attr-defined]


def _curl(
    rig: Rig, path: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    url = f"https://localhost:{rig.origin_port}{path}"  # type: ignore[attr-defined]
    return subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "20",
            "--proxy",
            f"http://127.0.0.1:{rig.front.port}",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            *args,
            url,
        ],
        env=env if env is not None else rig.proxy_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_curl_request_is_recorded_with_its_flow(make_rig) -> None:  # type: ignore[no-untyped-def]
    """A model request by curl reaches the origin and gives one record with every field."""
    rig = make_rig()
    done = _curl(rig, "/v1/messages?beta=true", "-d", '{"model":"m"}')
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("200")
    assert rig.origin.seen == [("POST", "/v1/messages?beta=true", b'{"model":"m"}')]
    [record] = rig.wait_records(1)
    assert set(record) >= REQUIRED
    assert record["flow"] == "model_requests"
    assert record["decision"] == "allow"
    assert record["path"] == "/v1/messages?beta=…"
    assert (record["method"], record["host"], record["status"]) == ("POST", "localhost", 200)
    assert record["bytes_out"] > 13 and record["bytes_in"] > 0
    assert record["secrets"] == {}


def test_python_keeps_the_connection_alive(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Python requests on one kept-alive tunnel each get a record with their own flow."""
    rig = make_rig()
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    paths = ["/api/claude_cli/bootstrap", "/api/web/domain_info?domain=example.org", "/x"]
    with tls:
        for path in paths:
            tls.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
            answer = b""
            while not answer.endswith(b"}"):
                answer += tls.recv(65536)
            assert answer.startswith(b"HTTP/1.1 200")
    flows = [(r["path"], r["flow"]) for r in rig.wait_records(3)]
    assert flows == [
        ("/api/claude_cli/bootstrap", "model_requests"),
        ("/api/web/domain_info?domain=…", "webfetch_preflight"),
        ("/x", "unclassified"),
    ]


def test_python_urllib_through_the_proxy_variables(make_rig) -> None:  # type: ignore[no-untyped-def]
    """urllib, told only HTTPS_PROXY and SSL_CERT_FILE, reaches the inspected host."""
    rig = make_rig()
    script = (
        "import urllib.request,sys;"
        f"r=urllib.request.urlopen('https://localhost:{rig.origin_port}/api/eval/abc', data=b'{{}}');"
        "sys.stdout.write(str(r.status))"
    )
    done = subprocess.run(
        ["python3", "-c", script],
        env=rig.proxy_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200"
    assert [r["flow"] for r in rig.wait_records(1)] == ["metrics"]


def test_node_reaches_the_inspected_host(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Node, trusting the run's CA through NODE_EXTRA_CA_CERTS, sends through the CONNECT."""
    rig = make_rig()
    script = f"""
const http = require('http'), tls = require('tls');
http.request({{host: '127.0.0.1', port: {rig.front.port}, method: 'CONNECT',
  path: 'localhost:{rig.origin_port}'}}).on('connect', (res, socket) => {{
  const s = tls.connect({{socket, servername: 'localhost'}}, () => {{
    s.write('POST /api/event_logging/v2/batch HTTP/1.1\\r\\nHost: localhost\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{{}}');
  }});
  let b = ''; s.on('data', d => b += d); s.on('end', () => {{ process.stdout.write(b.split(' ')[1]); }});
  s.on('error', e => {{ console.error(e.message); process.exit(1); }});
}}).end();
"""
    done = subprocess.run(
        ["node", "-e", script],
        env=rig.proxy_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "200"
    assert [(r["flow"], r["status"]) for r in rig.wait_records(1)] == [("metrics", 200)]


@pytest.mark.parametrize(
    ("environ", "path", "flow", "named"),
    [
        ({"DISABLE_TELEMETRY": "1"}, "/api/event_logging/v2/batch", "metrics", "DISABLE_TELEMETRY"),
        ({"DO_NOT_TRACK": "1"}, "/api/eval/sdk", "metrics", "DO_NOT_TRACK"),
        (
            {"DISABLE_FEEDBACK_COMMAND": "1"},
            "/api/claude_cli_feedback",
            "feedback_command",
            "DISABLE_FEEDBACK_COMMAND",
        ),
    ],
    ids=["telemetry", "do_not_track", "feedback"],
)
def test_request_of_a_flow_that_is_off_is_refused(make_rig, environ, path, flow, named) -> None:  # type: ignore[no-untyped-def]
    """A flow the engine turns off is answered 403 naming flow and variable, logged as denied,
    and never reaches the origin."""
    rig = make_rig(environ)
    done = _curl(rig, path, "-d", '{"events":[]}')
    assert done.stdout.endswith("403")
    assert flow in done.stdout and named in done.stdout
    assert rig.origin.seen == []
    [record] = rig.wait_records(1)
    assert (record["decision"], record["status"], record["flow"]) == ("deny", 403, flow)
    assert flow in record["reason"] and named in record["reason"]


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_planted_key_reported_redacted_or_blocked(
    make_rig, mode: SecretsMode, chunked: bool
) -> None:  # type: ignore[no-untyped-def]
    """A key in an upload is counted, replaced or refused as asked; the value is never logged."""
    rig = make_rig(secrets=mode)
    body = json.dumps({"messages": [{"content": f"my token is {KEY} ok"}]})
    extra = ["-H", "Transfer-Encoding: chunked"] if chunked else []
    done = _curl(rig, "/v1/messages", "--data-binary", body, *extra)
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    assert KEY not in json.dumps(rig.records)
    if mode is SecretsMode.REPORT:
        assert rig.origin.seen[0][2] == body.encode()
    elif mode is SecretsMode.REDACT:
        received = rig.origin.seen[0][2]
        assert KEY.encode() not in received and b"[REDACTED:github_token]" in received
        json.loads(received)
    else:
        assert done.stdout.endswith("403") and "secrets" in done.stdout
        assert rig.origin.seen == []
        assert record["decision"] == "deny"
        assert KEY not in done.stdout


def test_uninspected_host_stays_a_tunnel(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A host not named for inspection is tunnelled: the bytes arrive unchanged, no request record."""
    rig = make_rig()
    from tests.egress.harness import tls_origin as origin_for

    with origin_for(rig.origin_ca, "127.0.0.1") as other:
        url = f"https://127.0.0.1:{other.server_address[1]}/bytes/1000000"
        out = tmp_path / "out.bin"
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--proxy",
                f"http://127.0.0.1:{rig.front.port}",
                "-o",
                str(out),
                url,
            ],
            env=rig.proxy_env(),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert (
            hashlib.sha256(out.read_bytes()).digest()
            == hashlib.sha256(other.blob[:1000000]).digest()
        )
    assert rig.records == []
    assert rig.front.tunnels == [("127.0.0.1", other.server_address[1])]


def test_client_that_pins_fails_visibly(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A client that does not accept the run's CA fails its handshake; the host is named."""
    rig = make_rig()
    own = tmp_path / "only-origin.pem"
    own.write_bytes(rig.origin_ca.certificate_pem)
    env = {**rig.proxy_env(), "CURL_CA_BUNDLE": str(own), "SSL_CERT_FILE": str(own)}
    done = _curl(rig, "/v1/messages", env=env)
    assert done.returncode != 0
    [record] = rig.wait_records(1)
    assert "localhost" in rig.inspector.refused_by_client
    assert record["host"] == "localhost" and "localhost" in record["reason"]
    assert rig.origin.seen == []


@pytest.mark.parametrize(
    "head",
    [
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n folded\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ],
    ids=["cl_and_te", "bad_chunk_size", "obs_fold", "two_lengths"],
)
def test_smuggling_shapes_are_refused(make_rig, head: bytes) -> None:  # type: ignore[no-untyped-def]
    """Ambiguous framing gets a 400 and a closed connection; nothing reaches the origin."""
    rig = make_rig()
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.sendall(head)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    assert rig.origin.seen == []


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_body_too_large_to_check_is_refused_413_unread(make_rig, mode: SecretsMode) -> None:  # type: ignore[no-untyped-def]
    """A body over the gathered limit, under --secrets redact or block, gets 413 (Content Too
    Large) before any of it is read, as in plain HTTP, and nothing reaches the origin."""
    from airlock.egress.scan import MAX_GATHERED

    rig = make_rig(secrets=mode)
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
            % (MAX_GATHERED + 1)
        )
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:80]
    assert b"cannot be checked" in answer
    assert rig.origin.seen == []
    [record] = rig.wait_records(1)
    assert (record["status"], record["decision"], record["flow"]) == (413, "deny", "model_requests")


def test_large_upload_streams_and_counts(make_rig) -> None:  # type: ignore[no-untyped-def]
    """A 5 MB upload with keys in several places streams through and every key is counted."""
    rig = make_rig()
    filler = b"x" * 700_000 + b" "
    body = (filler + KEY.encode() + b" ") * 7
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.sendall(
            b"PUT /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(body)
        )
        tls.sendall(body)
        answer = b""
        while len(answer) < len(body):
            answer += tls.recv(1 << 20)
    assert answer.endswith(body)
    assert rig.wait_records(1)[0]["secrets"] == {"github_token": 7}
    assert socket  # imported for tunnel_ssl users
