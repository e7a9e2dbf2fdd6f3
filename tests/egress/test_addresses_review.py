"""The address check, reviewed with the real proxy in network namespaces of the test's own
(``unshare -rn``: nothing outside them is touched): this machine's own address is refused
even where non-local binding is switched on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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
