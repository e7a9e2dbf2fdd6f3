"""Benchmark of the web fetch guard: cached decisions, and the domain-safety service at 1 M domains.

Prints, from one run:
  1. the cached decision time: a preflight answered from the cache, and rules + cached preflight;
  2. lookup time in process: ``BlockList.blocks`` against a plain Python ``set`` of the domains
     (the limit), and the memory of each for the generated blocklist;
  3. the service under load on loopback: ``airlock serve`` (one worker process) against the same
     endpoint answering from a plain ``set`` (same framework, same server), lookups/s, p50 and p99,
     and each process's resident memory.

Usage: python benchmarks/webfetch.py [--domains 1000000] [--requests 20000] [--connections 16]
Bounded: every load phase stops at --requests or --seconds, whichever comes first.
Only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from airlock.collector import BlockList
from airlock.policy.model import Origin, Permissions, Rule, Source
from airlock.webfetch import PreflightClient
from airlock.webfetch.fetch import GuardedFetcher

TLDS = ("com", "net", "org", "io", "info", "xyz", "ru", "de", "co.uk", "top")
WORDS = "abcdefghijklmnopqrstuvwxyz0123456789"


def generate(count: int, seed: int = 7) -> Iterator[str]:
    """``count`` distinct-looking domains, deterministic."""
    rng = random.Random(seed)
    for _ in range(count):
        name = "".join(rng.choices(WORDS, k=rng.randint(6, 14)))
        yield f"{name}.{rng.choice(TLDS)}"


def lookups(listed: list[str], count: int, seed: int = 11) -> list[str]:
    """Half subdomains of listed domains (blocked), half unknown hosts (allowed)."""
    rng = random.Random(seed)
    hosts = []
    for i in range(count):
        if i % 2:
            hosts.append(f"www.{rng.choice(listed)}")
        else:
            hosts.append(f"cdn.{''.join(rng.choices(WORDS, k=10))}.com")
    return hosts


def set_blocks(table: set[str], host: str) -> bool:
    """The same question against a set: the host or a parent listed."""
    labels = host.split(".")
    return any(".".join(labels[i:]) in table for i in range(len(labels)))


def per_call(fn: object, items: list[str], seconds: float = 2.0) -> float:
    """Microseconds per call of ``fn(item)``, over at most ``seconds``."""
    call = fn  # type: ignore[assignment]
    done = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for item in items:
            call(item)  # type: ignore[operator]
        done += len(items)
    return (time.perf_counter() - start) / done * 1e6


def cached_decisions() -> None:
    preflight = PreflightClient("http://127.0.0.1:9")  # never contacted: every host is cached
    hosts = [f"h{i}.example.com" for i in range(1000)]
    for host in hosts:
        preflight.cache.remember(host, 0.0)
    cached = per_call(lambda h: preflight.check(h, now=1.0), hosts)
    origin = Origin(Source.PROJECT, "/p/.claude/settings.json")
    permissions = Permissions(
        allow=(Rule("WebFetch(domain:*.example.com)", origin),),
        deny=(
            Rule("WebFetch(domain:evil.test)", origin),
            Rule("WebFetch(domain:*.bad.test)", origin),
        ),
    )
    import httpx

    from airlock.destinations import table_resolver

    public = table_resolver({host: ["93.184.215.14"] for host in hosts})  # no DNS is asked
    fetcher = GuardedFetcher(
        permissions=permissions,
        preflight=preflight,
        client=httpx.Client(),
        clock=lambda: 1.0,
        resolver=public,
    )
    urls = [httpx.URL(f"https://{host}/page") for host in hosts]
    admitted = per_call(fetcher.admit, urls)  # type: ignore[arg-type]
    proxied = GuardedFetcher(
        permissions=permissions,
        preflight=preflight,
        client=httpx.Client(),
        clock=lambda: 1.0,
        proxy_for=lambda url: "http://proxy.test:3128",  # the proxy resolves: no lookup here
    )
    without = per_call(proxied.admit, urls)  # type: ignore[arg-type]
    print("== cached decision (goal: under 10 µs)")
    print(f"  preflight answered from the cache          {cached:8.2f} µs")
    print(
        f"  rules (3) + cached preflight (admit)       {without:8.2f} µs  (via a proxy: no lookup)"
    )
    print(f"  rules (3) + destination + cached preflight {admitted:8.2f} µs  (lookup in a worker)")


def read_set(path: Path) -> set[str]:
    """The limit's load: every token of the file in a set, hosts addresses dropped, no checks."""
    return set(path.read_text().lower().split()) - {"0.0.0.0", "127.0.0.1", "::1", "#"}  # noqa: S104


def best_time(job: Any, runs: int) -> tuple[float, Any]:
    """The shortest of ``runs`` runs of ``job()`` (a shared machine), and the last result."""
    times = []
    result = None
    for _ in range(runs):
        result = None  # let the previous result go first
        gc.collect()
        start = time.perf_counter()
        result = job()
        times.append(time.perf_counter() - start)
    return min(times), result


def in_process(path: Path, count: int, runs: int) -> list[str]:
    table_seconds, table = best_time(lambda: BlockList.from_file(path), runs)
    set_seconds, plain = best_time(lambda: read_set(path), runs)
    plain.discard("generated")
    # What each keeps: the table's two buffers; the set's hash table and every string in it.
    table_bytes = table.nbytes()
    set_bytes = sys.getsizeof(plain) + sum(sys.getsizeof(domain) for domain in plain)
    hosts = lookups(sorted(plain)[:: max(1, len(plain) // 5000)], 10_000)
    ours = per_call(table.blocks, hosts)
    limit = per_call(lambda h: set_blocks(plain, h), hosts)
    assert [table.blocks(h) for h in hosts[:200]] == [set_blocks(plain, h) for h in hosts[:200]]
    print(f"== blocklist of {count:,} domains, in process")
    print(f"  {'':28}{'airlock BlockList':>20}{'Python set (limit)':>20}")
    print(f"  {'memory (retained)':28}{table_bytes / 2**20:17.1f} MB{set_bytes / 2**20:17.1f} MB")
    print(
        f"  {'load from file (best of ' + str(runs) + ')':28}{table_seconds:18.2f} s{set_seconds:18.2f} s"
    )
    print(f"  {'lookup (host + parents)':28}{ours:17.2f} µs{limit:17.2f} µs")
    print(f"  memory ratio BlockList / set: {table_bytes / set_bytes:.2f} (goal: at most 2)")
    return hosts


class SetTable:
    """The limit: the same questions answered from a plain Python ``set`` of the domains."""

    def __init__(self, domains: set[str]) -> None:
        self.domains = domains

    def blocks(self, host: str) -> bool:
        return set_blocks(self.domains, host)

    def hashes_with_prefix(self, prefix: str) -> list[str]:
        raise ValueError("the set table has no hashes")

    def __len__(self) -> int:
        return len(self.domains)


def serve_set(path: Path) -> int:
    """Serve the same app as ``airlock serve``, from a ``SetTable``, the same way."""
    from airlock.collector import create_app, domain_safety_routes
    from airlock.collector.server import listen, make_server

    table = SetTable(read_set(path))
    app = create_app(domain_safety_routes(lambda: table))
    listener = listen("127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{listener.getsockname()[1]}", file=sys.stderr, flush=True)
    make_server(app).run(sockets=[listener])
    return 0


def start(command: list[str]) -> tuple[subprocess.Popen[str], int]:
    begin = time.perf_counter()
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    line = process.stderr.readline()
    STARTED[command[-1] if "--serve-set" in command else "airlock serve"] = (
        time.perf_counter() - begin
    )
    found = re.search(r"127\.0\.0\.1:(\d+)", line)
    if not found:
        process.kill()
        raise RuntimeError(f"server did not start: {line}")
    return process, int(found.group(1))


STARTED: dict[str, float] = {}
"""Seconds from start to listening, by server."""


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def one_connection(
    port: int, hosts: list[str], deadline: float, latencies: list[float]
) -> None:
    for _ in range(50):
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            break
        except OSError:
            await asyncio.sleep(0.1)
    else:
        raise RuntimeError("service did not accept connections")
    try:
        for host in hosts:
            if time.perf_counter() > deadline:
                return
            begin = time.perf_counter()
            writer.write(
                f"GET /api/web/domain_info?domain={host} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
            )
            head = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", head.lower()).group(1))  # type: ignore[union-attr]
            body = await reader.readexactly(length)
            latencies.append(time.perf_counter() - begin)
            assert b"can_fetch" in body
    finally:
        writer.close()


async def load(
    port: int, hosts: list[str], connections: int, seconds: float
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    # warm up
    await one_connection(port, hosts[:200], time.perf_counter() + 10, [])
    shares = [hosts[i::connections] for i in range(connections)]
    begin = time.perf_counter()
    await asyncio.gather(
        *(one_connection(port, share, begin + seconds, latencies) for share in shares)
    )
    return len(latencies) / (time.perf_counter() - begin), latencies


def run_loop(job: Any) -> Any:
    """Run the load generator on uvloop when it is there: the client shares the CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(job)
    return uvloop.run(job)


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    if process.stderr is not None:
        process.stderr.close()


def served(path: Path, hosts: list[str], connections: int, seconds: float, rounds: int) -> None:
    """Both servers up at once; load phases alternate between them; each keeps its best round."""
    commands = {
        "airlock serve": [
            sys.executable,
            "-m",
            "airlock",
            "serve",
            "--blocklist",
            str(path),
            "--data-dir",
            str(path.parent / "data"),
            "--port",
            "0",
        ],
        "same app, plain set (limit)": [sys.executable, __file__, "--serve-set", str(path)],
    }
    running: dict[str, tuple[subprocess.Popen[str], int]] = {}
    best: dict[str, tuple[float, float, float, int, float]] = {}
    try:
        for label, command in commands.items():
            running[label] = start(command)
        for round_ in range(rounds):
            order = list(running) if round_ % 2 == 0 else list(reversed(running))
            for label in order:
                process, port = running[label]
                rate, latencies = run_loop(load(port, hosts, connections, seconds))
                cuts = statistics.quantiles(latencies, n=100)
                row = (rate, cuts[49] * 1e3, cuts[98] * 1e3, len(latencies), rss_mb(process.pid))
                if label not in best or rate > best[label][0]:
                    best[label] = row
    finally:
        for process, _ in running.values():
            stop(process)
    print(
        f"== the service on loopback, one worker process each, {connections} keep-alive "
        f"connections, best of {rounds} alternating rounds"
    )
    print(
        f"  {'':30}{'lookups/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'requests':>10}{'RSS MB':>9}"
        f"{'start s':>9}"
    )
    for label, (rate, p50, p99, n, rss) in best.items():
        started = STARTED.get("airlock serve" if label == "airlock serve" else str(path), 0.0)
        print(f"  {label:30}{rate:11,.0f}{p50:9.2f}{p99:9.2f}{n:10,}{rss:9.1f}{started:9.2f}")
    print("  start s: from launch to listening (interpreter, imports, loading the blocklist)")
    print("  goals: at least 5,000 lookups/s with p99 under 20 ms")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--domains", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=20.0, help="time bound of each load phase")
    parser.add_argument("--rounds", type=int, default=3, help="load phases per server, alternating")
    parser.add_argument("--loads", type=int, default=3, help="file loads timed in process (best)")
    parser.add_argument("--serve-set", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_set:
        return serve_set(args.serve_set)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    cached_decisions()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "blocklist.txt"
        with path.open("w") as handle:
            handle.write("# generated\n")
            for domain in generate(args.domains):
                handle.write(f"0.0.0.0 {domain}\n")
        hosts = in_process(path, args.domains, args.loads)
        rng = random.Random(3)
        hosts = [rng.choice(hosts) for _ in range(args.requests)]
        served(path, hosts, args.connections, args.seconds, args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
