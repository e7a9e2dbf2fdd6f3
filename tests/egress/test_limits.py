"""Limits (connections, rate, upload budget, idle time) and chaining to an upstream proxy."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from airlock.egress.limits import BUCKETS, RateLimiter, UploadBudget
from airlock.egress.server import local_names
from tests.egress.origin import _Site, config, exchange, running


def _connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def test_rate_limiter_forgets_the_hosts_whose_bucket_is_full_again() -> None:
    """However many names the rules allow, the buckets kept are those of hosts dialled within
    about a second: a full bucket is what a new host gets anyway."""
    limiter = RateLimiter(2.0)
    for number in range(BUCKETS):
        assert limiter.admit(f"h{number}.example.com", 0.0)
    assert limiter.admit("new.example.com", 0.1)  # the bound reached: none is full yet,
    assert len(limiter._buckets) == BUCKETS // 2 + 1  # so those dialled longest ago go
    for number in range(BUCKETS // 2 - 1):
        assert limiter.admit(f"more{number}.example.com", 0.9)
    assert limiter.admit("later.example.com", 1.0)  # the bound again: the full ones forgotten
    assert len(limiter._buckets) == BUCKETS // 2  # the hosts of 0.9 s (not full yet), later's
    assert "new.example.com" not in limiter._buckets and "later.example.com" in limiter._buckets
    assert [limiter.admit("new.example.com", 1.0) for _ in range(3)] == [True, True, False]


def test_rate_limiter_rebuilds_its_table_once_every_half_bound_at_most() -> None:
    """A rate so low that no bucket refills: hosts past the bound do not make each new host
    rebuild the whole table (20,000 hosts took 30 s); the most recent half is kept, each still
    limited."""
    import time

    limiter = RateLimiter(0.01)
    started = time.monotonic()
    for number in range(4 * BUCKETS):
        assert limiter.admit(f"h{number}.example.com", float(number) / 1000)
    assert time.monotonic() - started < 5.0
    assert len(limiter._buckets) <= BUCKETS
    last = f"h{4 * BUCKETS - 1}.example.com"
    assert not limiter.admit(last, 40.0)  # kept: its one connection in 100 s is spent


def test_rate_limiter_refills_with_time() -> None:
    """Two a second: the third at once is refused, one more half a second later is admitted."""
    limiter = RateLimiter(2)
    assert [limiter.admit("h", 0.0) for _ in range(3)] == [True, True, False]
    assert limiter.admit("other", 0.0)
    assert limiter.admit("h", 0.5) and not limiter.admit("h", 0.5)


def test_rate_limiter_below_one_a_second_admits_one_each_period() -> None:
    """Half a connection a second: one now, none until two seconds later (a bucket the size
    of the rate never held a whole token, and admitted nothing)."""
    limiter = RateLimiter(0.5)
    assert limiter.admit("h", 0.0)
    assert not limiter.admit("h", 1.0)
    assert limiter.admit("h", 2.0) and not limiter.admit("h", 2.0)


def test_upload_budget_notes_when_it_runs_out() -> None:
    """The budget admits until spent, then refuses and says it ran out."""
    budget = UploadBudget(10)
    budget.spend(9)
    assert budget.admit() and not budget.exhausted
    budget.spend(1)
    assert not budget.admit() and budget.exhausted


def test_new_connections_per_second_per_host(site: _Site, tmp_path: Path) -> None:
    """Past the rate, a new connection is answered 429 naming the limit; the report counts it."""
    cfg = config(tmp_path, limits=Limits(new_connections_per_second=2))
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        statuses = []
        for index in range(4):
            with httpx.Client(proxy=url) as client:
                statuses.append(client.get(f"http://127.0.0.1:{port}/{index}").status_code)
        report = proxy.close({})
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]
    (host,) = report.hosts
    assert any("new connections per second" in reason for reason, _ in host.refused)


def test_upload_budget_cuts_a_request_body_and_refuses_new_connections(
    site: _Site, tmp_path: Path
) -> None:
    """A 1.2 MB body with a 1 MB budget: cut at the budget (the connection closed, nothing
    past it sent), its record saying so with the bytes that left; the next connection is
    refused, and the run says so."""
    cfg = config(tmp_path, limits=Limits(max_upload_mb=1))
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with _connect(url) as sock:
            body = b"u" * 1_200_000
            answer = b""
            with contextlib.suppress(OSError):
                sock.sendall(
                    b"POST http://127.0.0.1:%d/up HTTP/1.1\r\nContent-Length: %d\r\n\r\n"
                    % (port, len(body))
                    + body
                )
                while piece := sock.recv(65536):
                    answer += piece
        with httpx.Client(proxy=url) as client:
            refused = client.get(f"http://127.0.0.1:{port}/next")
        report = proxy.close({})
    assert answer == b""  # cut: no answer
    assert refused.status_code == 403 and "upload budget of 1 MiB" in refused.text
    [cut, _] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert "upload budget of 1 MiB is used up" in cut["error"]
    assert 0 < cut["bytes_out"] <= 1 << 20
    assert report.upload_budget_exhausted
    assert any("transfers under way were cut" in line for line in report.lines())


def test_upload_budget_counts_a_chunked_bodys_framing(site: _Site, tmp_path: Path) -> None:
    """The budget is of the bytes that leave: 10,000 one-byte chunks are some 60 KB on the
    wire, past a budget of about 10 KB, though their data is 10,000 bytes."""
    cfg = config(tmp_path, limits=Limits(max_upload_mb=0.01))
    port = site.server_address[1]
    with running(cfg) as (url, proxy):
        with _connect(url) as sock:
            answer = b""
            with contextlib.suppress(OSError):
                sock.sendall(
                    b"POST http://127.0.0.1:%d/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                    % port
                    + b"1\r\nX\r\n" * 10_000
                    + b"0\r\n\r\n"
                )
                while piece := sock.recv(65536):
                    answer += piece
        proxy.close({})
    assert answer == b""  # cut: no answer
    [cut] = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert "upload budget" in cut["error"]
    assert 0 < cut["bytes_out"] <= 0.01 * (1 << 20)


def test_upload_budget_counts_a_chunked_bodys_last_chunk(site: _Site, tmp_path: Path) -> None:
    """Chunked uploads until the budget runs out: what left, each body's last chunk
    (``0``, CRLF, CRLF) included, stays within the budget."""
    cfg = config(tmp_path, limits=Limits(max_upload_mb=0.01))
    port = site.server_address[1]
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (300, b"x" * 300)
    with running(cfg) as (url, proxy):
        for _ in range(60):
            with _connect(url) as sock, contextlib.suppress(OSError):
                sock.sendall(
                    b"POST http://127.0.0.1:%d/up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
                    b"Connection: close\r\n\r\n" % port + body
                )
                while sock.recv(65536):
                    pass
        proxy.close({})
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert any("upload budget" in str(r.get("error") or r.get("reason")) for r in records)
    assert sum(int(r["bytes_out"]) for r in records) <= int(0.01 * (1 << 20))


def test_upload_budget_counts_the_names_looked_up(tmp_path: Path) -> None:
    """Under a wildcard rule code inside chooses the names the proxy looks up, and a lookup
    carries its name off the machine: each name looked up is charged, so names of 200
    characters run a budget of about 1 KB out within a few lookups (then new connections are
    refused, the name not looked up); an address is not looked up and not charged."""
    from airlock.egress import EgressConfig, start_proxy
    from tests.egress.origin import listener

    looked_up: list[str] = []

    async def resolve(host: str, port: int, private_ok: bool) -> str:
        if host != "127.0.0.1":
            looked_up.append(host)
        return "127.0.0.1"

    cfg = config(
        tmp_path,
        allow=EgressConfig.rules(["*.exfil.test", "127.0.0.1"], "--allow"),
        limits=Limits(max_upload_mb=0.001, idle_seconds=30),
    )
    proxy = start_proxy(cfg, [sock := listener()], check=resolve)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    answers = []
    try:
        for number in range(10):
            name = f"{number}{'a' * 60}.{'b' * 60}.{'c' * 60}.exfil.test"
            answers.append(exchange(url, b"CONNECT %s:9 HTTP/1.1\r\n\r\n" % name.encode()))
    finally:
        report = proxy.close({"command": ["test"], "exit_code": 0})
    assert sum(len(name) for name in looked_up) <= 1048  # the budget: 0.001 MB
    assert 3 <= len(looked_up) < 10
    assert all(a.startswith(b"HTTP/1.1 403 ") for a in answers[len(looked_up) :])
    assert b"upload budget" in answers[-1]
    assert report.upload_budget_exhausted


def test_upload_budget_counts_the_connect_sent_to_an_upstream_proxy(tmp_path: Path) -> None:
    """Through an upstream proxy a name is not looked up here: it leaves in the ``CONNECT``
    sent upstream, which is charged; past the budget the tunnel is refused before it goes."""
    from airlock.egress import EgressConfig, start_proxy
    from tests.egress.origin import listener

    async def resolve(host: str, port: int, private_ok: bool) -> str:
        return "127.0.0.1"

    server, _ = _sink()
    port = server.getsockname()[1]
    wildcard = EgressConfig.rules(["*.exfil.test"], "--allow")
    upstream_cfg = config(tmp_path / "upstream", allow=wildcard)
    upstream = start_proxy(upstream_cfg, [upstream_sock := listener()], check=resolve)
    try:
        cfg = config(
            tmp_path,
            allow=wildcard,
            limits=Limits(max_upload_mb=0.001, idle_seconds=30),
            upstream_proxy=f"http://127.0.0.1:{upstream_sock.getsockname()[1]}",
            no_proxy="",
        )
        with running(cfg) as (url, proxy):
            answers = []
            for number in range(10):
                with _connect(url) as sock:  # the answer to the CONNECT, then leave
                    sock.sendall(
                        b"CONNECT %d%s.%s.exfil.test:%d HTTP/1.1\r\n\r\n"
                        % (number, b"a" * 60, b"b" * 60, port)
                    )
                    answers.append(sock.recv(4096))
            report = proxy.close({})
    finally:
        upstream.close({})
        server.close()
    tunnels = [r for r in read_records(upstream_cfg.audit_log) if r["type"] == "tunnel"]  # type: ignore[arg-type]
    # a CONNECT upstream carries its name twice (its line and its Host): about 300 bytes
    assert 1 <= len(tunnels) <= 3
    assert all(a.startswith(b"HTTP/1.1 403 ") for a in answers[len(tunnels) :])
    assert b"upload budget" in answers[-1]
    assert report.upload_budget_exhausted


def _sink() -> tuple[socket.socket, list[int]]:
    """A server on 127.0.0.1 that reads every connection to its end; the bytes each sent."""
    server = socket.create_server(("127.0.0.1", 0))
    received: list[int] = []

    def read(connection: socket.socket) -> None:
        index = len(received)
        received.append(0)
        with connection, contextlib.suppress(OSError):
            connection.settimeout(10)
            while piece := connection.recv(1 << 16):
                received[index] += len(piece)

    def accept() -> None:
        with contextlib.suppress(OSError):
            for _ in range(10):
                connection, _ = server.accept()
                threading.Thread(target=read, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, received


@pytest.mark.parametrize("chained", [False, True], ids=["direct", "through_upstream_proxy"])
def test_upload_budget_cuts_tunnels_already_open(tmp_path: Path, chained: bool) -> None:
    """Three tunnels opened before any byte is spent, each sending 2 MB with a 1 MB budget:
    at most 1 MB leaves in all, every tunnel is cut, its record saying so with the bytes
    that left, and a new tunnel is refused."""
    server, received = _sink()
    port = server.getsockname()[1]
    budget = Limits(max_upload_mb=1, idle_seconds=30)
    with contextlib.ExitStack() as stack:
        upstream_url = None
        if chained:
            upstream_url, _ = stack.enter_context(running(config(tmp_path / "upstream")))
        cfg = config(tmp_path, limits=budget, upstream_proxy=upstream_url, no_proxy="")
        url, proxy = stack.enter_context(running(cfg))
        tunnels = [_connect(url) for _ in range(3)]
        for sock in tunnels:
            sock.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % port)
            assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
        for sock in tunnels:
            with contextlib.suppress(OSError):
                sock.sendall(b"t" * (2 << 20))
        for sock in tunnels:
            with sock, contextlib.suppress(OSError):
                while sock.recv(65536):  # the proxy closes it
                    pass
        with _connect(url) as late:
            late.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\n\r\n" % port)
            refused = late.recv(1000)
        report = proxy.close({})
    server.close()
    assert sum(received) <= 1 << 20
    assert refused.startswith(b"HTTP/1.1 403 ") and b"upload budget of 1 MiB" in refused
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "tunnel"]  # type: ignore[arg-type]
    cut = [r for r in records if r["status"] == 200]
    assert len(cut) == 3
    assert all("upload budget of 1 MiB is used up" in str(r["error"]) for r in cut)
    assert sum(r["bytes_out"] for r in cut) <= 1 << 20
    assert report.upload_budget_exhausted


def test_idle_connections_are_closed(tmp_path: Path) -> None:
    """A client that sends nothing is disconnected after the idle limit."""
    with running(config(tmp_path, limits=Limits(idle_seconds=0.3))) as (url, _):
        sock = _connect(url)
        started = time.monotonic()
        with sock, contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        assert time.monotonic() - started < 5


def test_connections_past_the_limit_get_503(tmp_path: Path) -> None:
    """With two connections open, a third is answered 503 and closed; those turned away are
    counted in the run's record and report (one count, not a record each)."""
    cfg = config(tmp_path, limits=Limits(max_connections=2))
    with running(cfg) as (url, proxy):
        held = [_connect(url), _connect(url)]
        time.sleep(0.2)
        answers = []
        for _ in range(3):
            with _connect(url) as extra:
                answers.append(extra.recv(1000))
        for sock in held:
            sock.close()
        report = proxy.close({})
    assert all(a.startswith(b"HTTP/1.1 503 ") and b"more than 2 connections" in a for a in answers)
    assert report.connections_refused == (("more than 2 connections at once", 3),)
    assert "3 connections refused (503) before any request was read: more than 2" in "\n".join(
        report.lines()
    )
    records = list(read_records(cfg.audit_log))  # type: ignore[arg-type]
    assert [r["type"] for r in records] == ["start", "run"]
    assert records[-1]["connections_refused"] == [
        {"reason": "more than 2 connections at once", "count": 3}
    ]


def test_expect_continue_is_answered_by_the_proxy(site: _Site, tmp_path: Path) -> None:
    """A client waiting for 100 Continue gets it at once, and its body reaches the origin."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (url, _), _connect(url) as sock:
        sock.sendall(
            b"POST http://127.0.0.1:%d/e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Expect: 100-continue\r\nConnection: close\r\n\r\n" % port
        )
        assert sock.recv(100).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        answer = b""
        while piece := sock.recv(65536):
            answer += piece
    assert answer.endswith(b"hello")


def test_chaining_through_an_upstream_proxy(site: _Site, tmp_path: Path) -> None:
    """With --upstream-proxy, plain requests and tunnels go through it; the rules still apply
    first (the loopback origin is allowed explicitly, with the private check relaxed)."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (upstream_url, upstream):
        cfg = config(tmp_path / "front", upstream_proxy=upstream_url)
        with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
            answer = client.get(f"http://127.0.0.1:{port}/chained")
            refused = client.get("http://evil.test/")
        report = upstream.close({})
    assert answer.status_code == 200 and answer.text.startswith("path=/chained")
    assert refused.status_code == 403
    assert report.hosts[0].requests == 1


@pytest.mark.parametrize(
    "target",
    ["127.0.0.1", "0x7f.1", "2130706433", "[::ffff:127.0.0.1]", "169.254.169.254", "localhost"],
)
def test_chaining_still_checks_addresses_and_loopback_names(
    site: _Site, tmp_path: Path, target: str
) -> None:
    """An address (any spelling) or a loopback name is checked before it goes to the upstream
    proxy, which would otherwise reach it for the sandbox: refused without the relaxed
    check, and the upstream proxy sees nothing (only other names are its to resolve)."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (upstream_url, upstream):
        cfg = config(
            tmp_path / "front",
            upstream_proxy=upstream_url,
            allow_private=False,
            allow=(),
            allow_all=True,
        )
        with running(cfg) as (url, _), _connect(url) as sock:
            sock.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (target.encode(), port))
            answer = sock.recv(1000)
        report = upstream.close({})
    assert answer.startswith(b"HTTP/1.1 403 "), answer
    assert report.hosts == ()


def test_chaining_checks_the_names_this_machine_gives_itself(site: _Site, tmp_path: Path) -> None:
    """This machine's own host name (in /etc/hosts, often a loopback address) is checked
    before it goes to the upstream proxy, which on this machine would resolve it the same
    way: it never reaches the upstream proxy (refused as loopback or private, or as a name
    with no address)."""
    hostname = socket.gethostname()
    port = site.server_address[1]
    with running(config(tmp_path)) as (upstream_url, upstream):
        cfg = config(
            tmp_path / "front",
            upstream_proxy=upstream_url,
            allow_private=False,
            allow=(),
            allow_all=True,
        )
        with running(cfg) as (url, _), _connect(url) as sock:
            sock.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: x\r\n\r\n" % (hostname.encode(), port))
            answer = sock.recv(1000)
        report = upstream.close({})
    assert answer.startswith((b"HTTP/1.1 403 ", b"HTTP/1.1 502 ")), answer
    assert report.hosts == ()


def test_local_names_reads_the_hosts_file(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost Intranet.Box. # a comment names-nothing\n::1 ip6-x\n")
    names = local_names.__wrapped__(str(hosts))
    assert {"localhost", "intranet.box", "ip6-x", socket.gethostname().lower()} <= names
    assert "names-nothing" not in names and "comment" not in names


def test_no_proxy_hosts_bypass_the_upstream_proxy(site: _Site, tmp_path: Path) -> None:
    """A host in airlock's NO_PROXY is reached directly (request and tunnel), past the upstream
    proxy, which sees nothing; the rules and the address check still apply to it."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (upstream_url, upstream):
        cfg = config(
            tmp_path / "front", upstream_proxy=upstream_url, no_proxy="other.test,127.0.0.1"
        )
        with running(cfg) as (url, front):
            with httpx.Client(proxy=url) as client:
                answer = client.get(f"http://127.0.0.1:{port}/direct")
                refused = client.get("http://evil.test/")
            with _connect(url) as sock:
                sock.sendall(b"CONNECT 127.0.0.1:%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)
                assert sock.recv(100).startswith(b"HTTP/1.1 200 ")
                sock.sendall(
                    b"GET /tunnelled HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                )
                tunnelled = b""
                while piece := sock.recv(65536):
                    tunnelled += piece
            front_report = front.close({})
        report = upstream.close({})
    assert answer.status_code == 200 and answer.text.startswith("path=/direct")
    assert b"path=/tunnelled" in tunnelled
    assert refused.status_code == 403
    assert report.hosts == ()
    assert [path for path, _ in site.seen] == ["/direct", "/tunnelled"]
    assert front_report.hosts[0].connections == 2


def test_hosts_not_in_no_proxy_still_go_through_the_upstream_proxy(
    site: _Site, tmp_path: Path
) -> None:
    """NO_PROXY naming other hosts changes nothing for this one: the upstream proxy carries it."""
    port = site.server_address[1]
    with running(config(tmp_path)) as (upstream_url, upstream):
        cfg = config(tmp_path / "front", upstream_proxy=upstream_url, no_proxy=".example.com")
        with running(cfg) as (url, _), httpx.Client(proxy=url) as client:
            answer = client.get(f"http://127.0.0.1:{port}/chained")
        report = upstream.close({})
    assert answer.status_code == 200
    assert report.hosts[0].requests == 1


def test_a_request_head_sent_a_byte_at_a_time_gets_408(site: _Site, tmp_path: Path) -> None:
    """A client that sends its request head a byte now and then, never idle for long, is
    answered 408 once the head has taken longer than its limit, and the connection closed;
    the record says why. A head that comes in time is served."""
    cfg = config(tmp_path, limits=Limits(idle_seconds=30, head_seconds=0.5))
    port = site.server_address[1]
    request = b"GET http://127.0.0.1:%d/slow HTTP/1.1\r\nX-Pad: %s\r\n\r\n" % (port, b"a" * 40)
    with running(cfg) as (url, _):
        with _connect(url) as sock:
            sock.sendall(b"GET http://127.0.0.1:%d/quick HTTP/1.1\r\n\r\n" % port)
            assert sock.recv(1000).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        answer = b""
        with _connect(url) as sock:
            with contextlib.suppress(OSError):
                for byte in request[:-4]:  # 10 s at most
                    sock.sendall(bytes([byte]))
                    time.sleep(0.1)
                    if time.monotonic() - started > 10:
                        break
            with contextlib.suppress(OSError):
                while piece := sock.recv(1000):
                    answer += piece
        held = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert held < 5
    records = [r for r in read_records(cfg.audit_log) if r["type"] == "request"]  # type: ignore[arg-type]
    assert [r["status"] for r in records] == [200, 408]
    assert "not whole within 0.5 s" in records[1]["reason"]
