"""``airlock run``: names that no DNS server answers do not hold back the others.

The proxy resolves each name once, outside the sandbox. A lookup that a DNS server drops
holds the thread running ``getaddrinfo`` until the resolver gives up; here the run's
``/etc/resolv.conf`` names a real DNS server on loopback that reads every query and answers
none, with a 30 s timeout. Code inside asks for six such names, then for one that
``/etc/hosts`` knows: that one must be reached at once, not after the silent ones.

The files are bound over ``/etc/resolv.conf`` and ``/etc/hosts`` in a mount namespace of
the run's own (``unshare -m``), which needs root, as CI runs the tests.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.run_servers import HOST, web_site

SILENT_SERVER = "127.0.0.77"
"""The loopback address the silent DNS server listens on (port 53)."""

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="binds files over /etc in a mount namespace of its own (root, as CI)",
)


@contextmanager
def silent_dns_server() -> Iterator[list[bytes]]:
    """A DNS server on ``SILENT_SERVER:53`` that reads every query and answers none; yields
    the queries it got."""
    queries: list[bytes] = []
    stop = threading.Event()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
        server.bind((SILENT_SERVER, 53))
        server.settimeout(0.2)

        def read() -> None:
            while not stop.is_set():
                try:
                    query, _ = server.recvfrom(4096)
                except TimeoutError:
                    continue
                queries.append(query)

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            yield queries
        finally:
            stop.set()
            reader.join()


INSIDE = """
import os, sys, threading, time, urllib.request

def silent(number):
    try:
        urllib.request.urlopen(f"http://silent{number}.test/", timeout=120).read()
    except Exception:
        pass

for number in range(6):
    threading.Thread(target=silent, args=(number,), daemon=True).start()
time.sleep(1.5)
start = time.monotonic()
try:
    body = urllib.request.urlopen(sys.argv[1], timeout=120).read()
    print("REACHED", round(time.monotonic() - start, 2), body.decode()[:60], flush=True)
except Exception as error:
    print("FAILED", round(time.monotonic() - start, 2), error, flush=True)
os._exit(0)
"""


def test_names_no_server_answers_do_not_hold_back_the_others(tmp_path: Path) -> None:
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(f"nameserver {SILENT_SERVER}\noptions timeout:30 attempts:1\n")
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 localhost\n{HOST} reachable.test\n")
    script = tmp_path / "workspace" / "inside.py"
    script.parent.mkdir()
    script.write_text(INSIDE)
    with silent_dns_server() as queries, web_site() as site:
        port = site.server_address[1]
        run = [
            sys.executable,
            "-m",
            "airlock",
            "run",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            *(f"--allow=silent{number}.test" for number in range(6)),
            "--allow",
            f"reachable.test:{port}",
            "--",
            "python3",
            "inside.py",
            f"http://reachable.test:{port}/page",
        ]
        done = subprocess.run(
            [
                "unshare",
                "-m",
                "sh",
                "-c",
                'mount --bind "$1" /etc/resolv.conf && mount --bind "$2" /etc/hosts && shift 2 '
                '&& exec "$@"',
                "sh",
                str(resolv),
                str(hosts),
                *run,
            ],
            capture_output=True,
            text=True,
            cwd=script.parent,
            env={**os.environ, "COLUMNS": "200"},
            timeout=180,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert queries, "the silent server got no query: the run did not use its resolv.conf"
    outcome, seconds, *rest = done.stdout.split()
    assert outcome == "REACHED", done.stdout + done.stderr
    assert float(seconds) < 5, done.stdout  # not behind the silent lookups (30 s each)
    assert "hello from the origin: GET /page" in " ".join(rest)
    assert site.seen == ["GET /page"]
    assert "Traceback" not in done.stderr  # the lookups under way when the run ended
    assert done.stderr.count("failed 1×: the run ended") == 6, done.stderr
