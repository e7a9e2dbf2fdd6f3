"""The proxy with real clients (httpx, urllib, curl, raw sockets) and a real origin on loopback."""

from __future__ import annotations

import contextlib
import json
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from airlock.egress import EgressConfig, RunningProxy, verify
from airlock.egress.audit_read import read_records
from tests.egress.origin import (
    _Site,
    assert_report_is_the_log,
    config,
    exchange,
    origin,
    origin_v6,
    running,
    until_failed,
)


def _port(site: _Site) -> int:
    return int(site.server_address[1])


def _connections(log: Path) -> list[dict[str, object]]:
    return [r for r in read_records(log) if r["type"] in ("request", "tunnel")]


def test_keep_alive_requests_reach_the_origin_and_are_logged(site: _Site, tmp_path: Path) -> None:
    """Three GETs on one connection arrive with the URL's Host, and make three records."""
    cfg = config(tmp_path)
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        for index in range(3):
            answer = client.get(f"http://127.0.0.1:{_port(site)}/page/{index}?token=secret")
            assert answer.status_code == 200
            assert answer.text == f"path=/page/{index}?token=secret host=127.0.0.1:{_port(site)}"
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [r["path"] for r in records] == [f"/page/{i}?token=…" for i in range(3)]
    assert all(r["decision"] == "allow" and r["status"] == 200 for r in records)
    assert all(r["bytes_in"] > 0 and r["bytes_out"] > 0 for r in records)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"x" * 100_000, id="content_length_body"),
        pytest.param([b"first;", b"second;", b"third"], id="chunked_body"),
        pytest.param(b"", id="empty_body"),
    ],
)
def test_request_bodies_are_streamed_to_the_origin(
    site: _Site, tmp_path: Path, content: bytes | list[bytes]
) -> None:
    """The origin echoes exactly what the client posted, however it was framed."""
    expected = content if isinstance(content, bytes) else b"".join(content)
    body = content if isinstance(content, bytes) else iter(content)
    with running(config(tmp_path)) as (url, _), httpx.Client(proxy=url) as client:
        answer = client.post(f"http://127.0.0.1:{_port(site)}/echo", content=body)
    assert answer.content == expected


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/chunked?n=5", b"piece 0;piece 1;piece 2;piece 3;piece 4;"),
        ("/close", b"until the end"),
        ("/size?n=1000000", b"z" * 1_000_000),
    ],
    ids=["chunked_response", "close_delimited_response", "large_response"],
)
def test_responses_of_every_framing_are_relayed(
    site: _Site, tmp_path: Path, path: str, expected: bytes
) -> None:
    """Chunked, close-delimited and large responses reach the client whole."""
    with running(config(tmp_path)) as (url, _), httpx.Client(proxy=url) as client:
        assert client.get(f"http://127.0.0.1:{_port(site)}{path}").content == expected
        assert client.get(f"http://127.0.0.1:{_port(site)}/after").status_code == 200


def test_head_request_then_another_request(site: _Site, tmp_path: Path) -> None:
    """A HEAD answer (a length, no body) ends at its head; the next request works."""
    with running(config(tmp_path)) as (url, _), httpx.Client(proxy=url) as client:
        head = client.head(f"http://127.0.0.1:{_port(site)}/x")
        assert head.status_code == 200 and head.headers["content-length"] == "1234"
        assert client.get(f"http://127.0.0.1:{_port(site)}/y").status_code == 200


def test_urllib_through_the_proxy(site: _Site, tmp_path: Path) -> None:
    """The standard library's client works through the proxy."""
    with running(config(tmp_path)) as (url, _):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": url}))
        with opener.open(f"http://127.0.0.1:{_port(site)}/u", timeout=10) as answer:
            assert answer.read().startswith(b"path=/u")


def test_curl_through_a_connect_tunnel(site: _Site, tmp_path: Path) -> None:
    """curl -p opens a CONNECT tunnel; the bytes pass untouched and one tunnel is logged."""
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        done = subprocess.run(
            ["curl", "-sS", "-p", "-x", url, f"http://127.0.0.1:{_port(site)}/t"],
            capture_output=True,
            timeout=30,
            check=True,
        )
    assert done.stdout.startswith(b"path=/t")
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert record["type"] == "tunnel" and record["method"] == "CONNECT"
    assert record["bytes_in"] > len(done.stdout) and record["bytes_out"] > 0


def test_an_ipv6_literal_rule_lets_requests_and_tunnels_reach_that_address(
    tmp_path: Path,
) -> None:
    """--allow [::1]:PORT lets a plain request and a CONNECT tunnel (curl) reach an origin on the
    IPv6 loopback; another port of that address is refused with a 403 that brackets it."""

    def curl(*args: str) -> str:
        done = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=30, check=True)
        return done.stdout.decode()

    with origin_v6() as site6:
        port = _port(site6)
        other = port + 1 if port < 65535 else 1
        cfg = config(tmp_path, allow=EgressConfig.rules([f"[::1]:{port}"], "--allow"))
        with running(cfg) as (url, _):
            plain = curl("-x", url, f"http://[::1]:{port}/v6")
            tunnelled = curl("-p", "-x", url, f"http://[::1]:{port}/t6")
            refused = curl("-x", url, f"http://[::1]:{other}/")
    assert plain.startswith("path=/v6")
    assert tunnelled.startswith("path=/t6")
    assert "refused" in refused and "--allow [::1]" in refused
    assert [path for path, _ in site6.seen] == ["/v6", "/t6"]
    hosts = {record["host"] for record in _connections(cfg.audit_log)}  # type: ignore[arg-type]
    assert hosts == {"::1"}


@pytest.mark.parametrize(
    "connection", ["", "Connection: keep-alive\r\n"], ids=["plain", "asking_keep_alive"]
)
def test_an_http10_client_gets_a_chunked_body_decoded_and_the_connection_closed(
    site: _Site, tmp_path: Path, connection: str
) -> None:
    """An HTTP/1.0 client asking for a body the origin sends chunked gets it decoded, without
    Transfer-Encoding, in an HTTP/1.0 answer that says Connection: close, and the proxy closes
    the connection after it (keep-alive asked or not); the log counts the origin's bytes."""
    cfg = config(tmp_path)
    with running(cfg) as (url, _), _client_socket(url) as sock:
        sock.sendall(
            b"GET http://127.0.0.1:%d/chunked?n=3 HTTP/1.0\r\n%s\r\n"
            % (_port(site), connection.encode())
        )
        answer = b""
        while piece := sock.recv(65536):  # ends only because the proxy closes
            answer += piece
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.lower().split(b"\r\n")
    assert lines[0] == b"http/1.0 200 ok"
    assert b"connection: close" in lines
    assert not any(line.startswith((b"transfer-encoding", b"content-length")) for line in lines)
    assert body == b"piece 0;piece 1;piece 2;"
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert record["status"] == 200 and record["bytes_in"] > len(answer) - len(head)


def test_curl_speaking_http10_reads_a_chunked_body(site: _Site, tmp_path: Path) -> None:
    """curl --http1.0 through the proxy prints the decoded body of a chunked answer."""
    with running(config(tmp_path)) as (url, _):
        done = subprocess.run(
            ["curl", "-sS", "--http1.0", "-x", url, f"http://127.0.0.1:{_port(site)}/chunked?n=2"],
            capture_output=True,
            timeout=30,
            check=True,
        )
    assert done.stdout == b"piece 0;piece 1;"


def test_an_http10_client_gets_a_sized_body_with_its_length(site: _Site, tmp_path: Path) -> None:
    """A body the origin sends with Content-Length keeps it for an HTTP/1.0 client."""
    with running(config(tmp_path)) as (url, _), _client_socket(url) as sock:
        sock.sendall(b"GET http://127.0.0.1:%d/size?n=5 HTTP/1.0\r\n\r\n" % _port(site))
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    assert answer.startswith(b"HTTP/1.0 200 ")
    assert b"\r\nContent-Length: 5\r\n" in answer and answer.endswith(b"\r\n\r\nzzzzz")


def _client_socket(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_denied_host_gets_a_403_naming_the_rule(tmp_path: Path) -> None:
    """A deny rule refuses before any DNS or connection, says which rule and that taking it
    away is the way through (deny beats allow: an ``--allow`` would not help), and is logged."""
    cfg = config(tmp_path)
    with running(cfg) as (url, running_proxy), httpx.Client(proxy=url) as client:
        answer = client.get("http://api.evil.test/steal")
        report = running_proxy.close({"exit_code": 0})
    assert answer.status_code == 403
    assert "take '*.evil.test' (--deny) away" in answer.text
    assert "--allow" not in answer.text
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert (record["decision"], record["host"], record["status"]) == ("deny", "api.evil.test", 403)
    assert report.hosts[0].refused == (("denied by '*.evil.test' (--deny)", 1),)


def _closed_port() -> int:
    """A loopback port nothing listens on (one just let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_destination_that_cannot_be_reached_is_an_error_not_a_refusal(tmp_path: Path) -> None:
    """A request and a tunnel the rules allow to a port nothing listens on are answered
    ``502`` and logged as allowed with an error: the report counts them as errors, apart from
    the refusals, which are the log's denied records (a host the rules refuse, and a
    malformed request, under ``(no host)``)."""
    port = _closed_port()
    cfg = config(tmp_path)
    with running(cfg) as (url, proxy):
        for sent in (
            f"GET http://127.0.0.1:{port}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
            f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\n\r\n",
            "GET http://evil.test/ HTTP/1.1\r\nHost: evil.test\r\n\r\n",
            "CONNECT [example.com]:443 HTTP/1.1\r\n\r\n",
        ):
            with _client_socket(url) as sock:
                sock.sendall(sent.encode())
                answer = sock.recv(65536)
            assert answer.split(b" ")[1] in (b"502", b"403", b"400"), answer
        report = proxy.close({})
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["status"], r["decision"], bool(r["error"])) for r in records] == [
        (502, "allow", True),
        (502, "allow", True),
        (403, "deny", False),
        (400, "deny", True),
    ]
    assert (report.refused, report.errors) == (2, 2)
    hosts = {h.host: h for h in report.hosts}
    assert hosts["127.0.0.1"].refused == ()
    [(error, count)] = hosts["127.0.0.1"].errors
    assert count == 2 and error.startswith(f"cannot connect to 127.0.0.1:{port}")
    assert [count for _, count in hosts["evil.test"].refused] == [1]
    [(malformed, _)] = hosts["(no host)"].refused
    assert "brackets only around an IPv6 address" in malformed
    data = report.to_json()
    assert (data["refused"], data["errors"]) == (2, 2)
    host_json = next(h for h in data["hosts"] if h["host"] == "127.0.0.1")
    assert host_json["errors"] == [{"reason": error, "count": 2}] and host_json["refused"] == []
    assert f"failed 2×: cannot connect to 127.0.0.1:{port}" in "\n".join(report.lines())
    assert_report_is_the_log(report, cfg.audit_log)  # type: ignore[arg-type]


def test_a_token_in_a_plain_requests_path_stays_out_of_the_log(site: _Site, tmp_path: Path) -> None:
    """A host that is not inspected: a Slack bot token in the path (allowed or refused) and
    a GitHub token spelled in percent escapes are left out of the records; a plain path
    stays."""
    bot = "xoxb-123456789012-1234567890123-" + "aB3dE5fG7h" * 2 + "aBcD"
    github = "ghp_" + "aB3dE5fG7h" * 4
    escaped = "".join(f"%{ord(char):02X}" for char in github)
    cfg = config(tmp_path)
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        client.get(f"http://127.0.0.1:{_port(site)}/bot{bot}/sendMessage")
        client.get(f"http://api.evil.test/{escaped}")
        client.get(f"http://127.0.0.1:{_port(site)}/plain/page")
    paths = [record["path"] for record in _connections(cfg.audit_log)]  # type: ignore[arg-type]
    log = cfg.audit_log.read_text()  # type: ignore[union-attr]
    assert bot not in log and github not in log and escaped not in log
    assert paths[2] == "/plain/page"
    assert "sendMessage" in paths[0]


def test_connect_to_an_unlisted_host_is_refused(tmp_path: Path) -> None:
    """With no allow rule for it, a CONNECT is answered 403 and the tunnel never opens."""
    with running(config(tmp_path)) as (url, _):
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n\r\n")
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"no allow rule matches example.org:443" in answer


def test_loopback_is_refused_without_the_relaxed_check(site: _Site, tmp_path: Path) -> None:
    """An allowed host on a loopback address is still refused unless private addresses are allowed."""
    with (
        running(config(tmp_path, allow_private=False)) as (url, _),
        httpx.Client(proxy=url) as client,
    ):
        answer = client.get(f"http://127.0.0.1:{_port(site)}/x")
    assert answer.status_code == 403
    assert "loopback" in answer.text
    assert site.seen == []


def test_the_chain_of_a_run_verifies(site: _Site, tmp_path: Path) -> None:
    """After a run, the log verifies against its heads file and ends with a run record."""
    cfg = config(tmp_path)
    with running(cfg) as (url, running_proxy), httpx.Client(proxy=url) as client:
        client.get(f"http://127.0.0.1:{_port(site)}/a")
        report = running_proxy.close({"command": ["true"], "exit_code": 7})
    verdict = verify(cfg.audit_log, cfg.heads_file)  # type: ignore[arg-type]
    assert verdict.intact, verdict.problem
    last = json.loads(cfg.audit_log.read_text().splitlines()[-1])  # type: ignore[union-attr]
    assert (last["type"], last["exit_code"], last["command"]) == ("run", 7, ["true"])
    heads = cfg.heads_file.read_text().splitlines()  # type: ignore[union-attr]
    assert json.loads(heads[-1])["hash"] == report.final_hash
    assert json.loads(heads[-1])["final"] is True


def _banner_server() -> tuple[socket.socket, threading.Thread]:
    """A TCP server that speaks first, echoes, and says bye after the client half-closes."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.sendall(b"banner\n")
            received = b""
            while piece := conn.recv(65536):
                received += piece
            conn.sendall(b"echo:" + received + b"bye\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server, thread


def test_tunnel_passes_server_first_bytes_early_data_and_half_close(tmp_path: Path) -> None:
    """Bytes sent with the CONNECT, a destination that speaks first, and a half-close all pass."""
    server, thread = _banner_server()
    port = server.getsockname()[1]
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        host, proxy_port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(proxy_port)), timeout=10) as sock:
            sock.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\nearly;" % port)
            sock.sendall(b"later;")
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while piece := sock.recv(65536):
                answer += piece
    thread.join(10)
    server.close()
    assert answer == b"HTTP/1.1 200 Connection established\r\n\r\nbanner\necho:early;later;bye\n"
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert (record["bytes_out"], record["bytes_in"]) == (12, 7 + 5 + 12 + 4)


@pytest.mark.parametrize(
    "address",
    ["::7f00:1", "64:ff9b::7f00:1", "2002:7f00:1::1", "2001:0:4136:e378:8000:63bf:80ff:fffe"],
    ids=["ipv4_compatible", "nat64", "6to4", "teredo"],
)
def test_a_denied_ipv4_address_is_denied_in_ipv6_that_carries_it(
    site: _Site, tmp_path: Path, address: str
) -> None:
    """--deny 127.0.0.1 refuses a CONNECT to an IPv6 address carrying 127.0.0.1, by that rule
    (before any address is looked at), and the record names it."""
    cfg = config(
        tmp_path,
        allow=EgressConfig.rules(["*"], "--allow"),
        deny=EgressConfig.rules(["127.0.0.1"], "--deny"),
    )
    with running(cfg) as (url, _):
        connect = f"CONNECT [{address}]:{_port(site)} HTTP/1.1\r\n\r\n"
        answer, closed = _exchange(url, connect.encode())
    assert closed
    assert answer.startswith(b"HTTP/1.1 403 "), answer[:80]
    assert b"denied by '127.0.0.1' (--deny)" in answer
    [record] = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert (record["decision"], record["reason"]) == ("deny", "denied by '127.0.0.1' (--deny)")


@pytest.mark.parametrize("method", ["CONNECT", "GET"])
def test_a_name_too_long_is_refused_with_its_start_shown_unbracketed(
    tmp_path: Path, method: str
) -> None:
    """A host longer than a name may be is refused naming its start and its length, as
    records show it, without the brackets of an IPv6 address (its cut text holds a colon)."""
    name = ".".join(["a" * 60] * 5)  # 304 characters
    target = f"{name}:443" if method == "CONNECT" else f"http://{name}/"
    with running(config(tmp_path)) as (url, _):
        answer, _ = _exchange(url, f"{method} {target} HTTP/1.1\r\nHost: {name}\r\n\r\n".encode())
    port = 443 if method == "CONNECT" else 80
    shown = f"{'a' * 60}…(cut: 304 characters):{port}".encode()
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"airlock: " + method.encode() + b" to " + shown + b" refused: " in answer
    assert b"[" not in answer.split(b"\r\n\r\n", 1)[1]


def _exchange(proxy: str, request: bytes, timeout: float = 5.0) -> tuple[bytes, bool]:
    """Send ``request`` on one kept-alive connection; what comes back within ``timeout``, and
    whether the proxy closed the connection."""
    with socket.create_connection(("127.0.0.1", int(proxy.rsplit(":", 1)[1])), 10) as sock:
        sock.settimeout(timeout)
        sock.sendall(request)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
        except TimeoutError:
            return answer, False
    return answer, True


@pytest.mark.parametrize(
    ("method", "kind", "version"),
    [
        ("GET", "sized", "1.1"),
        ("GET", "chunked", "1.1"),
        ("GET", "204", "1.1"),
        ("HEAD", "sized", "1.1"),
        ("GET", "chunked", "1.0"),
        ("HEAD", "sized", "1.0"),
    ],
    ids=["sized", "chunked", "no_content", "head", "http10_chunked", "http10_head"],
)
def test_bytes_after_a_response_are_not_passed_on(
    site: _Site, tmp_path: Path, method: str, kind: str, version: str
) -> None:
    """An origin that sends a second response no request asked for, in the same read as the
    first, gets neither to the client: it gets a 502, the connection is closed (a kept-alive
    client would take the extra as the answer to its next request), and the record says why."""
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        target = f"http://127.0.0.1:{_port(site)}/inject?kind={kind}"
        request = f"{method} {target} HTTP/{version}\r\nHost: x\r\nConnection: keep-alive\r\n\r\n"
        answer, closed = _exchange(url, request.encode())
    assert b"INJECTED" not in answer
    assert answer.startswith(b"HTTP/1.1 502 "), answer[:80]
    assert closed
    [record] = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert record["status"] == 502
    assert "after its response" in record["error"]


def test_interim_answers_before_the_response_are_relayed(site: _Site, tmp_path: Path) -> None:
    """100 Continue and 103 Early Hints in the same read as the final response are no extra
    bytes: all of it reaches the client, and the connection goes on."""
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        base = f"http://127.0.0.1:{_port(site)}"
        request = f"GET {base}/interim HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        answer, closed = _exchange(url, request + request, timeout=2.0)
    assert not closed
    assert answer.count(b"HTTP/1.1 100 Continue\r\n") == 2
    assert answer.count(b"HTTP/1.1 103 Early Hints\r\n") == 2
    assert answer.endswith(b"final") and answer.count(b"final") == 2
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["status"], r["error"]) for r in records] == [(200, None), (200, None)]


def test_a_body_found_malformed_midway_is_logged_with_what_went_out(
    site: _Site, tmp_path: Path
) -> None:
    """A chunked upload whose first piece is streamed upstream before a bad chunk size comes:
    the client gets a 400, the upstream connection is cut, and the request's own record
    counts the bytes that left (never a host-less "malformed" record with nothing out)."""
    cfg = config(tmp_path)
    piece = b"S" * 300_000
    with running(cfg) as (url, _), _client_socket(url) as sock:
        sock.sendall(
            b"POST http://127.0.0.1:%d/upload HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
            % _port(site)
        )
        sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        sock.sendall(b"zz\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400")
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert record["host"] == "127.0.0.1" and record["method"] == "POST"
    assert record["status"] == 400 and record["decision"] == "allow"
    assert int(record["bytes_out"]) > len(b"POST /upload HTTP/1.1\r\n")  # type: ignore[call-overload]
    assert "cut upstream" in str(record["error"])
    run = [r for r in read_records(cfg.audit_log) if r["type"] == "run"]  # type: ignore[arg-type]
    assert run[0]["hosts"][0]["bytes_out"] == record["bytes_out"]


@pytest.mark.parametrize("spelling", ["0x7f.1", "2130706433", "127.0.0.1."])
def test_records_name_the_host_as_the_rules_read_it(
    site: _Site, tmp_path: Path, spelling: str
) -> None:
    """Whatever spelling the client used, the record (and the report's count) names the host
    in its canonical form, allowed or refused."""
    port = _port(site)
    cfg = config(tmp_path)
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        allowed = client.get(f"http://{spelling}:{port}/x")
    refused_cfg = config(tmp_path / "refused", allow_private=False)
    with running(refused_cfg) as (url, _), _client_socket(url) as sock:
        sock.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (spelling.encode(), port))
        refused = sock.recv(1000)
    assert allowed.status_code == 200 and refused.startswith(b"HTTP/1.1 403")
    for log in (cfg.audit_log, refused_cfg.audit_log):
        (record,) = _connections(log)  # type: ignore[arg-type]
        assert record["host"] == "127.0.0.1"


def test_an_upload_whose_client_resets_before_the_answer_keeps_its_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The client posts, then resets its connection before the answer comes back (a round
    trip later): the write of the answer fails, and the request, which left, is still
    logged, with its bytes."""
    from tests.egress import origin as served

    answer = served._Handler.do_POST

    def later(handler: Any) -> None:
        time.sleep(0.15)
        answer(handler)

    monkeypatch.setattr(served._Handler, "do_POST", later)
    cfg = config(tmp_path)
    with origin() as site, running(cfg) as (url, _):
        for number in range(3):
            with _client_socket(url) as sock:
                body = b"S" * 65536
                sock.sendall(
                    b"POST http://127.0.0.1:%d/left%d HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                    % (_port(site), number, len(body))
                    + body
                )
                time.sleep(0.02)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            time.sleep(0.3)
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert sorted(str(r["path"]) for r in records) == ["/left0", "/left1", "/left2"]
    assert all(int(r["bytes_out"]) > 65536 for r in records)  # type: ignore[call-overload]


def test_a_101_to_a_plain_request_is_not_passed_on(tmp_path: Path) -> None:
    """A destination that answers a plain GET with ``101 Switching Protocols``: nothing of it
    reaches the client but a 502 saying why, and the record says so (no traceback)."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def switch() -> None:
        connection, _ = server.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\n\r\nframes"
            )
            time.sleep(0.5)

    thread = threading.Thread(target=switch, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        answer = client.get(f"http://127.0.0.1:{port}/socket")
    thread.join(5)
    server.close()
    assert answer.status_code == 502
    assert b"frames" not in answer.content and b"switched protocols" in answer.content
    assert cfg.audit_log is not None
    [record] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert record["status"] == 502 and "switched protocols" in record["error"]


def test_a_response_head_that_never_ends_gets_a_502(tmp_path: Path) -> None:
    """A destination whose response head goes on and on (one endless header line): the proxy
    stops it at its bound, none of it reaches the client but a 502 saying why, and the record
    says so. A head that is large but whole still passes."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def answer() -> None:
        for _ in range(2):
            connection, _ = server.accept()
            with connection, contextlib.suppress(OSError):
                path = connection.recv(65536).split(b" ")[1]
                if path == b"/big":  # a 200 kB header, whole
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\nX-Big: " + b"b" * 200_000 + b"\r\n"
                        b"Content-Length: 2\r\nConnection: close\r\n\r\nok"
                    )
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nX-Endless: ")
                    for _ in range(64):  # 4 MB at most; the bound is 256 kB
                        connection.sendall(b"A" * 65536)
                time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    cfg = config(tmp_path)
    with running(cfg) as (url, _):
        big, _ = _exchange(
            url, b"GET http://127.0.0.1:%d/big HTTP/1.1\r\nConnection: close\r\n\r\n" % port
        )
        endless, _ = _exchange(url, b"GET http://127.0.0.1:%d/endless HTTP/1.1\r\n\r\n" % port)
    thread.join(10)
    server.close()
    assert big.startswith(b"HTTP/1.1 200 OK\r\nX-Big: bbb") and big.endswith(b"\r\n\r\nok")
    assert endless.startswith(b"HTTP/1.1 502 "), endless[:100]
    assert b"AAAA" not in endless and b"response head exceeds" in endless
    assert cfg.audit_log is not None
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]
    assert records[-1]["status"] == 502 and "response head exceeds" in records[-1]["error"]


@pytest.mark.parametrize("after", [b"unasked", b"close"])
def test_a_kept_connection_that_got_anything_meanwhile_is_not_reused(
    tmp_path: Path, after: bytes
) -> None:
    """A destination that sends an answer no request asked for a moment after its response
    (or closes the connection): the client's next request goes on a new connection and gets
    its own answer, never the unasked one."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    accepted: list[int] = []

    def answer() -> None:
        for number in range(2):
            connection, _ = server.accept()
            accepted.append(number)
            with connection, contextlib.suppress(OSError):
                connection.recv(65536)
                if number == 0:
                    connection.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
                    time.sleep(0.2)
                    if after == b"close":
                        continue
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nINJECTED")
                    connection.recv(65536)  # a request sent here would be answered above
                else:
                    connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecond")
                    time.sleep(0.5)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    with running(config(tmp_path)) as (url, _), _client_socket(url) as sock:
        sock.settimeout(5)
        sock.sendall(b"GET http://127.0.0.1:%d/first HTTP/1.1\r\n\r\n" % port)
        first = sock.recv(65536)
        time.sleep(0.6)  # the unasked answer (or the end) has come meanwhile
        sock.sendall(b"GET http://127.0.0.1:%d/second HTTP/1.1\r\n\r\n" % port)
        second = b""
        while not second.endswith((b"second", b"INJECTED")) and (piece := sock.recv(65536)):
            second += piece
    server.close()
    thread.join(5)
    assert first.startswith(b"HTTP/1.1 204 ")
    assert second.startswith(b"HTTP/1.1 200 ") and second.endswith(b"second"), second
    assert accepted == [0, 1]


def test_a_host_name_longer_than_a_name_may_be_is_refused_and_shown_cut(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONNECTs and requests to 60 kB host names: refused as invalid, the name shown cut (and
    said so) in the answer, the records and the report; past the hosts counted apart, the
    rest are counted together, and the report says so."""
    from airlock.egress import server

    monkeypatch.setattr(server, "MAX_HOSTS", 3)
    cfg = config(tmp_path)
    with running(cfg) as (url, proxy):
        answers = []
        for number in range(6):
            host = b"%08d" % number + b"a" * 60_000
            with _client_socket(url) as sock:
                if number % 2:
                    sock.sendall(b"CONNECT " + host + b":443 HTTP/1.1\r\n\r\n")
                else:
                    sock.sendall(b"GET http://" + host + b"/ HTTP/1.1\r\n\r\n")
                answer = b""
                while piece := sock.recv(65536):
                    answer += piece
                answers.append(answer)
        report = proxy.close({})
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 403 ") and len(answer) < 1000, answer[:200]
        assert b"(cut: 60008 characters)" in answer and b"longer than 253 characters" in answer
    records = list(read_records(cfg.audit_log))  # type: ignore[arg-type]
    refused = [r for r in records if r["type"] in ("request", "tunnel")]
    assert len(refused) == 6
    assert all(
        len(r["host"]) < 100 and r["host"].endswith("(cut: 60008 characters)") for r in refused
    )
    assert len(records[-1]["hosts"]) == 4  # three apart, the others together
    hosts = {h.host: h for h in report.hosts}
    assert len(hosts) == 4 and sum(count for _, count in hosts["(other hosts)"].refused) == 3
    assert "hosts past the first 1000 are counted together" in "\n".join(report.lines())
    assert len(json.dumps(records[-1])) < 5000


@contextlib.contextmanager
def _tunnel_to(proxy_url: str, port: int) -> Iterator[socket.socket]:
    """A socket through the proxy's ``CONNECT 127.0.0.1:PORT``, answered ``200``."""
    proxy_port = int(proxy_url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", proxy_port), timeout=10) as raw:
        raw.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        answer = b""
        while b"\r\n\r\n" not in answer:
            answer += raw.recv(1000)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        yield raw


def _tls_through_tunnel(proxy_url: str, port: int, server_name: str) -> bytes:
    """``CONNECT 127.0.0.1:PORT``, then TLS asking for ``server_name`` and one request; what
    came back (empty when the tunnel was closed on the hello)."""
    import ssl

    with _tunnel_to(proxy_url, port) as raw:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(raw, server_hostname=server_name) as tls:
                tls.sendall(b"GET /bytes/100 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                body = b""
                while piece := tls.recv(65536):
                    body += piece
                return body
        except (ssl.SSLError, OSError):
            return b""


def test_a_tunnel_whose_tls_asks_for_a_host_the_rules_refuse_is_refused(tmp_path: Path) -> None:
    """One address may serve many sites (a CDN's): the server answers as the name the TLS asks
    for. ``CONNECT`` to an allowed address with TLS for a denied or unlisted name is refused
    on its hello, and the record names both; a name the rules allow passes, kept in the
    record; with ``--allow-all`` an unlisted name passes, named in the record, and a denied
    one is still refused (a deny beats every allow)."""
    from airlock.egress.ca import RunCA
    from tests.egress.harness import NOW, tls_origin

    origin_ca = RunCA(now=NOW, name="test origin CA")
    cfg = config(tmp_path)
    with tls_origin(origin_ca, "localhost") as origin_site:
        port = origin_site.server_address[1]
        with running(cfg) as (url, _):
            denied = _tls_through_tunnel(url, port, "evil.test")
            unlisted = _tls_through_tunnel(url, port, "elsewhere.example")
            allowed = _tls_through_tunnel(url, port, "localhost")
        everything = config(tmp_path / "all", allow_all=True)
        with running(everything) as (url, _):
            unlisted_all = _tls_through_tunnel(url, port, "elsewhere.example")
            denied_all = _tls_through_tunnel(url, port, "evil.test")
    assert denied == b"" and unlisted == b""
    assert allowed.startswith(b"HTTP/1.1 200")
    assert unlisted_all.startswith(b"HTTP/1.") and denied_all == b""
    everything_log = _connections(everything.audit_log)  # type: ignore[arg-type]
    assert [(r["decision"], r.get("server_name")) for r in everything_log] == [
        ("allow", "elsewhere.example"),
        ("deny", "evil.test"),
    ]
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["decision"], r.get("server_name")) for r in records] == [
        ("deny", "evil.test"),
        ("deny", "elsewhere.example"),
        ("allow", "localhost"),
    ]
    assert "asks for evil.test, which the rules refuse" in str(records[0]["reason"])
    assert all(r["host"] == "127.0.0.1" for r in records)


def _cleartext_through_tunnel(proxy_url: str, port: int, requests: bytes | list[bytes]) -> bytes:
    """``CONNECT 127.0.0.1:PORT``, then ``requests`` sent in the clear (a list: each piece
    after an answer to the one before); what came back."""
    with _tunnel_to(proxy_url, port) as raw:
        pieces = [requests] if isinstance(requests, bytes) else requests
        body = b""
        for piece in pieces[:-1]:
            raw.sendall(piece)
            body += raw.recv(65536)
        raw.sendall(pieces[-1])
        with contextlib.suppress(OSError):
            while piece := raw.recv(65536):
                body += piece
        return body


def _front_proxy(
    stack: contextlib.ExitStack, tmp_path: Path, chained: bool
) -> tuple[EgressConfig, tuple[str, RunningProxy]]:
    """A proxy running until ``stack`` closes, ``chained`` through another as its upstream:
    its configuration, its URL and the proxy."""
    cfg = config(tmp_path)
    if chained:
        upstream_url, _ = stack.enter_context(running(config(tmp_path / "upstream")))
        cfg = config(tmp_path / "front", upstream_proxy=upstream_url, no_proxy="")
    return cfg, stack.enter_context(running(cfg))


@pytest.mark.parametrize("chained", [False, True], ids=["direct", "through_an_upstream_proxy"])
def test_http_in_the_clear_inside_a_tunnel_is_held_to_the_rules_request_by_request(
    site: _Site, tmp_path: Path, chained: bool
) -> None:
    """A front end routes plain HTTP by its ``Host``: inside a tunnel to an allowed address,
    a request naming a host the rules refuse (first, or after allowed ones on the same
    connection, after an upgrade the origin declined, or by an absolute target) ends the
    tunnel before it goes on; requests naming the tunnel's own host pass."""
    port = _port(site)
    own = f"127.0.0.1:{port}".encode()
    cases: dict[str, bytes | list[bytes]] = {
        "allowed": b"GET /a HTTP/1.1\r\nHost: %s\r\n\r\n" % own
        + b"GET /b HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % own,
        "denied_first": b"GET /c HTTP/1.1\r\nHost: evil.test\r\n\r\n",
        "denied_second": [
            b"GET /d HTTP/1.1\r\nHost: %s\r\n\r\n" % own,
            b"GET /e HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
        ],
        "absolute": b"GET http://evil.test/f HTTP/1.1\r\nHost: %s\r\n\r\n" % own,
        "declined_upgrade": [  # the origin answers 200, not 101: HTTP goes on
            b"GET /g HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\n"
            b"Upgrade: websocket\r\n\r\n" % own,
            b"GET /h HTTP/1.1\r\nHost: elsewhere.example\r\n\r\n",
        ],
        "version_less": [  # HTTP/0.9: servers differ on it; it never reaches the origin
            b"GET /i HTTP/1.1\r\nHost: %s\r\n\r\n" % own,
            b"GET /j\r\nHost: %s\r\n\r\n" % own,
        ],
    }
    with contextlib.ExitStack() as stack:
        cfg, (url, proxy) = _front_proxy(stack, tmp_path, chained)
        answers = {name: _cleartext_through_tunnel(url, port, sent) for name, sent in cases.items()}
        report = proxy.close({})
    assert answers["allowed"].count(b"HTTP/1.") == 2 and b"path=/b" in answers["allowed"]
    assert answers["denied_first"] == b"" and answers["absolute"] == b""
    assert b"path=/d" in answers["denied_second"] and b"path=/e" not in answers["denied_second"]
    assert b"path=/g" in answers["declined_upgrade"] and b"/h" not in answers["declined_upgrade"]
    assert b"path=/i" in answers["version_less"] and b"/j" not in answers["version_less"]
    assert [path for path, _ in site.seen] == ["/a", "/b", "/d", "/g", "/i"]
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["decision"], r.get("server_name")) for r in records] == [
        ("allow", None),
        ("deny", "evil.test"),
        ("deny", "elsewhere.example"),
        ("deny", "evil.test"),
        ("deny", "elsewhere.example"),
        ("deny", None),
    ]
    assert "asks for elsewhere.example, which the rules refuse" in str(records[2]["reason"])
    assert "HTTP/0.9" in str(records[5]["reason"])
    # what passed before the refused request is in its record, as in the report
    assert records[2]["bytes_out"] > 0 and records[2]["bytes_in"] > 0
    assert_report_is_the_log(report, cfg.audit_log)  # type: ignore[arg-type]


@pytest.mark.parametrize("chained", [False, True], ids=["direct", "through_an_upstream_proxy"])
def test_every_host_a_tunnel_in_the_clear_named_is_in_its_record(
    site: _Site, tmp_path: Path, chained: bool
) -> None:
    """With ``--allow-all`` one tunnel may carry requests to many hosts: its record keeps the
    first as ``server_name`` and lists every other name its requests gave, the first 16
    distinct ones in order and a count of the rest (the tunnel's own host is its ``host``)."""
    port = _port(site)
    names = ["a.test", "b.test", "a.test", f"127.0.0.1:{port}", "c.test"]
    names += [f"h{index:02}.test" for index in range(15)]
    requests = b"".join(
        b"%s /%d HTTP/1.1\r\nHost: %s\r\n%s\r\n%s"
        % (
            b"POST" if name == "c.test" else b"GET",
            index,
            name.encode(),
            b"Content-Length: 4\r\n" if name == "c.test" else b"",
            b"data" if name == "c.test" else b"",
        )
        for index, name in enumerate(names)
    )
    requests = requests[:-2] + b"Connection: close\r\n\r\n"
    with contextlib.ExitStack() as stack:
        cfg = config(tmp_path, allow_all=True)
        if chained:
            upstream = config(tmp_path / "upstream", allow_all=True)
            upstream_url, _ = stack.enter_context(running(upstream))
            cfg = config(
                tmp_path / "front", allow_all=True, upstream_proxy=upstream_url, no_proxy=""
            )
        url, _ = stack.enter_context(running(cfg))
        answer = _cleartext_through_tunnel(url, port, requests)
    assert answer.count(b"HTTP/1.1 200") == len(names)
    assert [host for _, host in site.seen] == names
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    others = ["a.test", "b.test", "c.test"] + [f"h{index:02}.test" for index in range(15)]
    assert (record["decision"], record["server_name"]) == ("allow", "a.test")
    assert record["server_names"] == others[:16]
    assert record["server_names_more"] == 2


@pytest.mark.parametrize("chained", [False, True], ids=["direct", "through_an_upstream_proxy"])
def test_a_client_waiting_for_100_continue_in_a_tunnel_gets_it(
    site: _Site, tmp_path: Path, chained: bool
) -> None:
    """A request's head sent in the clear goes on once judged, before its body: a client
    that waits for ``100 Continue`` (curl's large uploads) gets it, then its answer."""
    port = _port(site)
    body = b'{"upload": "' + b"x" * 100_000 + b'"}'
    with contextlib.ExitStack() as stack:
        _, (url, _) = _front_proxy(stack, tmp_path, chained)
        with _tunnel_to(url, port) as raw:
            raw.sendall(
                b"POST /up HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: %d\r\n"
                b"Expect: 100-continue\r\nConnection: close\r\n\r\n" % (port, len(body))
            )
            interim = raw.recv(1000)  # the socket's 10 s timeout: the head must have gone
            raw.sendall(body)
            answer = b""
            while piece := raw.recv(65536):
                answer += piece
    assert interim.startswith(b"HTTP/1.1 100 Continue")
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(body)
    assert site.seen == [("/up", f"127.0.0.1:{port}")]


@pytest.mark.parametrize("chained", [False, True], ids=["direct", "through_an_upstream_proxy"])
def test_bytes_cut_short_by_the_client_are_told_as_they_end(
    site: _Site, tmp_path: Path, chained: bool
) -> None:
    """A client that closes its side after bytes airlock still holds: a server may act on
    them at the close, so they are told as they end. ``GET http://evil.test/x`` (HTTP/0.9)
    is refused; another protocol's unfinished line goes on; after an allowed request, a head
    cut short naming another host is dropped and the tunnel recorded refused, while the
    answer to the request before it still comes."""
    port = _port(site)
    own = f"127.0.0.1:{port}".encode()
    cases: list[list[bytes]] = [
        [b"GET http://evil.test/x"],
        [b"EHLO mail.example"],
        [b"GET /a HTTP/1.1\r\nHost: %s\r\n\r\n" % own, b"GET /b HTTP/1.1\r\nHost: evil.te"],
    ]
    answers = []
    with contextlib.ExitStack() as stack:
        cfg, (url, _) = _front_proxy(stack, tmp_path, chained)
        for pieces in cases:
            with _tunnel_to(url, port) as raw:
                for piece in pieces:
                    raw.sendall(piece)
                    time.sleep(0.05)  # each in a read of its own
                raw.shutdown(socket.SHUT_WR)
                answer = b""
                with contextlib.suppress(OSError):
                    while piece := raw.recv(65536):
                        answer += piece
                answers.append(answer)
    assert answers[0] == b"" and b"400" in answers[1]  # http.server answers its own way
    assert answers[2].startswith(b"HTTP/1.1 200") and b"path=/a" in answers[2]
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [r["decision"] for r in records] == ["deny", "allow", "deny"]
    assert "HTTP/0.9" in str(records[0]["reason"])
    assert "refuse" in str(records[2]["reason"]) and records[2]["bytes_in"] > 0
    assert site.seen == [("/a", own.decode())]


def test_a_name_longer_than_a_host_name_is_refused_and_kept_cut(
    site: _Site, tmp_path: Path
) -> None:
    """A megabyte Host inside a tunnel: refused, and the record keeps its start and length,
    not the whole of it (twice, in the reason)."""
    cfg = config(tmp_path)
    long_name = "a" * 100_000 + ".test"
    with running(cfg) as (url, _):
        answer = _cleartext_through_tunnel(
            url, _port(site), f"GET / HTTP/1.1\r\nHost: {long_name}\r\n\r\n".encode()
        )
    assert answer == b""
    (record,) = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert record["decision"] == "deny" and "cut: 100005 characters" in str(record["server_name"])
    assert len(json.dumps(record)) < 2000


def test_a_denied_address_is_refused_whatever_name_reaches_it(site: _Site, tmp_path: Path) -> None:
    """``--deny 127.0.0.2`` holds for a name that resolves to it (any wildcard DNS service
    gives one), in plain HTTP and in a tunnel, the reason naming both; a name resolving to an
    allowed address passes, its record naming the address dialled."""
    from airlock.egress import start_proxy
    from tests.egress.origin import listener

    names = {"denied-by-ip.test": "127.0.0.2", "fine.test": "127.0.0.1"}

    async def resolve(host: str, port: int, private_ok: bool) -> str:
        return names.get(host, host)

    cfg = config(
        tmp_path,
        allow=EgressConfig.rules(["*.test"], "--allow"),
        deny=EgressConfig.rules(["127.0.0.2"], "--deny"),
    )
    port = site.server_address[1]
    proxy = start_proxy(cfg, [sock := listener()], check=resolve)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    try:
        with httpx.Client(proxy=url) as client:
            plain = client.get(f"http://denied-by-ip.test:{port}/bytes/10")
            fine = client.get(f"http://fine.test:{port}/bytes/10")
        with socket.create_connection(sock.getsockname(), timeout=10) as raw:
            raw.sendall(b"CONNECT denied-by-ip.test:%d HTTP/1.1\r\n\r\n" % port)
            tunnel = raw.recv(4096)
    finally:
        proxy.close({"command": ["test"], "exit_code": 0})
    assert plain.status_code == 403 and "resolves to 127.0.0.2" in plain.text
    assert fine.status_code == 200
    assert tunnel.startswith(b"HTTP/1.1 403")
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["host"], r["decision"], r.get("address")) for r in records] == [
        ("denied-by-ip.test", "deny", None),
        ("fine.test", "allow", "127.0.0.1"),
        ("denied-by-ip.test", "deny", None),
    ]
    assert "denied by '127.0.0.2'" in str(records[0]["reason"])


def test_after_the_log_failed_new_connections_are_answered_503_and_counted(
    site: _Site, tmp_path: Path
) -> None:
    """The log removed mid-run stops traffic; a client that connects afterwards gets a
    ``503`` saying why (the listener was closed: refused at the socket, as if no proxy were
    there), and the report counts it."""
    cfg = config(tmp_path)
    assert cfg.audit_log is not None
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with httpx.Client(proxy=url) as client:
            assert client.get(f"http://127.0.0.1:{port}/before").status_code == 200
        cfg.audit_log.unlink()
        until_failed(proxy, url, port)
        assert proxy.failed is not None
        answers = [
            exchange(url, b"GET http://127.0.0.1:%d/after HTTP/1.1\r\n\r\n" % port)
            for _ in range(2)
        ]
        report = proxy.close({"exit_code": 0})
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 503 ") and b"audit log failed" in answer
    assert sum(count for reason, count in report.connections_refused if "audit log" in reason) >= 2


def test_uploads_in_plain_http_are_answered_though_the_origin_closes_after_each(
    site: _Site, tmp_path: Path
) -> None:
    """A request with a body goes with ``Connection: close``, and the origin closes once it
    answered: each answer still reaches the client, none recorded as failed."""
    cfg = config(tmp_path)
    port = site.server_address[1]
    body = b"u" * 600_000
    with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
        answers = [client.post(f"http://127.0.0.1:{port}/echo", content=body) for _ in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5
    assert all(len(answer.content) == len(body) for answer in answers)
    records = _connections(cfg.audit_log)  # type: ignore[arg-type]
    assert [(r["status"], r["error"]) for r in records] == [(200, None)] * 5
