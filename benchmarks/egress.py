"""Egress proxy: airlock's proxy next to direct, squid, tinyproxy and srt, in one run.

Every proxy runs in its own process on 127.0.0.1 and talks to the same origin (a small
uvloop HTTP/1.1 server in its own process, plain and TLS). The load generators are the same
for every row: ``wrk`` (from apt) for requests per second, a small asyncio client for
CONNECT+TLS tunnels, ``curl`` for bulk transfer.

Rows (``ROWS``) are ``Row(name, proxy_url)``: ``direct`` has no proxy. Adding a row (e.g.
``airlock run`` from inside the sandbox) is one more ``Row`` and, if it needs one, a start-up
function in ``PEERS``. Measures, per row:

* ``ka req/s``: wrk, keep-alive, ``--connections`` connections, ``--seconds``;
* ``new req/s``: wrk with ``Connection: close`` (a new connection per request);
* ``tunnels/s``: CONNECT, TLS handshake, one request, close; ``cpu ms/tunnel``: the proxy
  process's CPU time over the tunnels (from /proc);
* ``+ms/tunnel``: the median time of one tunnel (sequential) minus direct's;
* ``plain MB/s``, ``tunnel MB/s``: curl downloading ``--bulk-mb`` through the proxy;
* airlock with its audit log on and off (two rows), and after the table the log's cost
  measured alternating the two, on keep-alive requests and on new connections
  (``--audit-rounds``, ``--audit-seconds``);
* peak memory: the proxy's peak RSS (VmHWM) after a 10 MB body, then after a 1 GB body
  uploaded and downloaded through it (``--memory-mb`` to change the size).

Beside the table, the same download through a forwarder that copies in the kernel
(``benchmarks/relay_floor.py``: no proxy, no parsing): the most any relay reaches here, for
the ``plain MB/s`` column's goal against direct.

The origin and the helpers that start processes are shared with ``egress_inspect.py``
(``benchmarks/origin.py``), whose rows for inspected traffic (requests/s, added latency, bulk
MB/s with ``--secrets report``, next to mitmproxy doing the same interception) follow the
table (``--inspect-bulk-mb``, ``--mitmdump``; 0 skips them). The sandbox's start-up, from
inside (``airlock run -- true`` vs bare bubblewrap vs ``srt -- true``), comes last
(``benchmarks/sandbox_startup.py``, ``--startup-runs``, ``--srt``).

    .venv/bin/python benchmarks/egress.py                 # everything (about 3 minutes)
    .venv/bin/python benchmarks/egress.py --seconds 3 --skip-peers   # airlock and direct only
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import relay_floor
from origin import CHUNK, certificates, free_port, origin, process

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# airlock's proxy (run as a subprocess: --serve-airlock)


def serve_airlock(port: int, audit_log: str) -> None:
    """The airlock proxy in this process (a subprocess of the benchmark)."""
    from airlock.egress import EgressConfig, Limits, start_proxy

    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(4096)
    config = EgressConfig(
        allow=EgressConfig.rules(["127.0.0.1", "localhost"], "--allow"),
        allow_private=True,
        audit_log=None if audit_log == "off" else Path(audit_log),
        heads_file=None if audit_log == "off" else Path(audit_log + ".heads"),
        limits=Limits(max_connections=10_000),
    )
    running = start_proxy(config, [sock])
    print("ready", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    running.close({"command": ["benchmark"], "exit_code": 0})


# ---------------------------------------------------------------------------------------------
# Peers


@dataclass
class Row:
    name: str
    proxy: str | None
    """``http://127.0.0.1:PORT`` of the proxy, ``None`` for direct."""
    pid: int | None = None
    """The proxy's process, for its CPU time and memory."""
    auth: str | None = None
    """A ``Proxy-Authorization`` value, when the proxy wants one (srt's does)."""
    results: dict[str, float | str] = field(default_factory=dict)


def start_airlock(
    temp: Path, audit: bool
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    port = free_port()
    log = str(temp / f"audit-{port}.jsonl") if audit else "off"
    command = [sys.executable, str(Path(__file__)), "--serve-airlock", str(port), "--audit", log]
    return _with_port(process(command, port), port)


def start_squid(temp: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    port = free_port()
    folder = temp / f"squid-{port}"
    folder.mkdir()
    folder.chmod(0o777)
    conf = folder / "squid.conf"
    conf.write_text(
        f"http_port 127.0.0.1:{port}\n"
        "http_access allow all\n"
        "cache deny all\n"
        "access_log none\n"
        f"cache_log {folder}/cache.log\n"
        f"pid_filename {folder}/squid.pid\n"
        f"coredump_dir {folder}\n"
        "shutdown_lifetime 1 seconds\n"
        "max_filedescriptors 16384\n"
    )
    return _with_port(process(["squid", "-N", "-f", str(conf)], port), port)


def start_tinyproxy(temp: Path) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    port = free_port()
    conf = temp / f"tinyproxy-{port}.conf"
    user = "User nobody\nGroup nogroup\n" if os.geteuid() == 0 else ""
    conf.write_text(
        f"Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 1024\nLogLevel Critical\n{user}"
    )
    return _with_port(process(["tinyproxy", "-d", "-c", str(conf)], port), port)


@contextlib.contextmanager
def _with_port(
    inner: contextlib.AbstractContextManager[subprocess.Popen[bytes]], port: int
) -> Iterator[subprocess.Popen[bytes]]:
    with inner as child:
        child.port = port  # type: ignore[attr-defined]
        yield child


# ---------------------------------------------------------------------------------------------
# Measures


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU of ``pid`` and its threads, in seconds (0 without a process)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int | None) -> float:
    if pid is None:
        return 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def wrk(
    row: Row, origin_port: int, seconds: float, connections: int, close: bool, temp: Path
) -> float:
    """Requests per second wrk reaches through ``row``'s proxy (or directly)."""
    script = temp / f"wrk-{row.name}-{close}.lua"
    header = 'wrk.headers["Connection"] = "close"\n' if close else ""
    if row.proxy is None:
        target = f"http://127.0.0.1:{origin_port}/"
        script.write_text(header)
    else:
        host, port = _address(row.proxy)  # type: ignore[misc]
        target = f"http://{host}:{port}/"
        if row.auth:
            header += f'wrk.headers["Proxy-Authorization"] = "{row.auth}"\n'
        script.write_text(
            header
            + f'wrk.headers["Host"] = "127.0.0.1:{origin_port}"\n'
            + f'request = function() return wrk.format(nil, "http://127.0.0.1:{origin_port}/") end\n'
        )
    done = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", str(script), target],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    )
    for line in done.stdout.splitlines():
        if line.startswith("Requests/sec:"):
            errors = [x for x in done.stdout.splitlines() if "Non-2xx" in x or "Socket errors" in x]
            if errors:
                row.results.setdefault("notes", "")
                row.results["notes"] = f"{row.results['notes']} {' '.join(errors)}".strip()
            return float(line.split()[1])
    raise RuntimeError(done.stdout + done.stderr)


async def _one_tunnel(
    proxy: tuple[str, int] | None,
    origin: tuple[str, int],
    context: ssl.SSLContext,
    auth: str | None = None,
) -> None:
    if proxy is None:
        reader, writer = await asyncio.open_connection(
            *origin, ssl=context, server_hostname="localhost"
        )
    else:
        reader, writer = await asyncio.open_connection(*proxy)
        authority = f"{origin[0]}:{origin[1]}".encode()
        extra = f"Proxy-Authorization: {auth}\r\n".encode() if auth else b""
        writer.write(b"CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s\r\n" % (authority, authority, extra))
        answer = await reader.readuntil(b"\r\n\r\n")
        if not answer.startswith(b"HTTP/1.1 200") and not answer.startswith(b"HTTP/1.0 200"):
            raise RuntimeError(answer[:100])
        await writer.start_tls(context, server_hostname="localhost")
    writer.write(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    await writer.drain()
    await reader.read()
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()


def tunnels(
    row: Row, tls_port: int, context: ssl.SSLContext, seconds: float, concurrency: int
) -> tuple[float, float]:
    """(tunnels per second, proxy CPU ms per tunnel) with ``concurrency`` clients."""
    proxy = _address(row.proxy)

    async def run() -> int:
        count = 0
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < deadline:
                await _one_tunnel(proxy, ("127.0.0.1", tls_port), context, row.auth)
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return count

    import uvloop

    before = cpu_seconds(row.pid)
    started = time.monotonic()
    count = uvloop.run(run())
    elapsed = time.monotonic() - started
    cpu = cpu_seconds(row.pid) - before
    return count / elapsed, (cpu * 1000 / count if row.pid else 0.0)


def tunnel_latency(row: Row, tls_port: int, context: ssl.SSLContext, count: int) -> float:
    """The median milliseconds of one tunnel (CONNECT, TLS, one request), one at a time."""
    proxy = _address(row.proxy)

    async def run() -> list[float]:
        times = []
        for _ in range(count):
            started = time.perf_counter()
            await _one_tunnel(proxy, ("127.0.0.1", tls_port), context, row.auth)
            times.append((time.perf_counter() - started) * 1000)
        return times

    import uvloop

    return statistics.median(uvloop.run(run()))


def bulk(row: Row, port: int, tls_port: int, megabytes: int, tunnel: bool) -> float:
    """MB/s of one download of ``megabytes`` with curl (through a CONNECT tunnel if asked)."""
    size = megabytes * CHUNK
    if tunnel:
        url = f"https://localhost:{tls_port}/bulk?n={size}"
    else:
        url = f"http://127.0.0.1:{port}/bulk?n={size}"
    command = ["curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{size_download}", url]
    if row.proxy is not None:
        command += ["-x", row.proxy, "--noproxy", ""]
        if tunnel:
            command.append("--proxytunnel")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
    elapsed = time.perf_counter() - started
    if int(done.stdout) != size:
        raise RuntimeError(f"{row.name}: got {done.stdout} bytes of {size}")
    return megabytes / elapsed


def memory(row: Row, port: int, megabytes: int) -> float:
    """The proxy's peak RSS (MB) after uploading and downloading ``megabytes`` through it."""
    size = megabytes * CHUNK
    base = ["curl", "-sS", "-o", "/dev/null", "-x", str(row.proxy), "--noproxy", ""]
    subprocess.run([*base, f"http://127.0.0.1:{port}/bulk?n={size}"], check=True, timeout=900)
    upload = subprocess.Popen(["head", "-c", str(size), "/dev/zero"], stdout=subprocess.PIPE)
    subprocess.run(
        [*base, "-T", "-", "-H", "Transfer-Encoding: chunked", f"http://127.0.0.1:{port}/upload"],
        stdin=upload.stdout,
        check=True,
        timeout=900,
    )
    upload.wait()
    return peak_rss_mb(row.pid)


def _address(url: str | None) -> tuple[str, int] | None:
    if url is None:
        return None
    parts = urlsplit(url)
    return str(parts.hostname), int(parts.port or 80)


def _basic_auth(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.username is None:
        return None
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


# ---------------------------------------------------------------------------------------------


PEERS: dict[str, Callable[[Path], contextlib.AbstractContextManager[subprocess.Popen[bytes]]]] = {
    "airlock": lambda temp: start_airlock(temp, audit=True),
    "airlock (audit off)": lambda temp: start_airlock(temp, audit=False),
    "squid": start_squid,
    "tinyproxy": start_tinyproxy,
}
"""How each proxy row is started; each yields a process with a ``.port``."""


def measure(
    row: Row, args: argparse.Namespace, ports: tuple[int, int], temp: Path, context: ssl.SSLContext
) -> None:
    port, tls_port = ports
    results = row.results
    before = cpu_seconds(row.pid)
    results["ka req/s"] = wrk(row, port, args.seconds, args.connections, False, temp)
    if row.pid:
        spent = cpu_seconds(row.pid) - before
        results["ka cpu µs/req"] = spent * 1e6 / (float(results["ka req/s"]) * args.seconds)
    before = cpu_seconds(row.pid)
    results["new req/s"] = wrk(row, port, args.seconds, args.connections, True, temp)
    if row.pid:
        spent = cpu_seconds(row.pid) - before
        results["new cpu µs/req"] = spent * 1e6 / (float(results["new req/s"]) * args.seconds)
    rate, cpu = tunnels(row, tls_port, context, args.seconds, args.tunnel_clients)
    results["tunnels/s"] = rate
    results["cpu ms/tunnel"] = cpu
    results["ms/tunnel"] = tunnel_latency(row, tls_port, context, args.latency_count)
    results["plain MB/s"] = bulk(row, port, tls_port, args.bulk_mb, tunnel=False)
    results["tunnel MB/s"] = bulk(row, port, tls_port, args.bulk_mb, tunnel=True)
    if row.proxy is not None and row.name.startswith("airlock") and args.memory_mb:
        results["rss MB 10MB"] = memory(row, port, 10)
        results[f"rss MB {args.memory_mb}MB"] = memory(row, port, args.memory_mb)


COLUMNS = (
    "ka req/s",
    "ka cpu µs/req",
    "new req/s",
    "new cpu µs/req",
    "tunnels/s",
    "cpu ms/tunnel",
    "ms/tunnel",
    "+ms/tunnel",
    "plain MB/s",
    "tunnel MB/s",
)


def print_table(rows: list[Row], args: argparse.Namespace) -> None:
    direct = rows[0].results
    for row in rows:
        if "ms/tunnel" in row.results:
            row.results["+ms/tunnel"] = float(row.results["ms/tunnel"]) - float(direct["ms/tunnel"])
    print(f"| row | {' | '.join(COLUMNS)} |")
    print(f"| --- |{' --- |' * len(COLUMNS)}")
    for row in rows:
        cells = []
        for column in COLUMNS:
            value = row.results.get(column)
            cells.append(
                "-"
                if value is None
                else f"{value:,.1f}"
                if isinstance(value, float)
                else str(value)
            )
        print(f"| {row.name} | {' | '.join(cells)} |")
    for row in rows:
        extra = {k: v for k, v in row.results.items() if k.startswith("rss") or k == "notes"}
        if extra:
            print(f"{row.name}: {extra}")
    by_name = {row.name: row.results for row in rows}
    print()
    for peer in ("squid", "tinyproxy", "srt"):
        if peer in by_name and "airlock" in by_name:
            ours, theirs = by_name["airlock"], by_name[peer]
            ratios = [
                f"{column} {float(ours[column]) / float(theirs[column]):.2f}x"
                for column in ("ka req/s", "new req/s", "tunnels/s")
                if column in ours and column in theirs and float(theirs[column])
            ]
            print(f"airlock vs {peer}: {', '.join(ratios)}")
    if "airlock" in by_name:
        ours = by_name["airlock"]
        for column in ("plain MB/s", "tunnel MB/s"):
            print(
                f"airlock {column}: {100 * float(ours[column]) / float(direct[column]):.0f}% of direct"
            )
    if "airlock" in by_name and "airlock (audit off)" in by_name:
        on, off = by_name["airlock"], by_name["airlock (audit off)"]
        for column in ("ka req/s", "new req/s", "tunnels/s"):
            print(
                f"audit log cost, {column}: {100 * (1 - float(on[column]) / float(off[column])):+.1f}%"
            )


def audit_cost(args: argparse.Namespace, port: int, temp: Path) -> list[str]:
    """The audit log's cost on keep-alive requests and on new connections: the proxy with its
    log on and with it off, both running, measured in turn ``--audit-rounds`` times (``wrk``,
    ``--audit-seconds`` a phase; keep-alive, then ``Connection: close``, in each round). Rows
    measured minutes apart in the table differ by more than the log's cost on this machine;
    alternating, the pairs see the same load. Returns the lines to print: for each load the
    median of each side and the spread of the per-round differences."""
    if args.audit_rounds <= 0:
        return []
    loads = {False: "keep-alive", True: "new connections"}
    rates: dict[tuple[bool, bool], list[float]] = {}
    cpus: dict[tuple[bool, bool], list[float]] = {}
    with start_airlock(temp, audit=True) as on, start_airlock(temp, audit=False) as off:
        proxies = {True: on, False: off}
        for round_ in range(args.audit_rounds):
            order = (True, False) if round_ % 2 == 0 else (False, True)
            for close in loads:
                for audit in order:
                    child = proxies[audit]
                    row = Row("audit", f"http://127.0.0.1:{child.port}", child.pid)  # type: ignore[attr-defined]
                    before = cpu_seconds(child.pid)
                    rate = wrk(row, port, args.audit_seconds, args.connections, close, temp)
                    spent = cpu_seconds(child.pid) - before
                    rates.setdefault((close, audit), []).append(rate)
                    cpus.setdefault((close, audit), []).append(
                        spent * 1e6 / (rate * args.audit_seconds)
                    )
    lines = []
    for close, load in loads.items():
        on_rates, off_rates = rates[close, True], rates[close, False]
        costs = [100 * (1 - a / b) for a, b in zip(on_rates, off_rates, strict=True)]
        extra = [a / b - 1 for a, b in zip(cpus[close, True], cpus[close, False], strict=True)]
        lines.append(
            f"audit log cost, {load}, {args.audit_rounds} alternating rounds of "
            f"{args.audit_seconds:g} s (wrk -c{args.connections}):"
        )
        for audit, name in ((True, "on"), (False, "off")):
            got, per_request = rates[close, audit], cpus[close, audit]
            lines.append(
                f"  log {name}: {statistics.median(got):,.0f} req/s "
                f"({min(got):,.0f}-{max(got):,.0f}), "
                f"{statistics.median(per_request):.1f} µs of proxy CPU a request "
                f"({min(per_request):.1f}-{max(per_request):.1f})"
            )
        low, high = median_interval(costs)
        cpu_low, cpu_high = median_interval([100 * cost for cost in extra])
        lines.append(
            f"  cost: {statistics.median(costs):+.1f}% of the rate (rounds {min(costs):+.1f}% "
            f"to {max(costs):+.1f}%, the median's 95% interval {low:+.1f}% to {high:+.1f}%), "
            f"{100 * statistics.median(extra):+.1f}% CPU a request (rounds "
            f"{100 * min(extra):+.1f}% to {100 * max(extra):+.1f}%, interval {cpu_low:+.1f}% "
            f"to {cpu_high:+.1f}%); goal at most 5%"
        )
    return lines


def median_interval(values: list[float], draws: int = 2000) -> tuple[float, float]:
    """A 95% interval of the median of ``values`` (bootstrap: the median of ``draws``
    resamples with replacement, their 2.5th and 97.5th percentiles; a fixed seed, so a run
    prints the same interval for the same rounds). Rounds spread more than the log costs on
    a shared machine: the interval says whether the rounds measured show the goal met, missed,
    or neither."""
    if len(values) < 2:
        return values[0], values[0]
    pick = random.Random(0)
    medians = sorted(statistics.median(pick.choices(values, k=len(values))) for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


SRT_SETTINGS = {
    "network": {"allowedDomains": ["127.0.0.1", "localhost"], "deniedDomains": []},
    "filesystem": {"denyRead": [], "allowWrite": ["/tmp"], "denyWrite": []},
}


def measure_inside_srt(args: argparse.Namespace) -> None:
    """Run in srt's sandbox: measure through the proxy srt gives it; print the results as JSON."""
    port, tls_port = args.inside_srt
    proxy = os.environ["HTTP_PROXY"]
    row = Row("srt", proxy, auth=_basic_auth(proxy))
    context = ssl.create_default_context(cafile=str(args.ca_file))
    with tempfile.TemporaryDirectory(prefix="egress-srt-") as temp:
        measure(row, args, (port, tls_port), Path(temp), context)
    print(json.dumps(row.results))


def measure_srt(
    args: argparse.Namespace, srt: str, ports: tuple[int, int], ca_file: Path, temp: Path
) -> Row:
    """The srt row: this script again, inside ``srt``, measuring through srt's own proxy."""
    settings = temp / "srt-settings.json"
    settings.write_text(json.dumps(SRT_SETTINGS))
    command = [
        srt, "--settings", str(settings), "--",
        sys.executable, str(Path(__file__)), "--inside-srt", str(ports[0]), str(ports[1]),
        "--ca-file", str(ca_file), "--seconds", str(args.seconds),
        "--connections", str(args.connections), "--tunnel-clients", str(args.tunnel_clients),
        "--latency-count", str(args.latency_count), "--bulk-mb", str(args.bulk_mb),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    row = Row("srt", "srt's proxy (from inside its sandbox)")
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        row.results["notes"] = f"srt failed: {done.stderr.strip()[-300:]}"
        return row
    row.results.update(json.loads(lines[-1]))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="per throughput measure")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--tunnel-clients", type=int, default=8)
    parser.add_argument("--latency-count", type=int, default=100)
    parser.add_argument("--bulk-mb", type=int, default=500)
    parser.add_argument("--memory-mb", type=int, default=1024)
    parser.add_argument("--skip-peers", action="store_true", help="airlock and direct only")
    parser.add_argument(
        "--audit-rounds",
        type=int,
        default=6,
        help="alternating rounds of the audit log's cost (log on, log off); 0 skips",
    )
    parser.add_argument("--audit-seconds", type=int, default=3, help="wrk seconds a phase")
    parser.add_argument(
        "--startup-runs",
        type=int,
        default=20,
        help="sandbox start-up rows from inside (airlock run, bare bwrap, srt): runs each; 0 skips",
    )
    parser.add_argument("--srt", help="the srt program (default: on PATH, or benchmarks/.peers)")
    parser.add_argument(
        "--inspect-bulk-mb",
        type=int,
        default=100,
        help="the inspected traffic's rows (benchmarks/egress_inspect.py) with this bulk; 0 skips",
    )
    parser.add_argument("--mitmdump", help="mitmproxy's mitmdump for the inspected rows' peer")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="rows to run (repeatable); audit: the log's cost alone",
    )
    parser.add_argument("--ca-file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--serve-airlock", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--inside-srt", type=int, nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--audit", default="off", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_airlock:
        serve_airlock(args.serve_airlock, args.audit)
        return 0
    if args.inside_srt:
        measure_inside_srt(args)
        return 0
    for tool in ("wrk", "curl"):
        if shutil.which(tool) is None:
            print(f"{tool} is needed (apt install {tool})", file=sys.stderr)
            return 2
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores at start")
    with tempfile.TemporaryDirectory(prefix="egress-bench-") as name:
        temp = Path(name)
        temp.chmod(0o755)
        ca_file, pem = certificates(temp)
        context = ssl.create_default_context(cafile=str(ca_file))
        with origin(pem) as (port, tls_port):
            rows = [Row("direct", None)]
            measure(rows[0], args, (port, tls_port), temp, context)
            with relay_floor.forwarder(port) as relay:
                floor = relay_floor.download(relay, args.bulk_mb)
            names = ["airlock", "airlock (audit off)"]
            if not args.skip_peers:
                names += [peer for peer in ("squid", "tinyproxy") if shutil.which(peer)]
            if args.only:
                names = [name for name in names if name in args.only]
            for peer in names:
                with PEERS[peer](temp) as child:
                    row = Row(peer, f"http://127.0.0.1:{child.port}", child.pid)  # type: ignore[attr-defined]
                    rows.append(row)
                    measure(row, args, (port, tls_port), temp, context)
                    print(f"  measured {peer}", file=sys.stderr)
            import sandbox_startup  # beside this script

            srt = sandbox_startup.find_srt(args.srt)
            if srt and not args.skip_peers and (not args.only or "srt" in args.only):
                rows.append(measure_srt(args, srt, (port, tls_port), ca_file, temp))
            audit_lines = (
                audit_cost(args, port, temp) if not args.only or "audit" in args.only else []
            )
    print(f"load average {os.getloadavg()[0]:.2f} at end")
    print_table(rows, args)
    print(
        f"kernel-copy forwarder (no proxy, the ceiling of any relay here, "
        f"benchmarks/relay_floor.py) plain MB/s: {floor:,.1f}, "
        f"{100 * floor / float(rows[0].results['plain MB/s']):.0f}% of direct"
    )
    if audit_lines:
        print()
        print("\n".join(audit_lines))
    if args.inspect_bulk_mb:
        print(flush=True)
        inspect_rows = [sys.executable, str(Path(__file__).with_name("egress_inspect.py"))]
        inspect_rows += ["--bulk-mb", str(args.inspect_bulk_mb)]
        inspect_rows += ["--mitmdump", args.mitmdump] if args.mitmdump else []
        subprocess.run(inspect_rows, check=True)
    if args.startup_runs:
        import sandbox_startup  # beside this script

        print()
        sandbox_startup.run(args.startup_runs, args.srt)
    return 0


if __name__ == "__main__":
    sys.exit(main())
