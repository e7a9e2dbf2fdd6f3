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
    answer = _exchange(rig, head)
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


def _answer_of(tls: socket.socket) -> bytes:
    """All a connection answers until it closes (each read bounded by the socket's timeout)."""
    answer = b""
    while chunk := tls.recv(65536):
        answer += chunk
    return answer


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_gathered_bodies_share_one_budget(make_rig, mode: SecretsMode) -> None:  # type: ignore[no-untyped-def]
    """Bodies gathered to be checked are held within one budget across connections: while
    one connection holds most of it, another's body that would pass it is refused ``503``
    saying why (unread when its length is known, as soon as it would pass when chunked) and
    recorded; once the first has gone, the budget is free again."""
    import time

    rig = make_rig(secrets=mode)
    rig.inspector.gathering.total = 100_000
    head = b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n"
    first, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    first.sendall(head % 80_000 + b"x" * 50_000)  # 80 kB held while the rest is awaited
    time.sleep(0.3)
    sized, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with sized:
        sized.sendall(head % 30_000)
        refused = _answer_of(sized)
    chunked, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with chunked:
        chunked.sendall(
            b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(5):  # 5 kB at a time: the budget is passed at the fifth
            chunked.sendall(b"1388\r\n" + b"y" * 5000 + b"\r\n")
        cut = _answer_of(chunked)
    for answer in (refused, cut):
        assert answer.startswith(b"HTTP/1.1 503 "), answer[:80]
        assert b"request bodies to check" in answer
    with first:
        first.sendall(b"x" * 30_000)
        answer = b""
        for _ in range(50):
            if answer.endswith(b"}"):  # the origin's JSON note, whole
                break
            answer += first.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
    rig.wait_records(3)
    again, _ = tunnel_ssl(rig, "localhost", rig.bundle)  # the budget is free again
    with again:
        again.sendall(head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") % 30_000)
        again.sendall(b"z" * 30_000)
        assert _answer_of(again).startswith(b"HTTP/1.1 200 ")
    records = rig.wait_records(4)
    assert sorted((r["status"], r["decision"]) for r in records) == [
        (200, "allow"),
        (200, "allow"),
        (503, "deny"),
        (503, "deny"),
    ]
    assert [len(body) for _, _, body in rig.origin.seen] == [80_000, 30_000]
    assert rig.inspector.gathering.held == 0


def test_a_redacted_body_stays_charged_until_it_has_gone(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Under ``redact`` a body with a secret leaves as a copy of its own: while it goes, the
    run's budget of gathered bodies holds it beside the body as it came, as in plain HTTP;
    once the request is done, nothing is held."""
    import time

    rig = make_rig(secrets=SecretsMode.REDACT)
    body = json.dumps({"k": KEY, "x": "y" * 50_000}).encode()
    redacted = body.replace(KEY.encode(), b"[REDACTED:github_token]")
    held_while_sent: list[int] = []

    class Watched(list[tuple[str, str, bytes]]):
        def append(self, item: tuple[str, str, bytes]) -> None:  # the origin has it whole
            held_while_sent.append(rig.inspector.gathering.held)
            super().append(item)

    rig.origin.seen = Watched()
    answer = _exchange(
        rig,
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
    )
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:80]
    assert [sent for _, _, sent in rig.origin.seen] == [redacted]
    assert held_while_sent == [len(body) + len(redacted)]
    rig.wait_records(1)
    for _ in range(100):  # given back as the request ends, just after its record
        if rig.inspector.gathering.held == 0:
            break
        time.sleep(0.01)
    assert rig.inspector.gathering.held == 0


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


def _exchange(rig: Rig, request: bytes) -> bytes:
    """Send ``request`` inside inspected TLS on its own connection; all that comes back."""
    tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with tls:
        tls.sendall(request)
        answer = b""
        while chunk := tls.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    "path",
    [
        "/v1/messages/../../api/event_logging/v2/batch",
        "/v1/messages/%2e%2E/%2E./api/event_logging/v2/batch",
        "/api/%65vent_logging/v2/batch",
        "//api/event_logging/v2/batch",
        "//x/api/event_logging/v2/batch",
        "//api.anthropic.com/api/event_logging/v2/batch",
    ],
    ids=[
        "dot_segments",
        "encoded_dots",
        "encoded_letter",
        "double_slash",
        "network_path",
        "network_path_naming_the_host",
    ],
)
def test_a_path_spelt_otherwise_is_named_by_the_flow_it_reaches(make_rig, path: str) -> None:  # type: ignore[no-untyped-def]
    """Inside TLS too, a metrics batch written with dot segments, percent-encoded letters,
    doubled slashes or as a network-path reference (``//x/api/…``, which a server routing
    with a URL parser reads as ``/api/…``) is classified as metrics: refused while its flow
    is off, never sent."""
    rig = make_rig({"DISABLE_TELEMETRY": "1"})
    answer = _exchange(
        rig,
        f"POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
        "Connection: close\r\n\r\n{}".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert rig.origin.seen == []
    [record] = rig.wait_records(1)
    assert (record["flow"], record["decision"]) == ("metrics", "deny")


METRICS = (
    b"POST /api/event_logging/v2/batch HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}"
)
MALFORMED = [
    pytest.param(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nX-A: a\nTransfer-Encoding: chunked\r\n"
        b"Content-Length: %d\r\n\r\n0\r\n\r\n" % (5 + len(METRICS)) + METRICS,
        "Missing expected CR",
        id="bare_lf_in_a_header_line",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A: a\rX-B: b\r\n\r\n",
        "Missing expected LF",
        id="bare_cr_in_a_value",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A: a\x00b\r\n\r\n",
        "Invalid header value char",
        id="nul_in_a_value",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n",
        "Invalid header value char",
        id="control_character_in_a_value",
    ),
    pytest.param(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2;x\nzz\r\n{}\r\n0\r\n\r\n",
        "chunk extension",
        id="bare_lf_in_a_chunk_extension",
    ),
    pytest.param(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nX-T: a\nContent-Length: 5\r\n\r\n",
        "Missing expected CR",
        id="bare_lf_in_a_trailer",
    ),
    pytest.param(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\nContent-Length: 5\r\n\r\n",
        "Content-Length",
        id="framing_header_in_a_trailer",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.\x00\r\nHost: localhost\r\n\r\n", "version", id="bad_version"
    ),
    pytest.param(
        b"POST /v1/messages HTTP/1.1 extra\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}",
        "after version",
        id="extra_token_in_the_request_line",
    ),
    pytest.param(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        "Duplicate Content-Length",
        id="content_length_twice",
    ),
    pytest.param(
        b"GET http://evil.example/v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "evil.example",
        id="absolute_form_naming_another_host",
    ),
    pytest.param(
        b"GET https://localhost:1/v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "localhost:1",
        id="absolute_form_naming_another_port",
    ),
    pytest.param(
        b"POST https://localhost:1;/api/event_logging/batch HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Length: 2\r\n\r\n{}",
        "malformed request target",
        id="absolute_form_llhttp_reads_but_no_url",
    ),
    pytest.param(
        b"GET https://localhost:1%2f/v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "malformed request target",
        id="absolute_form_with_an_escape_in_its_port",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nContent-Length: %d\r\n\r\n" % len(METRICS)
        + METRICS,
        "a body on a GET request",
        id="a_request_in_a_get_body",
    ),
    pytest.param(
        b"HEAD /v1/models HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\n\r\n",
        "a body on a HEAD request",
        id="a_chunked_head_request",
    ),
    pytest.param(
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example\r\n\r\n",
        "evil.example:443",
        id="connect_inside_tls",
    ),
    pytest.param(
        b"GET /api/event_logging/v2/batch#/../../../v1/models HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "fragment",
        id="fragment_in_the_target",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: fronted.example\r\n\r\n",
        "fronted.example inside",
        id="host_header_naming_another_host",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost:8443\r\n\r\n",
        "localhost:8443",
        id="host_header_naming_another_port",
    ),
    pytest.param(
        b"GET /v1/models HTTP/1.1\r\nHost: localhost:\xb2\r\n\r\n",  # "\xb2".isdigit()
        "malformed Host header",
        id="host_header_port_not_an_ascii_digit",
    ),
]


FOUND_IN_THE_BODY = {
    "bare_lf_in_a_chunk_extension",
    "bare_lf_in_a_trailer",
    "framing_header_in_a_trailer",
}


@pytest.mark.parametrize(("request_bytes", "why"), MALFORMED)
def test_malformed_requests_are_refused_400_and_recorded(
    make_rig, request: pytest.FixtureRequest, request_bytes: bytes, why: str
) -> None:  # type: ignore[no-untyped-def]
    """A request inside TLS that the plain proxy's parser would refuse (bare CR or LF,
    control characters, a bad chunk extension or trailer, a bad version or request line,
    Content-Length twice) or that names another destination than the TLS connection's gets
    a 400 saying why; no request reaches the origin, and the record says why."""
    rig = make_rig({"DISABLE_TELEMETRY": "1"})
    answer = _exchange(rig, request_bytes)
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    assert why.encode() in answer
    assert rig.origin.seen == []
    [record] = rig.wait_records(1)
    if request.node.callspec.id in FOUND_IN_THE_BODY:
        # found in the body, after the head had gone upstream: the request's own record
        # says what left, and that it was cut there (as the plain proxy's does)
        assert (record["status"], record["decision"]) == (400, "allow")
        assert why in record["error"] and "cut upstream" in record["error"]
        assert record["bytes_out"] > 0
    else:
        assert (record["status"], record["decision"]) == (400, "deny")
        assert why in record["error"] and why in record["reason"]


@pytest.mark.parametrize(
    ("request_bytes", "seen"),
    [
        pytest.param(
            b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
            b'Connection: close\r\n\r\n2;name=value\r\n{}\r\n1;q="a b"\r\n!\r\n0\r\nX-T: a\r\n\r\n',
            ("POST", "/echo", b"{}!"),
            id="chunk_extensions_and_a_trailer",
        ),
        pytest.param(
            b"GET https://LOCALHOST.:%d/v1/models HTTP/1.1\r\nHost: localhost\r\n"
            b"Connection: close\r\n\r\n",
            ("GET", "/v1/models", b""),  # sent in origin form: the path the flows judged
            id="absolute_form_naming_this_host",
        ),
        pytest.param(
            b"GET /v1/models HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n",
            ("GET", "/v1/models", b""),
            id="get_with_an_empty_body",
        ),
        pytest.param(
            b"\r\nGET /v1/models HTTP/1.0\r\nHost: localhost\r\nX-A: a\tb \xff\r\n\r\n",
            ("GET", "/v1/models", b""),
            id="http10_tab_and_obs_text",
        ),
    ],
)
def test_well_formed_requests_still_pass(make_rig, request_bytes: bytes, seen: tuple) -> None:  # type: ignore[no-untyped-def]
    """Requests the strict parser reads as valid reach the origin as they were."""
    rig = make_rig()
    port = rig.origin_port
    if b"%d" in request_bytes:
        request_bytes = request_bytes % port
    answer = _exchange(rig, request_bytes)
    assert answer.startswith((b"HTTP/1.1 200 ", b"HTTP/1.0 200 ")), answer[:80]
    method, path, body = seen
    assert rig.origin.seen == [(method, path.format(port=port), body)]
    [record] = rig.wait_records(1)
    assert (record["status"], record["decision"], record["error"]) == (200, "allow", None)


@pytest.mark.parametrize(
    "body",
    [
        b"5;note=" + KEY.encode() + b"\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhello\r\n0\r\nX-Note: " + KEY.encode() + b"\r\n\r\n",
    ],
    ids=["chunk_extension", "trailer"],
)
def test_a_chunked_body_leaves_framed_anew(make_rig, body: bytes) -> None:  # type: ignore[no-untyped-def]
    """Under ``--secrets report`` a chunked body is sent on as its data in chunks of its own,
    as plain HTTP sends it: a key in a chunk extension or a trailer, which the count does not
    read, never leaves."""
    rig = make_rig()
    answer = _exchange(
        rig,
        b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
        b"Trailer: X-Note\r\nConnection: close\r\n\r\n" + body,
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nhello")
    assert rig.origin.framed == [b"5\r\nhello\r\n0\r\n\r\n"]
    [record] = rig.wait_records(1)
    assert record["bytes_out"] > 0 and record["secrets"] == {}


def test_a_body_not_read_decoded_to_its_end_is_counted_as_sent(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Under ``--secrets report`` the bytes after a body's gzip data leave as they are: a key
    in them is counted, and the record says why the body was not read decoded to its end."""
    import gzip

    rig = make_rig()
    body = gzip.compress(b'{"a": 1}') + f'{{"t": "{KEY}"}}'.encode()
    answer = _exchange(
        rig,
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: gzip\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and rig.origin.seen[0][2] == body
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    assert record["unchecked"] == "bytes after the gzip data"
    assert rig.inspector.unchecked == {"bytes after the gzip data": 1}


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_compressed_upload_is_checked_decoded(make_rig, tmp_path: Path, mode, coding) -> None:  # type: ignore[no-untyped-def]
    """A body sent with ``Content-Encoding: gzip`` or ``deflate`` is checked decoded: its key
    is counted, and under ``redact`` leaves decoded and redacted, under ``block`` not at all."""
    import gzip
    import zlib

    rig = make_rig(secrets=mode)
    body = json.dumps({"messages": [{"content": f"my token is {KEY} ok"}]}).encode()
    packed = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    (tmp_path / "body").write_bytes(packed)
    done = _curl(
        rig,
        "/v1/messages",
        "-H",
        f"Content-Encoding: {coding}",
        "--data-binary",
        f"@{tmp_path / 'body'}",
    )
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    if mode is SecretsMode.REPORT:
        assert rig.origin.seen[0][2] == packed  # forwarded as it came, counted decoded
    elif mode is SecretsMode.REDACT:
        received = rig.origin.seen[0][2]
        assert b"[REDACTED:github_token]" in received and KEY.encode() not in received
        json.loads(received)  # decoded: its Content-Encoding went with it
    else:
        assert done.stdout.endswith("403") and rig.origin.seen == []


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_body_in_a_coding_airlock_cannot_decode_is_refused(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """``br`` (or any coding but gzip and deflate) cannot be checked: 415 under redact and
    block, nothing sent; a gzip body that is not gzip: 400."""
    rig = make_rig(secrets=mode)
    done = _curl(rig, "/v1/messages", "-H", "Content-Encoding: br", "--data-binary", "xx")
    assert done.stdout.endswith("415"), done.stdout
    assert "Content-Encoding br" in done.stdout
    bad = _curl(rig, "/v1/messages", "-H", "Content-Encoding: gzip", "--data-binary", "xx")
    assert bad.stdout.endswith("400"), bad.stdout
    assert rig.origin.seen == []


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_key_in_the_path_never_reaches_the_log(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """A token in a path segment or a query's name is counted and logged as a marker; under
    ``redact`` and ``block`` the request is refused (a path cannot be redacted and still name
    what it names)."""
    rig = make_rig(secrets=mode)
    escaped = KEY.replace("_", "%5F")
    done = _curl(rig, f"/v1/messages/{KEY}?{KEY}", "-d", "{}")
    _curl(rig, f"/v1/models?key={KEY}")  # a query's value
    _curl(rig, f"/v1/models/{escaped}")  # percent-escaped
    record, by_value, by_escape = rig.wait_records(3)
    assert KEY not in json.dumps(rig.records) and escaped not in json.dumps(rig.records)
    assert record["secrets"] == {"github_token": 2}
    assert by_value["secrets"] == by_escape["secrets"] == {"github_token": 1}
    assert "[REDACTED:github_token]" in record["path"]
    assert "[REDACTED:github_token]" in by_escape["path"]
    if mode is SecretsMode.REPORT:
        assert len(rig.origin.seen) == 3
    else:
        assert done.stdout.endswith("403"), done.stdout
        assert rig.origin.seen == []
        assert "path holds secrets" in record["reason"]


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_password_in_the_target_is_counted_refused_and_never_logged(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """A password or a database URL's password in a query's value or the path (punctuation
    in it, no run of token characters) is counted; under ``redact`` and ``block`` the request
    is refused, nothing sent; no part of it reaches the log."""
    rig = make_rig(secrets=mode)
    targets = {
        "/v1/messages?password=Xk9!pQ2@rT7z": {"generic_password": 1},
        "/v1/messages?db=postgres://admin:Xk9!pQ2@db.internal:5432/app": {"db_url_password": 1},
        "/v1/messages/password=Xk9!pQ2@rT7z": {"generic_password": 1},
    }
    answers = [
        _exchange(
            rig,
            f"POST {target} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n"
            "Connection: close\r\n\r\n{}".encode(),
        )
        for target in targets
    ]
    records = rig.wait_records(len(targets))
    assert [record["secrets"] for record in records] == list(targets.values())
    assert "pQ2" not in json.dumps(rig.records) and "rT7z" not in json.dumps(rig.records)
    if mode is SecretsMode.REPORT:
        assert len(rig.origin.seen) == len(targets)
    else:
        assert all(answer.startswith(b"HTTP/1.1 403 ") for answer in answers), answers
        assert all("path holds secrets" in record["reason"] for record in records)
        assert rig.origin.seen == []


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_key_in_a_header_is_counted_redacted_or_refused(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """A key in a request header other than the sign-in ones is counted (``report``),
    replaced where it stands in its value (``redact``) or refused with nothing sent
    (``block``); the key the agent signs in with (``X-Api-Key``) is left as it is."""
    rig = make_rig(secrets=mode)
    done = _curl(
        rig,
        "/headers",
        *("-H", f"X-Debug: note {KEY} end", "-H", f"X-Api-Key: {KEY}"),
    )
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    if mode is SecretsMode.BLOCK:
        assert done.stdout.endswith("403") and rig.origin.seen == []
        assert "headers hold secrets" in record["reason"]
        return
    debug = "note [REDACTED:github_token] end" if mode is SecretsMode.REDACT else f"note {KEY} end"
    assert f"X-Debug: {debug}\n" in done.stdout and f"X-Api-Key: {KEY}\n" in done.stdout
    assert KEY not in json.dumps(rig.records)


def test_what_a_client_sent_is_withheld_from_refusals() -> None:
    """A token quoted in a refusal (a bad chunk size, a Transfer-Encoding, a Host header) is
    left out of the message that goes to the answer, the log and the report."""
    from airlock.egress.framing import HttpError
    from airlock.egress.http1 import BadRequest

    for error in (
        HttpError(400, f"bad chunk size {KEY.encode()[:20]!r}"),
        BadRequest(400, f"CONNECT needs host:port, got {KEY!r}"),
    ):
        assert KEY[:16] not in error.message and "characters withheld" in error.message
    assert HttpError(400, "bad chunk size b'xyz'").message == "bad chunk size b'xyz'"


def test_two_host_headers_are_refused(make_rig) -> None:  # type: ignore[no-untyped-def]
    """A front end may route by the first Host and the record name the last: refused."""
    rig = make_rig()
    port = rig.origin_port  # type: ignore[attr-defined]
    tls, raw = tunnel_ssl(rig, "localhost", rig.bundle)
    with raw, tls:
        tls.sendall(
            b"GET /v1/models HTTP/1.1\r\nHost: statsig.anthropic.com\r\n"
            + f"Host: localhost:{port}\r\nConnection: close\r\n\r\n".encode()
        )
        answer = tls.recv(4096)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"more than one Host" in answer
    assert rig.origin.seen == []


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_a_body_cut_short_is_recorded_with_what_left(make_rig, reset: bool) -> None:  # type: ignore[no-untyped-def]
    """A client that stops mid-body (closing, or resetting) after part of an upload went
    upstream: the record says allow, the bytes that left and the key among them, and that
    it was cut; never a refusal with nothing out, nor the origin's fault."""
    import struct
    import time

    rig = make_rig()
    port = rig.origin_port  # type: ignore[attr-defined]
    tls, raw = tunnel_ssl(rig, "localhost", rig.bundle)
    part = (f'{{"content": "my token is {KEY} ok", "pad": "' + "x" * 20_000).encode()
    tls.sendall(
        f"POST /v1/messages HTTP/1.1\r\nHost: localhost:{port}\r\n"
        f"Content-Length: 100000\r\n\r\n".encode()
        + part
    )
    time.sleep(0.5)  # the part read and sent on before the client goes
    if reset:  # a close with SO_LINGER 0 sends a reset
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tls.close()
    raw.close()
    [record] = rig.wait_records(1)
    assert record["decision"] == "allow"
    assert record["bytes_out"] >= len(part)
    assert record["secrets"] == {"github_token": 1}
    assert "cut upstream" in record["error"] and "origin" not in record["error"]
    assert KEY not in json.dumps(rig.records)


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_client_that_resets_while_its_body_is_gathered_is_blamed(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """Under ``redact`` and ``block`` a body is gathered before anything leaves: a client
    that resets meanwhile is recorded as the one that left, nothing sent, never as the
    origin's failure."""
    import struct
    import time

    rig = make_rig(secrets=mode)
    tls, raw = tunnel_ssl(rig, "localhost", rig.bundle)
    tls.sendall(
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100000\r\n\r\n"
        + b"x" * 20_000
    )
    time.sleep(0.5)  # the part read before the client goes
    tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    tls.close()
    raw.close()
    [record] = rig.wait_records(1)
    assert "the client left" in record["error"] and "origin" not in record["error"]
    assert (record["status"], record["bytes_out"]) == (0, 0)  # no answer came: status 0
    assert rig.origin.seen == []


def test_a_form_upload_is_counted_decoded(make_rig) -> None:  # type: ignore[no-untyped-def]
    """``--secrets report`` counts a key a form encoder wrote with escapes (``%2B``, ``%2F``)."""
    secret = "k9Qz+3vTq/Lm2Wx8Yp0Rn5Hs7Dj4Fg6Bc1Va3Ne2"
    rig = make_rig()
    done = _curl(rig, "/v1/messages", "--data-urlencode", f"aws_secret_access_key={secret}")
    assert done.returncode == 0, done.stderr
    assert b"%2F" in rig.origin.seen[0][2]  # sent encoded, as it came
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"aws_secret_access_key": 1}
    assert secret not in json.dumps(rig.records)


@pytest.mark.parametrize("mode", [SecretsMode.BLOCK, SecretsMode.REDACT], ids=["block", "redact"])
def test_a_key_file_sent_as_a_form_is_blocked_or_redacted(make_rig, tmp_path: Path, mode) -> None:  # type: ignore[no-untyped-def]
    """``curl --data-urlencode content@id_rsa``: the form writes the key's spaces as ``+``
    (``BEGIN+RSA+PRIVATE+KEY``) and its new lines as ``%0A``; it is refused, or leaves
    redacted."""
    pem = "-----BEGIN RSA PRIVATE KEY-----\n" + "MIIEpAIBAAKCAQEA7x+9/" * 3
    (tmp_path / "id_rsa").write_text(pem + "\n-----END RSA PRIVATE KEY-----\n")
    rig = make_rig(secrets=mode)
    done = _curl(rig, "/v1/messages", "--data-urlencode", f"content@{tmp_path / 'id_rsa'}")
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"private_key_pem": 1}
    if mode is SecretsMode.BLOCK:
        assert done.stdout.endswith("403") and rig.origin.seen == []
    else:
        assert rig.origin.seen[0][2] == b"content=[REDACTED:private_key_pem]"


@pytest.mark.parametrize("kind", ["escaped_json", "raw_deflate", "gzip_then_deflate"])
@pytest.mark.parametrize("mode", [SecretsMode.REPORT, SecretsMode.BLOCK], ids=["report", "block"])
def test_report_counts_what_block_refuses(make_rig, tmp_path: Path, mode, kind) -> None:  # type: ignore[no-untyped-def]
    """A JSON body holding a key written in percent escapes, a ``deflate`` body of raw
    deflate data (no zlib header), and a body in two codings (``gzip, deflate``):
    ``--secrets report`` counts the key ``block`` refuses."""
    import gzip
    import zlib

    rig = make_rig(secrets=mode)
    headers = ["-H", "Content-Type: application/json"]
    if kind == "escaped_json":
        body = json.dumps({"content": "".join(f"%{ord(char):02X}" for char in KEY)}).encode()
    elif kind == "gzip_then_deflate":
        body = zlib.compress(gzip.compress(json.dumps({"content": f"my key {KEY}"}).encode()))
        headers += ["-H", "Content-Encoding: gzip, deflate"]
    else:
        packer = zlib.compressobj(wbits=-15)
        body = packer.compress(json.dumps({"content": f"my key {KEY}"}).encode())
        body += packer.flush()
        headers += ["-H", "Content-Encoding: deflate"]
    (tmp_path / "body").write_bytes(body)
    done = _curl(rig, "/v1/messages", *headers, "--data-binary", f"@{tmp_path / 'body'}")
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    if mode is SecretsMode.REPORT:
        assert rig.origin.seen[0][2] == body  # as it came
    else:
        assert done.stdout.endswith("403") and rig.origin.seen == []


@pytest.mark.parametrize(
    ("codec", "content_type"),
    [
        ("utf-16", "application/json; charset=utf-16"),
        ("utf-32", "application/json; charset=UTF-32"),
        ("utf-16", "application/json"),  # told by its byte-order mark
        ("utf-16-le", "application/json"),  # told by the NULs of its first bytes
    ],
    ids=["utf16_charset", "utf32_charset", "utf16_bom", "utf16le_bare"],
)
@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_body_in_utf16_or_utf32_is_read_as_text(
    make_rig, tmp_path: Path, mode, codec: str, content_type: str
) -> None:  # type: ignore[no-untyped-def]
    """A JSON body in UTF-16 or UTF-32 (as ``json.loads`` reads bytes) is scanned decoded:
    its key is counted; ``block`` refuses it; ``redact``, which cannot replace a key where
    it stands in such a body, refuses it too and says so; nothing is sent."""
    rig = make_rig(secrets=mode)
    body = json.dumps({"content": f"my key {KEY}"}).encode(codec)
    (tmp_path / "body").write_bytes(body)
    done = _curl(
        rig,
        "/v1/messages",
        "-H",
        f"Content-Type: {content_type}",
        "--data-binary",
        f"@{tmp_path / 'body'}",
    )
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    if mode is SecretsMode.REPORT:
        assert rig.origin.seen[0][2] == body
        return
    assert done.stdout.endswith("403") and rig.origin.seen == []
    assert record["decision"] == "deny"
    if mode is SecretsMode.REDACT:
        assert "cannot be replaced" in record["reason"] and "cannot be replaced" in done.stdout


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_utf16_file_in_a_form_is_read_as_text(make_rig, tmp_path: Path, mode) -> None:  # type: ignore[no-untyped-def]
    """A ``.env`` saved in UTF-16 and sent as a form's file: its key is counted under
    ``report``, and refused under ``block`` and ``redact`` (which cannot replace it where it
    stands); nothing is sent then."""
    rig = make_rig(secrets=mode)
    (tmp_path / ".env").write_bytes(f"GITHUB_TOKEN={KEY}\n".encode("utf-16"))
    done = _curl(rig, "/v1/files", "-F", f"file=@{tmp_path / '.env'};type=text/plain")
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    if mode is SecretsMode.REPORT:
        assert KEY.encode("utf-16-le") in rig.origin.seen[0][2]
        return
    assert done.stdout.endswith("403") and rig.origin.seen == []
    assert record["decision"] == "deny"


def test_content_encoding_on_two_lines_is_read_as_one_list(make_rig, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``Content-Encoding: gzip`` then ``Content-Encoding: identity``: the body is read as
    gzip (servers join the lines, or read the first), and its key refused under block."""
    import gzip

    rig = make_rig(secrets=SecretsMode.BLOCK)
    (tmp_path / "body").write_bytes(gzip.compress(f"my token is {KEY}".encode()))
    done = _curl(
        rig,
        "/v1/messages",
        "-H",
        "Content-Encoding: gzip",
        "-H",
        "Content-Encoding: identity",
        "--data-binary",
        f"@{tmp_path / 'body'}",
    )
    assert done.stdout.endswith("403"), done.stdout
    assert rig.origin.seen == []


def test_a_request_that_went_out_is_recorded_so_when_its_answer_fails(make_rig) -> None:  # type: ignore[no-untyped-def]
    """The origin reads the whole upload, then resets instead of answering: the record says
    the bytes that left and the key among them, allowed, with the failure; never a refusal
    with nothing out."""
    rig = make_rig()
    body = json.dumps({"content": f"my token is {KEY}"})
    _curl(rig, "/v1/messages/reset", "--data-binary", body)
    [record] = rig.wait_records(1)
    assert rig.origin.seen and rig.origin.seen[0][2] == body.encode()
    assert record["decision"] == "allow" and record["status"] == 502
    assert record["bytes_out"] > len(body)
    assert record["secrets"] == {"github_token": 1}
    assert "after the request went out" in record["error"]


@pytest.mark.parametrize("after", ["unasked", "close"])
def test_a_kept_upstream_that_got_anything_meanwhile_is_not_reused(make_rig, after: str) -> None:  # type: ignore[no-untyped-def]
    """An origin that sends an answer no request asked for a moment after its response (or
    closes the connection): the client's next request on the same inspected connection goes
    to the origin on a new connection and gets its own answer, never the unasked one."""
    import contextlib
    import threading
    import time

    rig = make_rig()
    server = socket.create_server(("127.0.0.1", 0))
    rig.origin_port = server.getsockname()[1]
    context = rig.origin_ca.server_context("localhost")
    accepted: list[int] = []

    def answer() -> None:
        for number in range(2):
            raw, _ = server.accept()
            accepted.append(number)
            with contextlib.suppress(OSError), context.wrap_socket(raw, server_side=True) as tls:
                tls.recv(65536)
                if number == 0:
                    tls.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                    time.sleep(0.2)
                    if after == "close":
                        continue
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED")
                    tls.recv(65536)  # a request sent here would be answered above
                else:
                    tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
                    time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    client, _ = tunnel_ssl(rig, "localhost", rig.bundle)
    with client:
        client.settimeout(5)
        client.sendall(b"GET /first HTTP/1.1\r\nHost: localhost\r\n\r\n")
        first = client.recv(65536)
        time.sleep(0.6)  # the unasked answer (or the end) has come meanwhile
        client.sendall(b"GET /second HTTP/1.1\r\nHost: localhost\r\n\r\n")
        second = b""
        while not second.endswith((b"second", b"INJECTED")) and (piece := client.recv(65536)):
            second += piece
    server.close()
    thread.join(5)
    assert first.startswith(b"HTTP/1.1 204 ")
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"second"), second
    assert accepted == [0, 1]
    assert [r["status"] for r in rig.wait_records(2)] == [204, 200]


@pytest.mark.parametrize("mode", [SecretsMode.REDACT, SecretsMode.BLOCK], ids=["redact", "block"])
def test_a_compressed_body_is_held_decoded_within_the_budget(make_rig, mode: SecretsMode) -> None:  # type: ignore[no-untyped-def]
    """A 4 kB gzip body that decodes to 4 MB, under a 1 MB budget of gathered bodies: its
    decoded bytes count too, so it is refused ``413`` (alone it passes the budget: waiting
    would not help) saying why, unsent, and recorded; one that decodes within the budget
    goes; the budget is given back whole."""
    import gzip

    rig = make_rig(secrets=mode)
    rig.inspector.gathering.total = 1_000_000
    head = (
        b"POST /v1/messages HTTP/1.1\r\nHost: localhost\r\nContent-Encoding: gzip\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n"
    )
    bomb = gzip.compress(b"0" * 4_000_000)
    small = gzip.compress(b'{"a":"' + b"1" * 200_000 + b'"}')
    refused = _exchange(rig, head % len(bomb) + bomb)
    sent = _exchange(rig, head % len(small) + small)
    assert refused.startswith(b"HTTP/1.1 413 "), refused[:80]
    assert b"on their own" in refused
    assert sent.startswith(b"HTTP/1.1 200 "), sent[:80]
    assert [len(body) for _, _, body in rig.origin.seen] == [len(small)]  # left as it came
    records = rig.wait_records(2)
    assert [(r["status"], r["decision"]) for r in records] == [(413, "deny"), (200, "allow")]
    assert "on their own" in records[0]["reason"]
    assert rig.inspector.gathering.held == 0
