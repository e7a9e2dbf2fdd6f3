"""The git gateway, second review: which upstream proxy it may send the token through, the
repository names ``--repo`` takes, an ``--upstream-ca`` it cannot load, and its end."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from airlock.egress.gateway import Gateway, GatewayConfig, RepoGrant, git_environment, load_token
from airlock.errors import UsageError
from tests.cli import airlock
from tests.egress.codehost import TOKEN, code_host, git, make_repo
from tests.egress.origin import config, running
from tests.egress.test_gateway import gateway_running
from tests.serving import Handler, in_thread


@pytest.mark.parametrize(
    ("upstream", "proxy"),
    [
        ("http://127.0.0.1:3000", "http://10.0.0.1:3128"),
        ("http://localhost:3000/forgejo", "http://proxy.corp:8080"),
        ("http://[::1]:3000", "http://[2001:db8::1]:3128"),
    ],
)
def test_plain_http_to_the_code_host_through_a_proxy_elsewhere_is_refused(
    upstream: str, proxy: str
) -> None:
    """A plain http:// code host (on the loopback) through an upstream proxy on another
    machine: each request would reach that proxy as it is, the token in its Authorization
    header, in the clear across the network. Refused, naming both and what to do; the token
    is not shown. An https:// code host (the token inside TLS), a proxy on this machine, or
    none, is taken."""
    token = load_token({"GH_TOKEN": TOKEN})
    with pytest.raises(UsageError, match="is plain http://") as refused:
        GatewayConfig((RepoGrant.parse("octo/w"),), token, upstream, proxy=proxy)
    said = str(refused.value)
    assert f"--git-upstream {upstream!r}" in said and repr(proxy) in said
    assert "https://" in said and "NO_PROXY" in said
    assert TOKEN not in said
    taken = [
        ("https://github.com", "http://10.0.0.1:3128"),  # the token inside TLS (CONNECT)
        ("http://127.0.0.1:3000", "http://127.0.0.1:3128"),  # both on this machine
        ("http://127.0.0.1:3000", "http://localhost:3128"),
        ("http://127.0.0.1:3000", None),
    ]
    for other_upstream, other_proxy in taken:
        assert GatewayConfig((), token, other_upstream, proxy=other_proxy).proxy == other_proxy


@pytest.mark.parametrize("name", [".github", "_private", "-dash", "..."])
def test_a_repository_name_may_start_with_a_dot(name: str) -> None:
    """GitHub's ``OWNER/.github`` (and other names that start with ``.``, ``_`` or ``-``) used
    to be refused as not of the form OWNER/NAME. ``.`` and ``..`` (``..git`` once ``.git`` is
    dropped) still name no repository, and an owner still starts with a letter or digit."""
    assert RepoGrant.parse(f"octo/{name}:ro") == RepoGrant("octo", name, read_only=True)
    for text in ("octo/.", "octo/..", "octo/..git", "octo/.git", ".octo/x"):
        with pytest.raises(UsageError, match="OWNER/NAME"):
            RepoGrant.parse(text)


def test_a_repository_named_with_a_leading_dot_is_cloned(tmp_path: Path) -> None:
    """git clones https://github.com/octo/.github through the gateway."""
    root = tmp_path / "host"
    make_repo(root, "octo", ".github")
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        cfg = GatewayConfig(
            (RepoGrant.parse("octo/.github"),), load_token({"GH_TOKEN": TOKEN}), upstream
        )
        with (
            gateway_running(cfg) as (_, address),
            running(config(tmp_path, gateway=address)) as (proxy_url, _),
        ):
            done = git(
                "clone",
                "-q",
                "https://github.com/octo/.github",
                str(tmp_path / "clone"),
                env=git_environment(proxy_url),
                check=False,
            )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "clone" / "README").read_text() == "octo/.github\n"


@pytest.mark.parametrize("content", [None, b"not a certificate\n"], ids=["missing", "garbage"])
def test_an_upstream_ca_the_gateway_cannot_load_is_named(
    tmp_path: Path, content: bytes | None
) -> None:
    """``airlock run --repo … --upstream-ca FILE`` (no --inspect) with a file that is missing
    or holds no certificate: airlock stopped with ``airlock run: No such file or directory``
    or an OpenSSL code, naming neither the option nor the file. It says which, as with
    --inspect, before anything runs."""
    ca = tmp_path / "ca.pem"
    if content is not None:
        ca.write_bytes(content)
    marker = tmp_path / "project" / "ran"
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"),
        "--repo", "octo/allowed", "--upstream-ca", str(ca),
        "--", "touch", str(marker),
        env={"GH_TOKEN": TOKEN}, cwd=tmp_path / "project", timeout=120,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert f"--upstream-ca {ca}: cannot load it as PEM certificates" in done.stderr, done.stderr
    assert not marker.exists()
    assert TOKEN not in done.stdout + done.stderr


class _Slow(Handler):
    """A code host that answers nothing until the test lets it (a large fetch being packed)."""

    released = threading.Event()

    def do_GET(self) -> None:
        self.released.wait(30)
        with contextlib.suppress(OSError):
            self.answer(200, [], b"late\n")


def test_close_ends_every_connection_it_serves(tmp_path: Path) -> None:
    """At the run's end the gateway is closed while a request still waits on the code host
    and another connection is open, idle. Since Python 3.12 ``wait_closed`` waits for every
    connection: the run's end waited 10 s, then said ``could not close the run's CA
    (TimeoutError())`` and left the gateway's folder behind (the idle connection was left
    open on 3.11, to a loop about to stop). ``close`` ends both connections itself, at
    once, and leaves no task of the gateway running."""
    with in_thread(ThreadingHTTPServer(("127.0.0.1", 0), _Slow)) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        cfg = GatewayConfig(
            (RepoGrant.parse("octo/allowed"),), load_token({"GH_TOKEN": TOKEN}), upstream
        )
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        gate = Gateway(cfg)
        address = asyncio.run_coroutine_threadsafe(gate.start(tmp_path / "g.sock"), loop).result(10)
        waiting, idle = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
        try:
            for conn in (waiting, idle):
                conn.settimeout(3)
                conn.connect(address)
            waiting.sendall(
                b"GET /octo/allowed.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            time.sleep(0.5)  # the request is on its way to the code host
            started = time.monotonic()
            asyncio.run_coroutine_threadsafe(gate.close(), loop).result(10)
            took = time.monotonic() - started
            ended = [_ended(conn) for conn in (waiting, idle)]
            running = asyncio.run_coroutine_threadsafe(_running_tasks(), loop).result(5)
        finally:
            _Slow.released.set()
            waiting.close()
            idle.close()
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
    assert took < 3, took
    assert ended == [True, True], "a connection left open by close()"
    assert not running, f"{len(running)} task(s) of the gateway left running"


def _ended(conn: socket.socket) -> bool:
    """Whether the gateway ends ``conn`` (whatever it sends first) within its timeout."""
    try:
        while conn.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


async def _running_tasks() -> list[str]:
    """The tasks of the running loop not done, but the caller's own."""
    here = asyncio.current_task()
    return [repr(task) for task in asyncio.all_tasks() if task is not here and not task.done()]
