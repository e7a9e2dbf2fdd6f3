"""Inspected traffic (``--inspect``): airlock's proxy next to mitmproxy doing the same interception.

Every server runs in its own process on 127.0.0.1: a TLS origin (``origin.py``, shared with
``egress.py``: uvloop, its own test CA), the airlock proxy (``start_proxy`` with an inspection
config: TLS terminated with the run's CA, flows classified, ``--secrets report``), and
mitmproxy's ``mitmdump`` (TLS terminated with its CA, upstream verified against the origin's
CA). The same ``curl`` load drives every row:

* ``req/s``: ``--requests`` small GETs, ``curl -Z --parallel-max 8`` (keep-alive connections);
* ``ms/req`` and ``+ms``: ``--sequential`` GETs one after another on one connection, the time
  of one, and that minus the direct row's;
* ``up MB/s``: ``curl -T`` of ``--bulk-mb`` to the origin (the upload every byte of which the
  redaction engine scans in airlock's inspected row; ``--upload``: ``lorem``, the default, one
  JSON string of ``lorem ipsum``, or ``code``, this Python's own ``asyncio``, ``email``,
  ``json`` and ``http`` sources as the content of a JSON model request, text like what an agent
  uploads; a 1 MB block either way, repeated), ``down MB/s``: the same size fetched;
  each the best of ``--rounds`` (the run least disturbed by other work on a shared machine);
* ``CPU ms/MB up``: CPU time the proxy's process (every thread) spent per uploaded MB, over
  all the upload rounds: what the proxy costs, whatever else the machine is doing;
* ``all CPU ms/MB``: the same for the proxy, ``curl`` and the origin together. Client, proxy and
  origin share this machine's cores, so once they fill them the upload rate is the cores over
  this figure: the last lines give the goals' ratios from it (``with every core busy``), which
  hold whatever other work slows the MB/s figures down.

Rows: ``direct`` (no proxy), ``airlock tunnel`` (CONNECT, not inspected), ``airlock inspect``,
``inspect scan off`` (the same with the secrets scanner replaced by one that does nothing, to
show what ``--secrets report`` costs), ``mitmproxy``. mitmproxy is looked for in
``--mitmdump`` (default: ``mitmdump`` on PATH, then ``/tmp/mitm-venv/bin/mitmdump``:
``python3 -m venv /tmp/mitm-venv && /tmp/mitm-venv/bin/pip install mitmproxy``, outside the
repository, as its pins conflict with ours).

    .venv/bin/python benchmarks/egress_inspect.py
    .venv/bin/python benchmarks/egress_inspect.py --requests 2000 --bulk-mb 100
    .venv/bin/python benchmarks/egress_inspect.py --bulk-mb 100 --upload code
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from origin import CHUNK, certificates, free_port, origin_process, process

HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# airlock's proxy (a subprocess: --serve-airlock PORT ORIGIN_CA BUNDLE_OUT INSPECT)


class _NoScan:
    """Stands in for the secrets scanner in the ``scan off`` row: what the scan costs."""

    unchecked = ""

    def __init__(self, *args: object) -> None:
        pass

    async def add(self, data: bytes) -> None:
        pass

    async def total(self) -> dict[str, int]:
        return {}


def serve_airlock(port: int, origin_ca: str, bundle_out: str, mode: str) -> None:
    import airlock.egress.inspected
    from airlock.egress import EgressConfig, start_proxy
    from airlock.egress.ca import RunCA, upstream_context, write_bundle
    from airlock.egress.inspect import InspectionConfig
    from airlock.policy import Context, decide

    if mode == "noscan":
        airlock.egress.inspected.BodyCount = _NoScan  # type: ignore[misc,assignment]
    ca = RunCA(now=dt.datetime.now(dt.UTC))
    write_bundle(ca, Path(bundle_out), Path(origin_ca))
    inspection = InspectionConfig(
        hosts=frozenset({"localhost"}),
        ca=ca,
        upstream=upstream_context(Path(origin_ca)),
        decisions=decide(Context()),
    )
    folder = Path(tempfile.mkdtemp(prefix="airlock-bench-"))
    config = EgressConfig(
        allow=EgressConfig.rules(["localhost"], "--allow"),
        allow_private=True,
        audit_log=folder / "audit.jsonl",
        heads_file=folder / "heads.jsonl",
        inspection=inspection if mode != "tunnel" else None,
    )
    sock = socket.create_server(("127.0.0.1", port))
    proxy = start_proxy(config, [sock])
    try:
        while True:
            time.sleep(3600)
    finally:
        proxy.close({"command": ["benchmark"], "exit_code": 0})


# ---------------------------------------------------------------------------------------------
# the driver


def curl(args: list[str], proxy: str | None, cafile: Path, timeout: float) -> float:
    """Seconds ``curl`` takes with these arguments (through ``proxy`` when given)."""
    command = [
        "curl",
        "-sS",
        "--no-progress-meter",
        "--fail",
        "--cacert",
        str(cafile),
        "-o",
        "/dev/null",
    ]
    if proxy:
        command += ["--proxy", proxy]
    started = time.perf_counter()
    subprocess.run(command + args, check=True, timeout=timeout, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def cpu_seconds(pid: int | None) -> float:
    """CPU time (user and system, every thread) process ``pid`` has used; 0 without one."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds() -> float:
    """CPU time the children waited for so far (the ``curl`` runs) have used."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    proxy: str | None,
    cafile: Path,
    port: int,
    args: argparse.Namespace,
    upload: Path,
    origin_pid: int,
    pid: int | None = None,
) -> dict[str, float]:
    """One row: requests/s, ms a request, and the best of ``--rounds`` uploads and downloads
    (the run least disturbed by other work on a shared machine), with the CPU the proxy
    process ``pid`` spent per uploaded MB over all the upload rounds, and that of the proxy,
    ``curl`` and the origin (``origin_pid``) together."""
    base = f"https://localhost:{port}"
    small = f"{base}/small?n=[1-{args.requests}]"
    rps = args.requests / curl(["-Z", "--parallel-max", "8", small], proxy, cafile, 300)
    seq = f"{base}/small?n=[1-{args.sequential}]"
    per = curl([seq], proxy, cafile, 300) / args.sequential * 1000
    before = cpu_seconds(pid)
    others = children_cpu_seconds() + cpu_seconds(origin_pid)
    ups = [
        curl(["-T", str(upload), f"{base}/sink"], proxy, cafile, 300) for _ in range(args.rounds)
    ]
    mb = args.bulk_mb * args.rounds
    cpu = (cpu_seconds(pid) - before) / mb * 1000
    others = (children_cpu_seconds() + cpu_seconds(origin_pid) - others) / mb * 1000
    bulk = f"{base}/bulk?n={args.bulk_mb * CHUNK}"
    downs = [curl([bulk], proxy, cafile, 300) for _ in range(args.rounds)]
    return {
        "req/s": rps,
        "ms/req": per,
        "up MB/s": args.bulk_mb / min(ups),
        "down MB/s": args.bulk_mb / min(downs),
        "CPU ms/MB up": cpu,
        "all CPU ms/MB": cpu + others,
    }


def upload_block(kind: str) -> bytes:
    """The 1 MB block the upload repeats: ``lorem`` (one JSON string of ``lorem ipsum``, the
    cheapest text for the secrets scan) or ``code`` (this Python's ``asyncio``, ``email``,
    ``json`` and ``http`` sources as the content of a JSON model request, as an agent sends
    source code)."""
    if kind == "lorem":
        return (b'{"text": "' + b"lorem ipsum dolor sit amet " * 37000 + b'"}\n')[:CHUNK]
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = [
        path
        for name in ("asyncio", "email", "json", "http")
        for path in sorted((stdlib / name).glob("*.py"))
    ]
    text = "".join(path.read_text(encoding="utf-8", errors="replace") for path in files)
    request = {"model": "m", "max_tokens": 1024, "messages": [{"role": "user", "content": text}]}
    block = json.dumps(request, ensure_ascii=False).encode()[:CHUNK]
    if len(block) < CHUNK:
        raise SystemExit(f"{stdlib}: the asyncio, email, json and http sources are under 1 MB")
    return block


def find_mitmdump(given: str | None) -> str | None:
    for candidate in (given, shutil.which("mitmdump"), "/tmp/mitm-venv/bin/mitmdump"):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--sequential", type=int, default=300)
    parser.add_argument("--bulk-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="bulk transfers per row (best kept)")
    parser.add_argument("--upload", choices=("lorem", "code"), default="lorem")
    parser.add_argument("--mitmdump")
    parser.add_argument("--serve-airlock", nargs=4)
    args = parser.parse_args()
    if args.serve_airlock:
        port, ca, out, inspect = args.serve_airlock
        serve_airlock(int(port), ca, out, inspect)
        return 0
    me = [sys.executable, str(Path(__file__).resolve())]
    load = os.getloadavg()[0]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="egress-inspect-") as temp:
        folder = Path(temp)
        ca_file, pem = certificates(folder)
        upload = folder / "upload.bin"
        with upload.open("wb") as out:
            block = upload_block(args.upload)
            for _ in range(args.bulk_mb):
                out.write(block)
        with origin_process(pem) as (_, origin_port, server):
            results["direct"] = measure(None, ca_file, origin_port, args, upload, server.pid)
            for name, inspect in (
                ("airlock tunnel", "tunnel"),
                ("airlock inspect", "inspect"),
                ("inspect scan off", "noscan"),
            ):
                port = free_port()
                bundle = folder / f"bundle-{inspect}.pem"
                command = [*me, "--serve-airlock", str(port), str(ca_file), str(bundle), inspect]
                with process(
                    command, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                ) as child:
                    results[name] = measure(
                        f"http://127.0.0.1:{port}",
                        bundle,
                        origin_port,
                        args,
                        upload,
                        server.pid,
                        child.pid,
                    )
            mitmdump = find_mitmdump(args.mitmdump)
            if mitmdump:
                port = free_port()
                conf = folder / "mitm"
                conf.mkdir()
                command = [
                    mitmdump, "-q", "--listen-host", "127.0.0.1", "--listen-port", str(port),
                    "--set", f"confdir={conf}", "--set", f"ssl_verify_upstream_trusted_ca={ca_file}",
                    "--set", "connection_strategy=lazy",
                ]  # fmt: skip
                with process(
                    command, port, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
                ) as child:
                    bundle = folder / "mitm-bundle.pem"
                    bundle.write_bytes(
                        ca_file.read_bytes() + (conf / "mitmproxy-ca-cert.pem").read_bytes()
                    )
                    results["mitmproxy"] = measure(
                        f"http://127.0.0.1:{port}",
                        bundle,
                        origin_port,
                        args,
                        upload,
                        server.pid,
                        child.pid,
                    )
    print(
        f"inspected traffic, {args.requests} requests (curl -Z, 8 connections), "
        f"{args.sequential} sequential, {args.bulk_mb} MB bulk (best of {args.rounds}, "
        f"upload text: {args.upload}); "
        f"load average {load:.2f} "
        f"at start, {os.getloadavg()[0]:.2f} at end"
    )
    direct = results["direct"]["ms/req"]
    print(
        f"{'row':<16} {'req/s':>9} {'ms/req':>8} {'+ms':>7} {'up MB/s':>9} {'down MB/s':>10} "
        f"{'CPU ms/MB up':>13} {'all CPU ms/MB':>14}"
    )
    for name, row in results.items():
        print(
            f"{name:<16} {row['req/s']:>9.0f} {row['ms/req']:>8.2f} "
            f"{row['ms/req'] - direct:>7.2f} {row['up MB/s']:>9.1f} {row['down MB/s']:>10.1f} "
            f"{row['CPU ms/MB up']:>13.2f} {row['all CPU ms/MB']:>14.2f}"
        )
    if "mitmproxy" in results:
        ratio = results["airlock inspect"]["req/s"] / results["mitmproxy"]["req/s"]
        print(f"airlock inspect / mitmproxy req/s: {ratio:.1f}x (goal: 10x)")
    scan = 1 - results["airlock inspect"]["up MB/s"] / results["inspect scan off"]["up MB/s"]
    print(f"--secrets report costs {scan:.0%} of inspected upload MB/s (goal: at most 10%)")
    cpu = results["airlock inspect"]["CPU ms/MB up"] - results["inspect scan off"]["CPU ms/MB up"]
    share = cpu / results["airlock inspect"]["CPU ms/MB up"]
    print(f"--secrets report: {cpu:.2f} ms of proxy CPU per uploaded MB ({share:.0%} of its CPU)")
    for way in ("up MB/s", "down MB/s"):
        share = results["airlock inspect"][way] / results["airlock tunnel"][way]
        print(f"inspected {way} / tunnel: {share:.0%} (goal: at least 50%)")
    every = {name: row["all CPU ms/MB"] for name, row in results.items()}
    print(
        f"with every core busy: --secrets report costs "
        f"{1 - every['inspect scan off'] / every['airlock inspect']:.0%} of inspected upload "
        f"MB/s (goal: at most 10%), inspected upload is "
        f"{every['airlock tunnel'] / every['airlock inspect']:.0%} of the tunnel's "
        f"(goal: at least 50%)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
