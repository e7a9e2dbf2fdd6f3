"""The git credential gateway with real git, the real proxy and a local code host."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import re
import shutil
import socket
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest

from airlock.egress import Limits
from airlock.egress.audit_read import read_records
from airlock.egress.config import GATEWAY_HOST
from airlock.egress.gateway import (
    Gateway,
    GatewayConfig,
    RepoGrant,
    _Scrubber,
    _Sideband,
    git_environment,
    load_token,
    secret_pattern,
)
from airlock.errors import UsageError
from tests.egress.codehost import TOKEN, code_host, echoed, git, make_repo, packets
from tests.egress.origin import config, running

_BASIC = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
SECRETS = (
    TOKEN,
    TOKEN.lower(),
    _BASIC,
    quote(_BASIC, safe=""),
    base64.b64encode(TOKEN.encode()).decode(),
)


@contextlib.contextmanager
def gateway_running(cfg: GatewayConfig) -> Iterator[tuple[Gateway, str]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    gate = Gateway(cfg)
    folder = Path(tempfile.mkdtemp(prefix="gateway-test-"))
    address = asyncio.run_coroutine_threadsafe(gate.start(folder / "gateway.sock"), loop).result(10)
    try:
        yield gate, address
    finally:
        asyncio.run_coroutine_threadsafe(gate.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict[str, object]]:
    """Two repositories (and a leaky one) on a code host, the gateway, the proxy."""
    root = tmp_path / "host"
    for name in ("allowed", "other", "readonly"):
        make_repo(root, "octo", name)
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        grants = (
            RepoGrant.parse("octo/allowed"),
            RepoGrant.parse("octo/readonly:ro"),
            RepoGrant.parse("octo/leaky"),
            RepoGrant.parse("octo/sly"),
            RepoGrant.parse("octo/echo"),
            RepoGrant.parse("octo/bodiless"),
            RepoGrant.parse("octo/sideband"),
            RepoGrant.parse("octo/cutoff"),
            RepoGrant.parse("octo/early"),
        )
        token = load_token({"GH_TOKEN": TOKEN})
        with gateway_running(GatewayConfig(grants, token, upstream)) as (gate, address):
            cfg = config(tmp_path, gateway=address)
            with running(cfg) as (proxy_url, _proxy):
                env = git_environment(proxy_url)
                yield {
                    "root": root,
                    "host": host,
                    "gate": gate,
                    "env": env,
                    "cfg": cfg,
                    "address": address,
                    "proxy": proxy_url,
                    "tmp": tmp_path,
                }


def _inside(
    world: dict[str, object], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = dict(world["env"])  # type: ignore[call-overload]
    return git(*args, cwd=cwd or world["tmp"], env=env, check=False)  # type: ignore[arg-type]


def _no_token(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def _curl_gateway(
    world: dict[str, object],
    path: str,
    *options: str,
    host: str = GATEWAY_HOST,
    stdin: bytes = b"",
) -> str:
    """``curl -i`` of ``http://HOST/PATH`` through the run's proxy: the answer, and curl's
    own words."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "20",
            *options,
            "--proxy",
            str(world["proxy"]),
            f"http://{host}{path}",
        ],
        capture_output=True,
        input=stdin,
        timeout=30,
        check=False,
    )
    return done.stdout.decode("latin-1") + done.stderr.decode("latin-1")


def test_clone_and_push_an_allowed_repository(world: dict[str, object]) -> None:
    """git clones https://github.com/octo/allowed through the gateway and pushes a commit back."""
    tmp: Path = world["tmp"]  # type: ignore[assignment]
    done = _inside(world, "clone", "-q", "https://github.com/octo/allowed", "allowed")
    assert done.returncode == 0, done.stderr
    work = tmp / "allowed"
    assert (work / "README").read_text() == "octo/allowed\n"
    (work / "NEW").write_text("change\n")
    git("add", "NEW", cwd=work)
    git("commit", "-q", "-m", "second", cwd=work)
    pushed = _inside(world, "push", "-q", "origin", "main", cwd=work)
    assert pushed.returncode == 0, pushed.stderr
    log = git("log", "--format=%s", "main", cwd=world["root"] / "octo" / "allowed.git")  # type: ignore[operator]
    assert log.stdout.split() == ["second", "first"]
    host = world["host"]
    assert host.seen and all(auth for _, _, auth in host.seen)  # type: ignore[attr-defined]
    _no_token(done.stdout, done.stderr, pushed.stdout, pushed.stderr)


def test_other_repository_is_refused_with_a_message_git_shows(world: dict[str, object]) -> None:
    """A repository not granted is refused, and git prints the gateway's reason."""
    done = _inside(world, "clone", "-q", "https://github.com/octo/other", "other")
    assert done.returncode != 0
    assert "airlock: repository 'octo/other' is not granted to this run" in done.stderr
    assert "--repo octo/other" in done.stderr
    paths = [path for _, path, _ in world["host"].seen]  # type: ignore[attr-defined]
    assert not any("other" in path for path in paths)
    time.sleep(0.2)  # the log's next flush
    records = read_records(world["cfg"].audit_log)  # type: ignore[attr-defined]
    refused = [r for r in records if r.get("host") == GATEWAY_HOST and r["decision"] == "deny"]
    assert refused and "'octo/other' is not granted" in refused[0]["reason"]


def test_read_only_repository_refuses_a_push(world: dict[str, object]) -> None:
    """:ro lets git clone but not push; git shows why."""
    tmp: Path = world["tmp"]  # type: ignore[assignment]
    done = _inside(world, "clone", "-q", "https://github.com/octo/readonly", "ro")
    assert done.returncode == 0, done.stderr
    work = tmp / "ro"
    (work / "NEW").write_text("change\n")
    git("add", "NEW", cwd=work)
    git("commit", "-q", "-m", "second", cwd=work)
    pushed = _inside(world, "push", "-q", "origin", "main", cwd=work)
    assert pushed.returncode != 0
    assert "read-only in this run" in pushed.stderr
    log = git("log", "--format=%s", "main", cwd=world["root"] / "octo" / "readonly.git")  # type: ignore[operator]
    assert log.stdout.split() == ["first"]


def test_token_is_nowhere_inside(world: dict[str, object]) -> None:
    """The environment, the clone's files and git config, the proxy's answers (even when the
    code host echoes the token) and the audit log hold no trace of the token."""
    tmp: Path = world["tmp"]  # type: ignore[assignment]
    env: dict[str, str] = world["env"]  # type: ignore[assignment]
    _no_token(*env.keys(), *env.values())
    done = _inside(world, "clone", "-q", "https://github.com/octo/allowed", "c")
    assert done.returncode == 0, done.stderr
    for path in (tmp / "c").rglob("*"):
        if path.is_file():
            _no_token(path.read_bytes().decode("latin-1"))
    leaky = _curl_gateway(world, "/octo/leaky.git/info/refs?service=git-upload-pack")
    assert "debug: you sent" in leaky
    assert "[REDACTED:git_token]" in leaky
    _no_token(leaky)
    cfg = world["cfg"]
    _no_token(cfg.audit_log.read_text())  # type: ignore[attr-defined]
    gate = world["gate"]
    _no_token(repr(gate.config), str(gate.config.token))  # type: ignore[attr-defined]


def test_gateway_host_is_refused_without_a_gateway(tmp_path: Path) -> None:
    """Without --repo, the gateway's name is a host like any other: not allowed, refused."""
    with running(config(tmp_path)) as (proxy_url, _):
        done = subprocess.run(
            [
                "curl",
                "-sS",
                "--max-time",
                "20",
                "--proxy",
                proxy_url,
                f"http://{GATEWAY_HOST}/octo/allowed.git/info/refs?service=git-upload-pack",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    assert "refused" in done.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("octo/widgets", RepoGrant("octo", "widgets")),
        ("octo/widgets.git", RepoGrant("octo", "widgets")),
        ("octo/widgets:ro", RepoGrant("octo", "widgets", read_only=True)),
        ("octo/widgets.GIT:ro", RepoGrant("octo", "widgets", read_only=True)),
        ("octo/widgets.Git.git", RepoGrant("octo", "widgets.Git")),
    ],
)
def test_repo_grants_parse(text: str, expected: RepoGrant) -> None:
    """OWNER/NAME and OWNER/NAME:ro are read; a .git suffix, in any case, is dropped."""
    assert RepoGrant.parse(text) == expected


@pytest.mark.parametrize("text", ["octo", "octo/", "/x", "octo/w:rw", "a/b/c", "../x", "o/../x"])
def test_bad_repo_grants_are_usage_errors(text: str) -> None:
    """Anything else is refused with the valid form shown."""
    with pytest.raises(UsageError, match="OWNER/NAME"):
        RepoGrant.parse(text)


@pytest.mark.parametrize(
    ("environ", "source"),
    [
        ({"GH_TOKEN": "ghp_" + "a" * 36}, "GH_TOKEN"),
        ({"GITHUB_TOKEN": "ghp_" + "b" * 36}, "GITHUB_TOKEN"),
        ({"GH_TOKEN": "ghp_" + "a" * 36, "GITHUB_TOKEN": "ghp_" + "b" * 36}, "GH_TOKEN"),
    ],
)
def test_token_sources(environ: dict[str, str], source: str) -> None:
    """GH_TOKEN, then GITHUB_TOKEN; the token's repr names the source, never the value."""
    token = load_token(environ)
    assert token.source == source
    assert token.reveal() not in repr(token)


def test_a_token_file_with_other_hard_links_is_refused(tmp_path: Path) -> None:
    """A hard link elsewhere would show the token inside, where only the named file is
    hidden: such a file is refused."""
    path = tmp_path / "token"
    path.write_text("s3cr3t-token-of-a-code-host\n")
    (tmp_path / "elsewhere").hardlink_to(path)
    with pytest.raises(UsageError, match="other hard links"):
        load_token({}, path)


def test_token_file_and_missing_token(tmp_path: Path) -> None:
    """A token file wins; no token at all is an error that says where to put one."""
    path = tmp_path / "token"
    path.write_text("s3cr3t-token-of-a-code-host\n")
    assert load_token({"GH_TOKEN": "x"}, path).reveal() == "s3cr3t-token-of-a-code-host"
    with pytest.raises(UsageError, match="GH_TOKEN or GITHUB_TOKEN"):
        load_token({})
    with pytest.raises(UsageError, match="--git-token-file"):
        load_token({}, tmp_path / "missing")


@pytest.mark.parametrize("compressed", [False, True], ids=["asked_plain", "asked_gzip"])
def test_the_token_is_scrubbed_in_every_form_the_code_host_echoes(
    world: dict[str, object], compressed: bool
) -> None:
    """A code host echoing the credential in the status line, a header's name, base64 or
    URL-encoded, or in a body it would compress: none of it reaches the sandbox. The gateway
    asks for an answer that is not compressed, whatever git asked for."""
    options = ("--compressed",) if compressed else ()
    said = _curl_gateway(world, "/octo/sly.git/info/refs?service=git-upload-pack", *options)
    assert said.startswith("HTTP/1.1 200")
    assert "b64 " in said and "gzipped" not in said
    assert "forged" not in said  # the code host's own X-Airlock-Refused is not passed on
    time.sleep(0.2)  # the log's next flush
    records = read_records(world["cfg"].audit_log)  # type: ignore[attr-defined]
    assert not [r for r in records if r.get("decision") == "deny"]
    _no_token(said)
    _no_token(said.lower())


def test_an_info_refs_query_naming_the_service_twice_is_refused(
    world: dict[str, object],
) -> None:
    """``service`` given twice (the second percent-encoded, as a code host decodes it): the
    gateway cannot tell which the code host will serve, so it refuses."""
    said = _curl_gateway(
        world, "/Octo/readonly.git/info/refs?service=git-upload-pack&%73ervice=git-receive-pack"
    )
    assert said.startswith("HTTP/1.1 403")
    assert "only smart HTTP" in said


_GIT_PATHS = (
    "/Octo/readonly.git/info/refs?service=git-upload-pack",
    "/octo/allowed.git/git-upload-pack",
)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        *((method, path) for method in ("PUT", "DELETE", "PATCH", "PROPFIND", "MKCOL", "HEAD")
          for path in _GIT_PATHS),
        ("POST", _GIT_PATHS[0]),
        ("GET", _GIT_PATHS[1]),
        ("OPTIONS", "/octo/allowed.git/git-receive-pack"),
    ],
)  # fmt: skip
def test_only_gits_own_requests_go_on(world: dict[str, object], method: str, path: str) -> None:
    """GET on info/refs and POST on git-upload-pack and git-receive-pack alone reach the code
    host, for a repository granted :ro or not: any other method is refused 405 with the one
    git uses, and never carries the token anywhere (an answer to HEAD has no body)."""
    options = ("-I",) if method == "HEAD" else ("-X", method, "--data-binary", "x")
    said = _curl_gateway(world, path, *options)
    assert said.startswith("HTTP/1.1 405"), said
    assert "allow: " + ("get" if "info/refs" in path else "post") in said.lower()
    if method != "HEAD":
        assert "git's requests alone go on" in said
    assert not world["host"].seen  # type: ignore[attr-defined]
    time.sleep(0.2)  # the log's next flush
    records = read_records(world["cfg"].audit_log)  # type: ignore[attr-defined]
    assert [r["decision"] for r in records if r.get("host") == GATEWAY_HOST] == ["deny"]


def _raw_request(world: dict[str, object], request: bytes) -> bytes:
    """``request`` sent as it is to the run's proxy; the whole answer, once it closes."""
    port = int(str(world["proxy"]).rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as conn:
        conn.sendall(request)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    return answer


def test_a_byte_that_is_not_ascii_in_a_header_is_refused_400(
    world: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    """A header git sends (``User-Agent``) holding a byte httpx cannot send: a 400 that says
    so, no unhandled exception, and nothing reaches the code host."""
    answer = _raw_request(
        world,
        b"GET http://" + GATEWAY_HOST.encode() + b"/octo/allowed.git/info/refs"
        b"?service=git-upload-pack HTTP/1.1\r\n"
        b"Host: " + GATEWAY_HOST.encode() + b"\r\nUser-Agent: a\xffb\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"User-Agent header holds a byte that is not printable ASCII" in answer
    assert not world["host"].seen  # type: ignore[attr-defined]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


@pytest.mark.parametrize("status", [204, 304])
def test_an_answer_without_a_body_comes_back_without_one(
    world: dict[str, object], status: int
) -> None:
    """204 and 304 have no body: the gateway adds no framing for one, and the answer reaches
    git as the code host gave it, on a connection that serves the next request."""
    path = "/octo/bodiless.git/git-upload-pack"
    asked = f"Content-Length: 10\r\n\r\nstatus={status}"
    request = (
        f"POST http://{GATEWAY_HOST}{path} HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\n{asked}"
        f"POST http://{GATEWAY_HOST}{path} HTTP/1.1\r\nHost: {GATEWAY_HOST}\r\n"
        f"Connection: close\r\n{asked}"
    ).encode()
    answer = _raw_request(world, request).decode("latin-1")
    first = f"HTTP/1.1 {status} "
    assert answer.startswith(first) and answer.count(first) == 2, answer
    assert "transfer-encoding" not in answer.lower() and "\r\n0\r\n" not in answer
    assert 'etag: "1"' in answer.lower()


def test_connect_to_the_gateways_name_is_refused(world: dict[str, object]) -> None:
    """The gateway takes plain HTTP; a tunnel to its name is refused, in any case."""
    for name in (GATEWAY_HOST, GATEWAY_HOST.upper() + "."):
        said = _curl_gateway(world, ":80/octo/allowed.git/info/refs", "-p", host=name)
        assert "403" in said and "not CONNECT" in said


def test_the_gateway_listens_on_a_socket_only_its_user_reaches(
    world: dict[str, object],
) -> None:
    """A Unix socket in a folder of mode 0700: no TCP port on the host's loopback that any
    process, or a web page, could use with the run's token."""
    address = Path(str(world["address"]))
    assert address.is_socket()
    assert stat.S_IMODE(address.parent.stat().st_mode) == 0o700


def test_the_same_repository_granted_twice_differently_is_an_error() -> None:
    token = load_token({"GH_TOKEN": TOKEN})
    with pytest.raises(UsageError, match="name the same repository"):
        GatewayConfig((RepoGrant.parse("octo/w:ro"), RepoGrant.parse("Octo/W")), token)
    same = GatewayConfig((RepoGrant.parse("octo/w:ro"), RepoGrant.parse("octo/w:ro")), token)
    assert same.grants["octo/w"].read_only


@pytest.mark.parametrize(
    "upstream",
    [
        f"http://x-access-token:{TOKEN}@127.0.0.1:9",
        f"https://{TOKEN}@github.com/",
        f"ftp://x:{TOKEN}@github.com",
        f"x-access-token:{TOKEN}@github.com",
    ],
)
def test_an_upstream_url_with_a_user_or_password_is_refused(upstream: str) -> None:
    """A token in --git-upstream's URL would reach the sandbox (git's URL rewriting) and the
    gateway's messages: refused, saying where the token goes, without showing it."""
    token = load_token({"GH_TOKEN": TOKEN})
    with pytest.raises(UsageError, match="--git-upstream") as refused:
        GatewayConfig((RepoGrant.parse("octo/w"),), token, upstream)
    assert TOKEN not in str(refused.value)
    assert "github.com" in str(refused.value) or "127.0.0.1:9" in str(refused.value)
    if upstream.startswith("http"):
        assert "GH_TOKEN or GITHUB_TOKEN" in str(refused.value)
        assert "--git-token-file" in str(refused.value)


def test_the_gateway_counts_against_the_upload_budget(tmp_path: Path) -> None:
    """Pushes through the gateway spend the run's upload budget like any upload: once it is
    used up, new connections to the gateway are refused too, and nothing more reaches the
    code host."""
    root = tmp_path / "host"
    make_repo(root, "octo", "allowed")
    with code_host(root) as host:
        upstream = f"http://127.0.0.1:{host.server_address[1]}"
        gateway_config = GatewayConfig(
            (RepoGrant.parse("octo/allowed"),), load_token({"GH_TOKEN": TOKEN}), upstream
        )
        with gateway_running(gateway_config) as (_, address):
            cfg = config(tmp_path, gateway=address, limits=Limits(max_upload_mb=0.5))
            with running(cfg) as (proxy_url, _):
                world = {"proxy": proxy_url}
                answers = [
                    _curl_gateway(
                        world,
                        "/octo/allowed.git/git-upload-pack",
                        "-H",
                        "Connection: close",
                        "--data-binary",
                        "@-",
                        stdin=b"0" * 300_000,
                    )
                    for _ in range(4)
                ]
        posted = [path for method, path, _ in host.seen if method == "POST"]
    assert sum("upload budget" in answer for answer in answers) >= 2
    assert len(posted) <= 2


def _readable(text: str) -> bool:
    """Whether the token can be read back from ``text`` by undoing a usual encoding: percent,
    JSON or ``\\x`` escapes, HTML character references, hex, base64 (or base64url) from any
    offset, a ``Basic`` credential in what base64 gave; in any case."""
    tried = [text, unquote(text), html.unescape(text)]
    with contextlib.suppress(ValueError):
        tried.append(bytes.fromhex(text).decode("latin-1"))
    with contextlib.suppress(ValueError):
        tried.append(text.encode("latin-1").decode("unicode_escape"))
    for rounds in range(2):
        for found in list(tried):
            start = found.find("Basic ") + 6 if rounds else 0
            for offset in range(3):
                b64 = ("A" * offset + found[start:]).replace("-", "+").replace("_", "/")
                b64 = b64[: len(b64) - (len(b64) % 4 == 1)]
                b64 += "=" * (-len(b64) % 4)
                with contextlib.suppress(ValueError):
                    tried.append(base64.b64decode(b64).decode("latin-1"))
    return any(TOKEN.lower() in found.lower() for found in tried)


ECHOED = (
    "plain",
    "upper",
    "lower",
    "swapped",
    "basic_unpadded",
    "basic_url_lowercase",
    "basic_urlsafe",
    "b64_unpadded",
    "b64_offset1",
    "b64_offset2",
    "b64_header",
    "b64_header1",
    "b64_header2",
    "hex",
    "hex_upper",
    "json_escapes",
    "json_escapes_upper",
    "percent_escapes",
    "x_escapes",
    "html_decimal",
    "html_hex",
)


def test_every_echoed_form_can_be_read_back_without_the_gateway() -> None:
    """The forms the code host echoes each hold the token (or the test would prove nothing)."""
    authorization = "Basic " + _BASIC
    assert all(_readable(echoed(form, authorization)) for form in ECHOED)


@pytest.mark.parametrize("form", ECHOED)
def test_the_token_echoed_in_an_encoding_is_scrubbed(world: dict[str, object], form: str) -> None:
    """The code host echoes the token or git's credential in the body and a header, in a
    usual encoding: the token's letters in another case, base64 without padding or starting
    at any offset of a longer text (a whole ``Authorization`` line), base64url, percent escapes
    in lower case, hex, JSON escapes. None of it can be read back inside."""
    said = _curl_gateway(world, "/octo/echo.git/git-upload-pack", "--data", f"form={form}")
    assert said.startswith("HTTP/1.1 200")
    body = said.split("ECHO[", 1)[1].split("]\n", 1)[0]
    at = said.lower().index("\r\nx-echo: ") + len("\r\nx-echo: ")
    header = said[at:].split("\r\n", 1)[0]
    for text in (body, header):
        assert "[REDACTED:git_token]" in text
        assert not _readable(text), text


@pytest.mark.parametrize("form", ["plain", "hex", "b64_offset2", "json_escapes"])
def test_a_form_cut_between_two_reads_is_scrubbed(world: dict[str, object], form: str) -> None:
    """The code host sends the body in two parts a moment apart, cut inside the token's form:
    the gateway holds back what may begin one until the rest has come."""
    said = _curl_gateway(world, "/octo/echo.git/git-upload-pack", "--data", f"form={form}&cut=25")
    body = said.split("ECHO[", 1)[1].split("]\n", 1)[0]
    assert "[REDACTED:git_token]" in body
    assert not _readable(body), body


def test_base64_of_a_token_with_other_characters_is_found_in_every_spelling() -> None:
    """A token whose base64 holds ``+`` and ``/``: found as base64, base64url, and with those
    percent-escaped in either case, padded or not."""
    token = "tok~en>?>?>?~~~with-more>>>?"
    found = re.compile(secret_pattern(token)[0])
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    assert "+" in basic and "/" in basic and basic.endswith("=")
    spellings = [
        basic,
        basic.rstrip("="),
        basic.replace("+", "-").replace("/", "_"),
        quote(basic, safe=""),
        re.sub("%..", lambda escape: escape[0].lower(), quote(basic, safe="")),
    ]
    for spelled in spellings:
        assert found.search(f"x {spelled} y".encode()), spelled
    assert not found.search(basic[: len(basic) // 2].encode())


def test_the_scrubber_finds_a_form_wherever_the_stream_is_cut() -> None:
    """Fed in two pieces cut at every byte, the scrubber gives what it gives fed at once."""
    pattern, longest = secret_pattern(TOKEN)
    compiled = re.compile(pattern)
    data = ("x" * 50 + echoed("json_escapes", "") + " " + echoed("b64_offset1", "")).encode()
    whole = _Scrubber(compiled, longest)
    at_once = whole.feed(data) + whole.finish()
    assert at_once.count(b"[REDACTED:git_token]") == 2
    for cut in range(len(data) + 1):
        scrubber = _Scrubber(compiled, longest)
        out = scrubber.feed(data[:cut]) + scrubber.feed(data[cut:]) + scrubber.finish()
        assert out == at_once, cut


def test_a_token_cut_between_two_side_band_packets_is_scrubbed(world: dict[str, object]) -> None:
    """The code host's progress message and error each carry the token cut between two
    packets, which git joins before it shows them: git shows the messages, scrubbed."""
    done = _inside(
        world, "-c", "protocol.version=0", "clone", "https://github.com/octo/sideband", "sb"
    )
    assert done.returncode != 0
    assert "remote: remote says: [REDACTED:git_token] ok" in done.stderr, done.stderr
    assert "error [REDACTED:git_token]" in done.stderr, done.stderr
    _no_token(done.stdout, done.stderr)
    assert TOKEN[:12] not in done.stderr


def _unpacked(data: bytes) -> list[bytes]:
    """Packet lines back into payloads (the flush packet as ``b"0000"``); the length of each
    is checked to be git's."""
    out = []
    while data:
        size = int(data[:4], 16)
        assert size in (0, 1, 2) or 4 <= size <= 65520
        out.append(data[4:size] if size >= 4 else data[:4])
        data = data[max(size, 4) :]
    return out


def test_side_band_messages_are_scrubbed_as_streams_and_framed_again() -> None:
    """Channels 2 and 3 are each scrubbed as one stream across packets and framed again with
    their lengths, before the flush packet that ends them; the pack (channel 1) and other
    lines go as they came; a message longer than a packet once scrubbed is cut in two."""
    pattern, longest = secret_pattern(TOKEN)
    scrubbers = lambda: _Scrubber(re.compile(pattern), longest)  # noqa: E731
    pack = b"\x01PACK" + bytes(range(256)) + TOKEN[:10].encode()
    answer = (
        packets(
            b"NAK\n",
            b"\x02Counting " + TOKEN[:7].encode(),
            pack,
            b"\x02" + TOKEN[7:].encode() + b"\r",
            b"\x03x" * 2 + TOKEN[:30].encode(),
            b"\x03" + TOKEN[30:].encode(),
            b"\x02" + b"p" * 65000,
        )
        + b"0000"
        + b"PACK raw after"
    )
    progress = b"Counting [REDACTED:git_token]\r" + b"p" * 65000
    error = b"x\x03x[REDACTED:git_token]"
    for cut in (1, 3, 5, 17, 64, len(answer)):
        bands = _Sideband(scrubbers)
        out = b"".join(bands.feed(answer[at : at + cut]) for at in range(0, len(answer), cut))
        out += bands.finish()
        assert out.endswith(b"0000PACK raw after")
        unpacked = _unpacked(out.removesuffix(b"PACK raw after"))
        assert [p for p in unpacked if p[:1] not in (b"\x02", b"\x03")] == [b"NAK\n", pack, b"0000"]
        assert b"".join(p[1:] for p in unpacked if p[:1] == b"\x02") == progress
        assert b"".join(p[1:] for p in unpacked if p[:1] == b"\x03") == error


def _to_gateway(world: dict[str, object], *parts: bytes, pause: float = 0.0) -> bytes:
    """``parts`` sent as they are straight to the gateway's socket (not through the proxy), each
    ``pause`` seconds after the one before (until the gateway closes the connection); the
    whole answer, once the gateway closes it (or after 5 s without a byte)."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(5)
        conn.connect(str(world["address"]))
        for index, part in enumerate(parts):
            time.sleep(pause if index else 0)
            try:
                conn.sendall(part)
            except OSError:  # the gateway closed the connection: it reads no more
                break
        with contextlib.suppress(OSError):
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        with contextlib.suppress(TimeoutError):
            while data := conn.recv(65536):
                answer += data
    return answer


@pytest.mark.parametrize(
    ("method", "asked", "sent"),
    [
        (
            "GET",
            "/octo/allowed.git/info/refs?service=git-upload-pack&service%5B%5D=git-receive-pack"
            "&Service=git-receive-pack",
            "/octo/allowed.git/info/refs?service=git-upload-pack",
        ),
        (
            "POST",
            "/octo/allowed.git/git-upload-pack?x=1&service=git-receive-pack&url=http://evil/",
            "/octo/allowed.git/git-upload-pack",
        ),
    ],
)
def test_only_the_checked_service_goes_on_in_the_query(
    world: dict[str, object], method: str, asked: str, sent: str
) -> None:
    """The code host is asked for the path the gateway checked, with ``?service=`` the service
    it checked on ``info/refs`` and no query on the POSTs: what else the query held (another
    spelling of ``service``, a URL) never reaches it with the token."""
    options = ("--data-binary", "0000") if method == "POST" else ()
    _curl_gateway(world, asked, *options)
    host = world["host"]
    assert [(m, path) for m, path, _ in host.seen] == [(method, sent)]  # type: ignore[attr-defined]


def test_a_path_cannot_cut_or_forge_the_logged_reason(world: dict[str, object]) -> None:
    """A ``;`` in the path (the gateway's refusals used to be cut at the first one) leaves
    the logged reason whole, the repository quoted as asked: the log cannot be made to show a
    granted repository refused. git still gets the hint after the reason."""
    said = _curl_gateway(world, "/octo/allowed;/info/refs?service=git-upload-pack")
    assert "add --repo octo/allowed; to reach it" in said
    time.sleep(0.2)  # the log's next flush
    records = read_records(world["cfg"].audit_log)  # type: ignore[attr-defined]
    [refused] = [r for r in records if r.get("host") == GATEWAY_HOST]
    assert refused["decision"] == "deny"
    assert refused["reason"].startswith(
        "git gateway: repository 'octo/allowed;' is not granted to this run (granted: "
    ), refused["reason"]
    assert "add --repo" not in refused["reason"]


def test_an_answer_the_code_host_cuts_off_is_cut_off_for_git_at_once(
    world: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    """The code host closes the connection in the middle of its answer: the gateway closes
    its own at once (git sees an answer cut off, not one that never ends: the proxy resets
    its connection, :func:`~airlock.egress.response.cut_off`), without an unhandled
    exception, keeps why, and the audit log records the request failed (502)."""
    started = time.monotonic()
    said = _curl_gateway(world, "/octo/cutoff.git/info/refs?service=git-upload-pack")
    assert time.monotonic() - started < 10
    assert said.startswith("HTTP/1.1 200") and "curl: (56) Recv failure" in said, said
    time.sleep(0.2)  # the gateway's thread done with it, and the log's next flush
    assert not [r for r in caplog.records if r.levelname == "ERROR"], caplog.records
    gate = world["gate"]
    [error] = gate.errors  # type: ignore[attr-defined]
    assert "was cut off" in error and "127.0.0.1" in error, error
    records = read_records(world["cfg"].audit_log)  # type: ignore[attr-defined]
    [record] = [r for r in records if r.get("host") == GATEWAY_HOST]
    assert record["status"] == 502 and record["error"], record


def test_a_body_the_code_host_did_not_take_whole_ends_the_connection(
    world: dict[str, object],
) -> None:
    """The code host answers a POST without taking its whole body (an answer it sent ahead,
    then the connection reset): what is left of the body must not be read as the next
    requests (each one would reach the code host with the token). The gateway closes the
    connection after that answer, and says so in it."""
    refs = b"GET /octo/early.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n"
    first = _to_gateway(world, refs)
    assert first.startswith(b"HTTP/1.1 200") and b"refs" in first, first
    smuggled = (
        b"GET /octo/allowed.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    body = [b"0000", *[smuggled] * 6]
    head = (
        b"POST /octo/early.git/git-upload-pack HTTP/1.1\r\nHost: x\r\n"
        b"Content-Length: %d\r\n\r\n" % sum(map(len, body))
    )
    answer = _to_gateway(world, head + body[0], *body[1:], pause=0.2)
    assert answer.startswith(b"HTTP/1.1 200") and b"ahead" in answer, answer
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    assert b"\r\nConnection: close\r\n" in answer.split(b"\r\n\r\n", 1)[0] + b"\r\n"
    assert not [path for _, path, _ in world["host"].seen if "allowed" in path]  # type: ignore[attr-defined]


@pytest.mark.parametrize("repository", ["allowed", "other"], ids=["forwarded", "drained"])
def test_a_body_llhttp_refuses_is_refused(world: dict[str, object], repository: str) -> None:
    """A chunk extension llhttp refuses (an unfinished quoted string), sent straight to the
    gateway (the proxy would refuse it itself): a body that would go on to the code host is
    refused ``400`` (the code host gets no whole request), and one read and dropped after a
    refusal ends the connection; either way the next request on it is not read."""
    request = (
        b"POST /octo/" + repository.encode() + b".git/git-upload-pack HTTP/1.1\r\n"
        b"Host: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'4;a="b\r\n0000\r\n0\r\n\r\n'
        b"GET /octo/allowed.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answer = _to_gateway(world, request)
    assert answer.count(b"HTTP/1.1 ") == 1, answer
    if repository == "allowed":
        assert answer.startswith(b"HTTP/1.1 400") and b"malformed request" in answer, answer
    else:
        assert b"is not granted to this run" in answer, answer
    assert not world["host"].seen  # type: ignore[attr-defined]


def test_a_repository_named_with_git_in_another_case_is_reached(
    world: dict[str, object],
) -> None:
    """``.GIT`` is dropped like ``.git`` (owner and name are matched in any case): git clones
    https://github.com/octo/allowed.GIT."""
    done = _inside(world, "clone", "-q", "https://github.com/octo/allowed.GIT", "upper")
    assert done.returncode == 0, done.stderr
    assert (Path(str(world["tmp"])) / "upper" / "README").read_text() == "octo/allowed\n"


def test_a_token_cut_in_a_pushs_report_is_scrubbed(world: dict[str, object]) -> None:
    """A push's report (side band channel 1 of git-receive-pack's answer: git's status lines)
    refuses the push with the token, its line cut between two packets, which git joins: git
    shows the refusal, scrubbed."""
    tmp: Path = world["tmp"]  # type: ignore[assignment]
    work = tmp / "work"
    assert _inside(world, "clone", "-q", "https://github.com/octo/allowed", "work").returncode == 0
    (work / "NEW").write_text("change\n")
    git("add", "NEW", cwd=work)
    git("commit", "-q", "-m", "second", cwd=work)
    pushed = _inside(world, "push", "https://github.com/octo/sideband", "main", cwd=work)
    assert pushed.returncode != 0
    assert "(denied to [REDACTED:git_token])" in pushed.stderr, pushed.stderr
    _no_token(pushed.stdout, pushed.stderr)
    assert TOKEN[:15] not in pushed.stderr


def test_a_pushs_report_is_scrubbed_line_by_line_and_framed_again() -> None:
    """Channel 1 of git-receive-pack's answer holds git's packet lines: each is scrubbed whole,
    wherever the side band's packets cut it, and framed again with its new length; the
    packets of channels 2 and 3 are scrubbed as before, and the side band's own flush ends
    it all."""
    pattern, longest = secret_pattern(TOKEN)
    scrubbers = lambda: _Scrubber(re.compile(pattern), longest)  # noqa: E731
    report = packets(b"unpack ok\n", b"ng refs/heads/x no " + TOKEN.encode() + b"\n") + b"0000"
    answer = packets(
        b"\x01" + report[:30], b"\x02hi " + TOKEN[:9].encode(), b"\x01" + report[30:],
        b"\x02" + TOKEN[9:].encode() + b"\n",
    ) + b"0000"  # fmt: skip
    for cut in (1, 3, 5, 17, len(answer)):
        bands = _Sideband(scrubbers, report=True)
        out = b"".join(bands.feed(answer[at : at + cut]) for at in range(0, len(answer), cut))
        out += bands.finish()
        unpacked = _unpacked(out)
        assert unpacked[-1] == b"0000"
        inner = b"".join(p[1:] for p in unpacked if p[:1] == b"\x01")
        assert _unpacked(inner) == [
            b"unpack ok\n",
            b"ng refs/heads/x no [REDACTED:git_token]\n",
            b"0000",
        ]
        assert b"".join(p[1:] for p in unpacked if p[:1] == b"\x02") == b"hi [REDACTED:git_token]\n"


@pytest.mark.parametrize(
    "framing",
    [b"Content-Length: %d\r\n\r\n", b"Transfer-Encoding: chunked\r\n\r\n%x\r\n"],
    ids=["length", "chunked"],
)
def test_a_get_with_a_body_is_refused(world: dict[str, object], framing: bytes) -> None:
    """A code host that does not read a GET's body would read it as a request of its own,
    ahead of the next one the gateway adds the token to (a push to a :ro repository, the
    token sent to a place the sandbox reads): refused 400, and the code host asked nothing."""
    smuggled = b"POST /octo/readonly.git/git-receive-pack HTTP/1.1\r\nX-Junk: "
    head = b"GET /octo/allowed.git/info/refs?service=git-upload-pack HTTP/1.1\r\nHost: x\r\n"
    tail = b"\r\n0\r\n\r\n" if b"chunked" in framing else b""
    answer = _to_gateway(world, head + framing % len(smuggled) + smuggled + tail)
    assert answer.startswith(b"HTTP/1.1 400"), answer
    assert b"a body on a GET request: refused" in answer
    assert not world["host"].seen  # type: ignore[attr-defined]


def test_a_request_with_a_body_is_not_sent_on_a_kept_connection(
    world: dict[str, object],
) -> None:
    """A clone's POST goes to the code host with ``Connection: close``: what the code host
    leaves unread of a body the sandbox wrote is never read ahead of the next request."""
    clone = _inside(world, "clone", "-q", "https://github.com/octo/allowed", "allowed")
    assert clone.returncode == 0, clone.stderr
    host = world["host"]
    sent = list(zip(host.seen, host.connection, strict=True))  # type: ignore[attr-defined]
    assert {connection for (method, _, _), connection in sent if method == "POST"} == {"close"}
    assert "close" not in {connection for (method, _, _), connection in sent if method == "GET"}
