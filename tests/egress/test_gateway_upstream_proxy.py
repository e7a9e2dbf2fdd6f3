"""The git gateway reaches the code host through the run's upstream proxy, as the proxy's own
connections do (``--upstream-proxy``, else airlock's own ``HTTPS_PROXY``; airlock's
``NO_PROXY`` goes past it), and never through a proxy the environment names otherwise."""

from __future__ import annotations

import base64
import contextlib
import select
import socket
import socketserver
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.gateway import GatewayConfig, RepoGrant, git_environment, load_token
from airlock.egress.options import _gateway_proxy
from tests.cli import airlock
from tests.egress.codehost import TOKEN, code_host, git, make_repo
from tests.egress.origin import config, running
from tests.egress.test_gateway import gateway_running
from tests.serving import in_thread


class _Forwarder(socketserver.ThreadingTCPServer):
    """A plain-HTTP forward proxy on loopback: each request (absolute-form) goes to its origin
    with ``Connection: close`` and the bytes are relayed until either side closes; the
    request lines are kept in :attr:`asked`."""

    daemon_threads = True
    allow_reuse_address = True
    asked: list[str]
    authorizations: list[bytes | None]
    """Each request's ``Proxy-Authorization`` (``None``: none)."""


class _ForwardHandler(socketserver.BaseRequestHandler):
    server: _Forwarder

    def handle(self) -> None:
        client: socket.socket = self.request
        head = b""
        while b"\r\n\r\n" not in head and len(head) < 65536:
            chunk = client.recv(65536)
            if not chunk:
                return
            head += chunk
        head, _, rest = head.partition(b"\r\n\r\n")
        line, *headers = head.split(b"\r\n")
        method, target, version = line.split(b" ")
        self.server.asked.append(f"{method.decode()} {target.decode()}")
        given = [h.partition(b":")[2].strip() for h in headers
                 if h.lower().startswith(b"proxy-authorization:")]  # fmt: skip
        self.server.authorizations.append(given[0] if given else None)
        authority, _, path = target.removeprefix(b"http://").partition(b"/")
        host, _, port = authority.partition(b":")
        kept = [h for h in headers if not h.lower().startswith((b"connection:", b"proxy-"))]
        request = b"\r\n".join(
            [method + b" /" + path + b" " + version, *kept, b"Connection: close"]
        )
        with socket.create_connection((host.decode(), int(port or b"80")), timeout=20) as origin:
            origin.sendall(request + b"\r\n\r\n" + rest)
            pair = {client: origin, origin: client}
            for _ in range(100_000):  # bounded: a clone here is a few dozen reads
                readable, _, _ = select.select(list(pair), [], [], 20)
                if not readable:
                    return
                for side in readable:
                    data = side.recv(65536)
                    if not data:
                        return
                    pair[side].sendall(data)


@contextlib.contextmanager
def _forwarder() -> Iterator[_Forwarder]:
    server = _Forwarder(("127.0.0.1", 0), _ForwardHandler)
    server.asked, server.authorizations = [], []
    with in_thread(server):
        yield server


def _clone(tmp_path: Path, proxy: str | None) -> tuple[str, object]:
    """Clone octo/allowed through the run's proxy and the gateway; git's stderr and the code
    host."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        cfg = GatewayConfig(
            (RepoGrant.parse("octo/allowed"),),
            load_token({"GH_TOKEN": TOKEN}),
            upstream,
            proxy=proxy,
        )
        with (
            gateway_running(cfg) as (_gate, address),
            running(config(tmp_path, gateway=address)) as (proxy_url, _proxy),
        ):
            done = git(
                "clone",
                "-q",
                "https://github.com/octo/allowed",
                str(tmp_path / "clone"),
                env=git_environment(proxy_url),
                check=False,
            )
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "clone" / "README").read_text() == "octo/allowed\n"
        return done.stderr, host


def test_the_gateway_reaches_the_code_host_through_the_upstream_proxy(tmp_path: Path) -> None:
    with _forwarder() as forwarder:
        _, host = _clone(tmp_path, f"http://127.0.0.1:{forwarder.server_address[1]}")
    port = host.server_address[1]  # type: ignore[attr-defined]
    asked = forwarder.asked
    assert asked and all(f"http://127.0.0.1:{port}/octo/allowed.git/" in line for line in asked)
    assert any("info/refs?service=git-upload-pack" in line for line in asked)
    assert any(line.startswith("POST ") for line in asked)


def test_the_gateway_gives_the_upstream_proxy_its_credentials(tmp_path: Path) -> None:
    """The upstream proxy's URL has a user and a password (percent-encoded): the gateway's
    requests carry them as ``Proxy-Authorization``. They were dropped, and a corporate proxy
    that asks for them refused every clone with ``407``."""
    with _forwarder() as forwarder:
        given = f"http://us%40er:p%3Ass@127.0.0.1:{forwarder.server_address[1]}"
        _clone(tmp_path, _gateway_proxy(given, "https://github.com", {}))
    expected = b"Basic " + base64.b64encode(b"us@er:p:ss")
    assert forwarder.authorizations and set(forwarder.authorizations) == {expected}


def test_a_proxy_in_the_environment_is_not_the_gateways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No upstream proxy for the run: airlock's ``HTTP_PROXY``/``ALL_PROXY`` name one that
    would refuse everything, and the gateway does not go through it."""
    with _forwarder() as forwarder:
        bad = f"http://127.0.0.1:{forwarder.server_address[1]}"
        for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
            monkeypatch.setenv(name, bad)
        _clone(tmp_path, None)
    assert forwarder.asked == []


@pytest.mark.parametrize(
    ("given", "environ", "git_upstream", "expected"),
    [
        ("http://10.0.0.1:3128", {}, "https://github.com", "http://10.0.0.1:3128"),
        ("10.0.0.1:3128", {}, "https://github.com", "http://10.0.0.1:3128"),
        (None, {"HTTPS_PROXY": "http://proxy.corp:8080"}, "https://github.com", "http://proxy.corp:8080"),
        (None, {"https_proxy": "proxy.corp:3128"}, "https://github.com", "http://proxy.corp:3128"),
        ("http://[::1]:3128", {}, "https://github.com", "http://[::1]:3128"),
        ("http://u%40x:p%2Fw@10.0.0.1:3128", {}, "https://github.com", "http://u%40x:p%2Fw@10.0.0.1:3128"),
        ("u:pw@10.0.0.1:3128", {}, "https://github.com", "http://u:pw@10.0.0.1:3128"),
        (None, {"HTTPS_PROXY": "http://u:pw@[::1]:3128"}, "https://github.com", "http://u:pw@[::1]:3128"),
        ("http://10.0.0.1:3128", {"NO_PROXY": ".github.com"}, "https://github.com", None),
        ("http://10.0.0.1:3128", {"no_proxy": "git.corp"}, "https://git.corp/x", None),
        (None, {"HTTP_PROXY": "http://10.0.0.1:3128"}, "https://github.com", None),
        (None, {}, "https://github.com", None),
    ],
)  # fmt: skip
def test_which_proxy_the_gateway_uses(
    given: str | None, environ: dict[str, str], git_upstream: str, expected: str | None
) -> None:
    assert _gateway_proxy(given, git_upstream, environ) == expected


def test_airlock_run_with_an_upstream_proxy_clones_through_it(
    tmp_path: Path, project: Path
) -> None:
    """``airlock run --repo … --upstream-proxy URL``: git inside clones, and the gateway's
    requests to the code host went through that proxy."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    with code_host(root) as host, _forwarder() as forwarder:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        done = airlock(
            "run",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--repo",
            "octo/allowed",
            "--git-upstream",
            upstream,
            "--upstream-proxy",
            f"http://127.0.0.1:{forwarder.server_address[1]}",
            "--",
            "git",
            "clone",
            "-q",
            f"{upstream}/octo/allowed",
            "clone",
            env={"GH_TOKEN": TOKEN},
            cwd=project,
            timeout=180,
        )
    assert done.returncode == 0, done.stderr
    assert (project / "clone" / "README").read_text() == "octo/allowed\n"
    assert any("/octo/allowed.git/info/refs" in line for line in forwarder.asked)
