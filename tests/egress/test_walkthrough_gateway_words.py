"""What the git gateway says, after a walkthrough: a code host whose certificate does not
verify is named with what to do, a refusal's logged reason reads as git's message does (no
``?`` for ``…``) and names the git service it refused, and the loopback a plain ``http://``
code host may be on is named as the check takes it. Real git, the real proxy and a local
code host (git's ``http-backend``) on loopback."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.ca import RunCA
from airlock.egress.config import GATEWAY_HOST
from airlock.egress.gateway import GatewayConfig, RepoGrant, git_environment, load_token
from airlock.errors import UsageError
from tests.cli import airlock
from tests.egress.codehost import TOKEN, CodeHost, _Handler, code_host, git, make_repo
from tests.egress.origin import config, running
from tests.egress.test_gateway import gateway_running
from tests.serving import in_thread

LONG = "n" * 150
"""A repository name longer than the gateway quotes (its first 100 characters, then ``…``)."""


@contextlib.contextmanager
def _through(
    tmp_path: Path, upstream: str, *grants: str, upstream_ca: Path | None = None
) -> Iterator[tuple[dict[str, str], Path, str]]:
    """The gateway to ``upstream`` (trusting ``upstream_ca`` too) for ``grants`` behind the
    real proxy: git's environment inside, the audit log, and the proxy's URL."""
    token = load_token({"GH_TOKEN": TOKEN})
    repos = tuple(RepoGrant.parse(grant) for grant in grants)
    gateway = GatewayConfig(repos, token, upstream, upstream_ca=upstream_ca)
    with gateway_running(gateway) as (_gate, address):
        cfg = config(tmp_path, gateway=address)
        with running(cfg) as (proxy_url, _proxy):
            assert cfg.audit_log is not None
            yield git_environment(proxy_url, upstream), cfg.audit_log, proxy_url


def _gateway_records(log: Path) -> list[dict[str, Any]]:
    time.sleep(0.2)  # the log's next flush
    return [r for r in read_records(log) if r.get("host") == GATEWAY_HOST]


@contextlib.contextmanager
def _tls_code_host(root: Path) -> Iterator[tuple[CodeHost, RunCA]]:
    """The code host over TLS, its certificate for ``localhost`` signed by a CA of its own
    (one the system does not trust, as a company's)."""
    ca = RunCA(now=dt.datetime.now(dt.UTC), name="code host's own CA")
    server = CodeHost(("127.0.0.1", 0), _Handler)
    server.root = root
    server.seen, server.connection = [], []
    server.socket = ca.server_context("localhost").wrap_socket(server.socket, server_side=True)
    with in_thread(server) as host:
        yield host, ca


def test_a_code_host_certificate_that_does_not_verify_says_what_to_do(tmp_path: Path) -> None:
    """git showed ``remote: airlock git gateway: https://…: [SSL: CERTIFICATE_VERIFY_FAILED] …``
    and no more: the gateway's 502 now adds what an inspected origin's does, and the audit
    record's error says the same. Doing what it says (the code host's CA as
    ``--upstream-ca``) lets the clone through."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    with _tls_code_host(root) as (host, ca):
        upstream = f"https://localhost:{host.server_address[1]}"
        clone = ("clone", "-q", f"{upstream}/octo/allowed")
        with _through(tmp_path / "without", upstream, "octo/allowed") as (env, log, _):
            done = git(*clone, str(tmp_path / "c"), env=env, check=False)
            records = _gateway_records(log)
        assert not host.seen  # no request reached it
        pem = tmp_path / "code-host-ca.pem"
        pem.write_bytes(ca.certificate_pem)
        given = _through(tmp_path / "with", upstream, "octo/allowed", upstream_ca=pem)
        with given as (env, _, _):
            cloned = git(*clone, str(tmp_path / "d"), env=env, check=False)
    assert done.returncode != 0
    hint = "if the code host uses its own CA, pass it with --upstream-ca FILE"
    said = f"remote: airlock git gateway: {upstream}: [SSL: CERTIFICATE_VERIFY_FAILED]"
    assert said in done.stderr, done.stderr
    assert hint in done.stderr, done.stderr
    [record] = records
    assert record["status"] == 502 and hint in record["error"], record
    assert cloned.returncode == 0, cloned.stderr
    assert (tmp_path / "d" / "README").read_text() == "octo/allowed\n"


@pytest.mark.parametrize(
    ("url", "service", "words", "status"),
    [
        pytest.param(
            f"/octo/{LONG}.git/info/refs?service=git-upload-pack",
            "git-upload-pack",
            "a fetch or clone; refused by git's error packet (ERR), the HTTP status 200",
            200,
            id="fetch-advertisement",
        ),
        pytest.param(
            f"/octo/{LONG}.git/info/refs?service=git-receive-pack",
            "git-receive-pack",
            "a push; refused by git's error packet (ERR), the HTTP status 200",
            200,
            id="push-advertisement",
        ),
        pytest.param(
            f"/octo/{LONG}.git/git-upload-pack",
            "git-upload-pack",
            "a fetch or clone",
            403,
            id="fetch-post",
        ),
    ],
)
def test_a_refusals_logged_reason_reads_as_gits_message_and_names_the_service(
    tmp_path: Path, url: str, service: str, words: str, status: int
) -> None:
    """The record of a refusal showed ``'octo/nnn…?'`` where git was shown ``…`` (a header
    holds ASCII alone), and ``service=…`` in its path hid a fetch from a push: the reason
    now writes ``...`` and names the service, and, on ``info/refs``, that the refusal is
    git's error packet in a ``200``."""
    import subprocess

    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        with _through(tmp_path, upstream, "octo/allowed") as (_env, log, proxy_url):
            method = ["--data-binary", "0000"] if not url.endswith("service=" + service) else []
            answer = subprocess.run(
                ["curl", "-sS", "-i", "--max-time", "20", "--proxy", proxy_url, *method,
                 f"http://{GATEWAY_HOST}{url}"],
                capture_output=True, timeout=30, check=False,
            ).stdout.decode()  # fmt: skip
            records = _gateway_records(log)
    shown = f"'octo/{LONG[:95]}…'"  # the first 100 characters of "octo/nnn…"
    assert shown in answer  # what git is shown
    [record] = records
    assert (record["decision"], record["status"]) == ("deny", status)
    reason = record["reason"]
    assert "?" not in reason, reason
    assert reason.startswith(
        f"git gateway: repository 'octo/{LONG[:95]}...' is not granted to this run "
        "(granted: octo/allowed)"
    ), reason
    assert reason.endswith(f" [{service}: {words}]"), reason
    assert "add --repo" not in reason  # the hint goes to git alone


def test_a_long_refusal_keeps_the_service_in_the_record(tmp_path: Path) -> None:
    """A refusal whose reason fills the header (many grants, a long name) is cut before the
    service's note, never through it."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    grants = [f"octo/granted-{index:02d}-{'x' * 20}" for index in range(12)]
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        with _through(tmp_path, upstream, *grants) as (env, log, _):
            git("ls-remote", f"{upstream}/octo/{LONG}", env=env, check=False)
            records = _gateway_records(log)
    [record] = records
    assert record["reason"].endswith(
        " [git-upload-pack: a fetch or clone; refused by git's error packet (ERR), the HTTP "
        "status 200]"
    ), record["reason"]
    assert "...' is not granted" in record["reason"]


def test_the_loopback_a_plain_http_code_host_may_be_on_is_named_as_checked(
    tmp_path: Path,
) -> None:
    """``--git-upstream http://…`` off the loopback was refused naming "127.0.0.1, ::1,
    localhost" while ``127.0.0.2`` is taken: the message names ``127.0.0.0/8``."""
    work = tmp_path / "work"
    work.mkdir()
    done = airlock(
        "run", "--repo", "octo/w", "--git-upstream", "http://10.0.0.1:3000", "--", "true",
        env={"GH_TOKEN": TOKEN}, cwd=work,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert (
        "(http:// is for a code host on this machine's loopback: 127.0.0.0/8, ::1, localhost)"
        in (done.stderr)
    )
    assert TOKEN not in done.stderr
    token = load_token({"GH_TOKEN": TOKEN})
    for taken in ("http://127.0.0.2:3000", "http://127.255.255.254", "http://LOCALHOST.:3000"):
        assert GatewayConfig((), token, taken).upstream == taken
    for refused in ("http://128.0.0.1", "http://[::ffff:127.0.0.1]:3000", "http://localhost.test"):
        with pytest.raises(UsageError) as said:
            GatewayConfig((), token, refused)
        assert "loopback: 127.0.0.0/8, ::1, localhost)" in str(said.value)
