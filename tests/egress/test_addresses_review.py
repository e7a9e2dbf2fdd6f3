"""The address check, reviewed with the real proxy: this machine's own address is refused
even where non-local binding is switched on (in network namespaces of the test's own,
``unshare -rn``: nothing outside them is touched), and through an upstream proxy, which
resolves names itself, names that only a private network answers are refused as private
addresses are."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.egress import EgressConfig
from tests.egress.origin import _Site, config, exchange, running
from tests.egress.test_upstream_review import _connect, recording_upstream

ROOT = Path(__file__).resolve().parents[2]
OWN = ("93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c")
"""Public addresses the namespace's loopback holds: this machine's own, there."""


def _namespaces() -> bool:
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    try:
        done = subprocess.run(
            ["unshare", "-rn", "ip", "link", "set", "lo", "up"], capture_output=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


needs_namespaces = pytest.mark.skipif(
    not _namespaces(), reason="needs unshare -rn (a network namespace of the test's own) and ip"
)


def _in_namespace(setup: str, script: str, tmp_path: Path, *args: str) -> dict[str, object]:
    """``script`` (Python, printing one JSON line last) run with ``args`` in a new network
    namespace after the shell commands ``setup``; its answer."""
    (tmp_path / "inside.py").write_text(script)
    environ = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
    done = subprocess.run(
        [
            "unshare",
            "-rn",
            "sh",
            "-ec",
            f'{setup}\nexec "$0" "$@"',
            sys.executable,
            "inside.py",
            *args,
        ],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


OWN_ADDRESS = """
import json, socket, sys, threading
from pathlib import Path
from tests.egress.origin import config, exchange, running

own = sys.argv[1]
service = socket.socket(socket.AF_INET6 if ":" in own else socket.AF_INET)
service.bind((own, 0))
shown = f"[{own}]" if ":" in own else own
service.listen()
reached = []

def serve():
    while True:
        conn, _ = service.accept()
        reached.append(1)
        conn.sendall(b"a service of this machine\\n")
        conn.close()

threading.Thread(target=serve, daemon=True).start()
port = service.getsockname()[1]
cfg = config(Path("run"), allow=(), allow_all=True, allow_private=False)
with running(cfg) as (url, _):
    tunnel = exchange(url, f"CONNECT {shown}:{port} HTTP/1.1\\r\\n\\r\\n".encode())
    plain = exchange(url, f"GET http://{shown}:{port}/ HTTP/1.1\\r\\n\\r\\n".encode())
print(json.dumps({
    "nonlocal_bind": Path(sys.argv[2]).read_text().strip(),
    "tunnel": tunnel.decode("latin-1"),
    "plain": plain.decode("latin-1"),
    "reached": len(reached),
}))
"""


@needs_namespaces
@pytest.mark.parametrize("own", OWN)
@pytest.mark.parametrize("nonlocal_bind", ["0", "1"])
def test_this_machines_own_address_is_refused_even_with_non_local_binding_on(
    own: str, nonlocal_bind: str, tmp_path: Path
) -> None:
    """A public address this machine holds is one of its own, refused under ``--allow-all``,
    also where ``ip_nonlocal_bind`` is on (a load balancer's host): binding to an address
    proves nothing there, so the route to it is asked too (it leaves from the address itself).
    Before, only binding was asked, and with it on, a service of this machine listening on
    its public address was reached through the proxy."""
    version, length = (6, 128) if ":" in own else (4, 32)
    switch = f"/proc/sys/net/ipv{version}/ip_nonlocal_bind"
    setup = f"ip link set lo up\nip addr add {own}/{length} dev lo\necho {nonlocal_bind} > {switch}"
    answer = _in_namespace(setup, OWN_ADDRESS, tmp_path, own, switch)
    assert answer["nonlocal_bind"] == nonlocal_bind
    for said in (answer["tunnel"], answer["plain"]):
        assert isinstance(said, str)
        assert said.startswith("HTTP/1.1 403 "), said[:300]
        assert "one of this machine's own addresses" in said
    assert answer["reached"] == 0


PRIVATE_NAMES = [
    "instance-data.us-west-2.compute.internal",
    "ip-10-0-0-5.ec2.internal",
    "Build-Cache.C.My-Project.Internal.",
    "printer.local",
    "nas.home.arpa",
]
"""Names that only a private network answers: AWS's and GCP's own names under .internal
(their machines, their metadata services), mDNS's .local, a home network's .home.arpa."""


def test_names_only_a_private_network_answers_do_not_reach_the_upstream_proxy(
    site: _Site, tmp_path: Path
) -> None:
    """Through an upstream proxy, which resolves names itself, a name under .internal,
    .local or .home.arpa leads to a private address wherever it resolves (the origin here
    stands for what the upstream proxy reaches by it): refused under ``--allow-all``, as a
    tunnel and as a plain request, and nothing reaches the upstream proxy; an ``--allow``
    naming one lets it through, as it does a private address. A public name goes on (the
    rig works). Before, every such name went to the upstream proxy under ``--allow-all``."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    inside = b"GET /inside HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    with recording_upstream("forward", origin) as upstream:
        cfg = config(
            tmp_path, allow=(), allow_all=True, allow_private=False, upstream_proxy=upstream.url
        )
        with running(cfg) as (url, _):
            tunnels = {name: _connect(url, f"{name}:80", inside) for name in PRIVATE_NAMES}
            plain = {
                name: exchange(url, f"GET http://{name}/p HTTP/1.1\r\n\r\n".encode())
                for name in PRIVATE_NAMES
            }
            public = _connect(url, "public.test:443", inside)
    for answer in [*tunnels.values(), *plain.values()]:
        assert answer.startswith(b"HTTP/1.1 403 "), answer[:300]
        assert b"leads to a private address" in answer
        assert b"to reach it, run again with --allow " in answer
    assert b"ICANN's top-level domain for private networks" in tunnels[PRIVATE_NAMES[0]]
    assert b"multicast DNS" in tunnels["printer.local"]
    assert public.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert [head.split(b"\r\n", 1)[0] for head in upstream.heads] == [
        b"CONNECT public.test:443 HTTP/1.1"
    ]
    assert site.seen == [("/inside", "x")]


def test_an_allow_naming_a_private_networks_name_lets_it_reach_the_upstream_proxy(
    site: _Site, tmp_path: Path
) -> None:
    """``--allow ip-10-0-0-5.ec2.internal`` names the host: it goes through the upstream
    proxy, as a private address an ``--allow`` names does; a wildcard covering it
    (``*.internal`` in a settings file) does not."""
    origin = ("127.0.0.1", int(site.server_address[1]))
    inside = b"GET /named HTTP/1.1\r\nHost: ip-10-0-0-5.ec2.internal\r\nConnection: close\r\n\r\n"
    allow = EgressConfig.rules(["ip-10-0-0-5.ec2.internal"], "--allow")
    allow += EgressConfig.rules(["*.internal"], "sandbox.network.allowedDomains in settings")
    with recording_upstream("forward", origin) as upstream:
        cfg = config(tmp_path, allow=allow, allow_private=True, upstream_proxy=upstream.url)
        with running(cfg) as (url, _):
            named = _connect(url, "ip-10-0-0-5.ec2.internal:80", inside)
            wildcard = _connect(url, "ip-10-0-0-6.ec2.internal:80", inside)
    assert named.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert wildcard.startswith(b"HTTP/1.1 403 ") and b"leads to a private address" in wildcard
    assert [head.split(b"\r\n", 1)[0] for head in upstream.heads] == [
        b"CONNECT ip-10-0-0-5.ec2.internal:80 HTTP/1.1"
    ]


def test_an_ipv4_translated_ipv6_address_is_judged_by_the_ipv4_address_it_carries(
    site: _Site, tmp_path: Path
) -> None:
    """``::ffff:0:a.b.c.d`` (IPv4-translated, RFC 2765: what a SIIT translator turns into
    ``a.b.c.d``) is judged by the IPv4 address it carries, as the compatible, NAT64, 6to4 and
    Teredo forms are: loopback and metadata refused as such under ``--allow-all``, a deny of
    the IPv4 address holds for it. Before, it was taken for a public address and dialled."""
    cfg = config(
        tmp_path,
        allow=(),
        deny=EgressConfig.rules(["93.184.215.14"], "--deny"),
        allow_all=True,
        allow_private=False,
    )
    port = int(site.server_address[1])
    with running(cfg) as (url, _):
        said = {
            target: exchange(url, f"CONNECT {target} HTTP/1.1\r\n\r\n".encode())
            for target in (
                f"[::ffff:0:127.0.0.1]:{port}",
                "[::ffff:0:a9fe:a9fe]:80",
                "[::ffff:0:10.1.2.3]:80",
                "[::ffff:0:93.184.215.14]:443",
            )
        }
    for answer in said.values():
        assert answer.startswith(b"HTTP/1.1 403 "), answer[:300]
    assert b"a loopback address" in said[f"[::ffff:0:127.0.0.1]:{port}"]
    assert b"a cloud metadata address" in said["[::ffff:0:a9fe:a9fe]:80"]
    assert b"a private address" in said["[::ffff:0:10.1.2.3]:80"]
    assert b"denied by '93.184.215.14' (--deny)" in said["[::ffff:0:93.184.215.14]:443"]
    assert site.seen == []
