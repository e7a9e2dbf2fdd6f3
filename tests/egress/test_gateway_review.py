"""The git gateway's inputs, and what git shows its user when the code host refuses the token
or has renamed a repository: real git, the real proxy and gateway, a local code host."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from airlock.egress.audit_read import read_records
from airlock.egress.config import GATEWAY_HOST
from airlock.egress.gateway import (
    TOKEN_FILE_LIMIT,
    GatewayConfig,
    RepoGrant,
    git_environment,
    load_token,
)
from airlock.errors import UsageError
from tests.egress.codehost import TOKEN, code_host, git, make_repo
from tests.egress.origin import config, exchange, running
from tests.egress.test_gateway import gateway_running

OTHER_TOKEN = "ghp_" + "Qq1Ww2Ee3Rr4Tt5Yy6Uu7Ii8Oo9Pp0AaSsDdFf"
"""A token of the right form that the code host does not take."""


@pytest.fixture
def hosted(tmp_path: Path) -> Iterator[Callable[..., dict[str, Any]]]:
    """A code host serving octo/allowed and octo/other; a call starts the gateway (with
    ``grants`` and ``token``) and the proxy in front of it, and gives what a test needs."""
    root = tmp_path / "host"
    for name in ("allowed", "other"):
        make_repo(root, "octo", name)
    with code_host(root) as host, contextlib.ExitStack() as stack:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"

        def start(grants: tuple[str, ...], token: str = TOKEN) -> dict[str, Any]:
            gateway = GatewayConfig(
                tuple(RepoGrant.parse(text) for text in grants),
                load_token({"GH_TOKEN": token}),
                upstream,
            )
            _, address = stack.enter_context(gateway_running(gateway))
            cfg = config(tmp_path, gateway=address)
            proxy_url, _ = stack.enter_context(running(cfg))
            env = git_environment(proxy_url, upstream)
            return {"env": env, "cfg": cfg, "host": host, "proxy": proxy_url}

        yield start


def _clone(world: dict[str, Any], name: str, into: Path) -> Any:
    """git clone of ``http://CODE-HOST/octo/NAME`` (rewritten to the gateway) into ``into``."""
    upstream = world["env"]["GIT_CONFIG_VALUE_0"]
    return git("clone", "-q", f"{upstream}octo/{name}", str(into), env=world["env"], check=False)


def _gateway_records(cfg: Any, count: int) -> list[dict[str, Any]]:
    """The audit log's records of requests to the gateway, once ``count`` of them are
    written (the log is flushed every 20 ms; 5 s at most)."""
    for _ in range(250):
        records = [r for r in read_records(cfg.audit_log) if r.get("host") == GATEWAY_HOST]
        if len(records) >= count:
            return records
        time.sleep(0.02)
    raise AssertionError(f"fewer than {count} records of the gateway in {cfg.audit_log}")


def test_a_token_the_code_host_refuses_is_named_in_what_git_shows(
    hosted: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """The code host answers 401 to the token (expired, or of another account): git used to
    get that 401 and its WWW-Authenticate, ask for a user name, and say only "could not read
    Username"; it shows the gateway's words, naming where the token was read, and the audit
    log records the refusal."""
    world = hosted(("octo/allowed",), token=OTHER_TOKEN)
    done = _clone(world, "allowed", tmp_path / "clone")
    assert done.returncode != 0
    assert "could not read Username" not in done.stderr, done.stderr
    assert (
        "fatal: remote error: airlock: http://127.0.0.1:" in done.stderr
        and "refused the token the git gateway adds for 'octo/allowed' (401 Unauthorized; "
        "the token from GH_TOKEN)"
        in done.stderr
    ), done.stderr
    assert OTHER_TOKEN not in done.stderr
    [record] = _gateway_records(world["cfg"], 1)
    assert record["decision"] == "deny"
    assert "refused the token" in record["reason"], record


def test_a_renamed_repository_is_followed_through_the_gateway(
    hosted: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """The code host redirects a renamed repository to its new name (as GitHub does): git
    used to follow the redirect to the code host itself, past the gateway, without the token;
    it follows it through the gateway, which clones the new name when it is granted and
    refuses it with its own words when it is not."""
    world = hosted(("octo/allowed", "octo/renamed", "octo/gone"))
    done = _clone(world, "renamed", tmp_path / "renamed")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "renamed" / "README").read_text() == "octo/allowed\n"
    gone = _clone(world, "gone", tmp_path / "gone")
    assert gone.returncode != 0
    assert "airlock: repository 'octo/other' is not granted to this run" in gone.stderr, gone.stderr
    seen = [path for _, path, _ in world["host"].seen]
    assert not any("/other.git/" in path for path in seen), seen


def test_a_refusal_of_a_path_is_logged_without_saying_git_gateway_twice(
    hosted: Callable[..., dict[str, Any]], tmp_path: Path
) -> None:
    """A request that is not git's (a dumb-protocol path) is refused 404; its logged reason
    used to read ``git gateway: airlock git gateway: …``."""
    world = hosted(("octo/allowed",))
    answer = exchange(
        world["proxy"],
        f"GET http://{GATEWAY_HOST}/octo/allowed.git/objects/info/packs HTTP/1.1\r\n"
        f"Host: {GATEWAY_HOST}\r\nConnection: close\r\n\r\n".encode(),
    )
    assert answer.startswith(b"HTTP/1.1 404 "), answer
    records = _gateway_records(world["cfg"], 1)
    assert records[0]["reason"].startswith("git gateway: '/octo/allowed.git/"), records
    assert "airlock git gateway" not in records[0]["reason"]


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (b"\xff\xfe" + TOKEN.encode(), "not ASCII"),
        (b"a" * (TOKEN_FILE_LIMIT + 1), f"more than {TOKEN_FILE_LIMIT} bytes"),
        (f"{TOKEN}\n{TOKEN}\n".encode(), "a line break"),
        (f"GH_TOKEN = {TOKEN}\n".encode(), "a space"),
        (b"abc\n", "3 characters, fewer than"),
    ],
    ids=["binary", "huge", "two_lines", "assignment", "short"],
)
def test_a_token_file_that_holds_no_token_is_refused(
    tmp_path: Path, content: bytes, said: str
) -> None:
    """A file that is not the token alone (bytes that are not text, a file far larger than a
    token, two lines, ``NAME = value``, a few characters) is refused before the run, saying
    why and never what it holds: it used to be taken whole as the token (and sent), to fail
    with a traceback, or to be read whole however large. Spaces and a line break (CRLF too)
    around the token are dropped, through a link too."""
    path = tmp_path / "token"
    path.write_bytes(content)
    with pytest.raises(UsageError, match=said) as refused:
        load_token({}, path)
    assert f"--git-token-file {path}" in str(refused.value)
    assert TOKEN not in str(refused.value) and "abc" not in str(refused.value)
    path.write_bytes(f"  {TOKEN}\r\n".encode())
    (tmp_path / "link").symlink_to(path)
    assert load_token({}, tmp_path / "link").reveal() == TOKEN


@pytest.mark.parametrize(
    ("value", "said"),
    [("x", "1 characters, fewer than"), (f"{TOKEN} {TOKEN}", "a space")],
    ids=["short", "two_words"],
)
def test_a_variable_that_holds_no_token_is_refused(value: str, said: str) -> None:
    """GH_TOKEN of a single character (which every answer and file would be found to hold)
    or of two words is refused, naming the variable, not its value."""
    with pytest.raises(UsageError, match=said) as refused:
        load_token({"GH_TOKEN": value})
    assert str(refused.value).startswith("GH_TOKEN ")
    assert TOKEN not in str(refused.value)


@pytest.mark.parametrize(
    ("upstream", "said"),
    [
        ("https://[::1", "not a URL"),
        ("https://", "names no host"),
        ("https:///github.com", "names no host"),
        ("https://github.com:99999", "not a URL"),
        ("https://github.com:0", "port 0"),
        ("https://github.com#x", "query or fragment"),
        ("https://github.com?x=1", "query or fragment"),
        ("https://git hub.com", "a space"),
        ("http://github.com", "unencrypted"),
    ],
)
def test_an_upstream_the_gateway_cannot_use_is_refused(upstream: str, said: str) -> None:
    """A --git-upstream that is not a URL (it used to stop airlock with a traceback), names no
    host (``https://`` had git send every https:// URL to the gateway), a bad port, a query
    or fragment (the token went to the code host's ``/``), a space, or plain http:// to a
    host that is not the loopback (the token in the clear on the network): refused. A code
    host's URL is taken, under a path too, and plain http:// to the loopback."""
    token = load_token({"GH_TOKEN": TOKEN})
    with pytest.raises(UsageError, match=said) as refused:
        GatewayConfig((RepoGrant.parse("octo/w"),), token, upstream)
    assert str(refused.value).startswith(f"--git-upstream {upstream!r}: ")
    for taken in ("https://github.com", "https://git.example.com/gitea/", "http://[::1]:3000"):
        assert GatewayConfig((), token, taken).upstream == taken  # a path; http:// to loopback


@pytest.mark.parametrize(
    ("upstream", "host"),
    [
        ("https://git.example.com/gitea", "git.example.com"),
        ("http://127.0.0.1:3000", "127.0.0.1"),
        ("https://[::1]:8443/", "[::1]"),
    ],
)
def test_ssh_urls_name_the_code_hosts_host_alone(upstream: str, host: str) -> None:
    """git's SSH URLs of a code host (``git@HOST:OWNER/NAME``) are rewritten to the gateway
    too when --git-upstream has a path or port: SSH names the host alone (they used to be
    looked for as ``git@git.example.com/gitea:``, which no SSH URL is)."""
    env = git_environment("http://127.0.0.1:3128", upstream)
    values = [env[f"GIT_CONFIG_VALUE_{index}"] for index in range(int(env["GIT_CONFIG_COUNT"]))]
    assert f"git@{host}:" in values and f"ssh://git@{host}/" in values
