"""``airlock serve`` and ``airlock fetch`` as real subprocesses, talking over loopback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import write_json
from tests.servers import _Site, airlock_serve, origin_site

AIRLOCK = [sys.executable, "-m", "airlock"]


@pytest.fixture
def blocklist(tmp_path: Path) -> Path:
    path = tmp_path / "blocklist.txt"
    path.write_text("# test list\n0.0.0.0 blocked.test\n")
    return path


@pytest.fixture
def service(blocklist: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``airlock serve --blocklist FILE --port 0``; yields its URL once it listens."""
    with airlock_serve("--blocklist", str(blocklist)) as served:
        yield served


@pytest.fixture
def site() -> Iterator[_Site]:
    with origin_site() as running:
        yield running


def fetch(service: str | None, *args: str, port: int) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if service is not None:
        env["AIRLOCK_DOMAIN_SAFETY_URL"] = service
    pins = [
        f"--resolve={host}:{port}:127.0.0.1"
        for host in ("site.test", "blocked.test", "denied.test")
    ]
    # The site is on loopback: the user allows it, as anyone fetching from their machine must.
    allowed = write_json(
        Path(env["HOME"]) / "loopback-allowed.json",
        {"permissions": {"allow": ["WebFetch(domain:127.0.0.1)"]}},
    )
    return subprocess.run(
        [*AIRLOCK, "fetch", *args, *pins, "--settings", str(allowed)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_serve_answers_reference_shape(service: tuple[str, subprocess.Popen[str]]) -> None:
    """airlock serve answers GET /api/web/domain_info with the domain and can_fetch, on 127.0.0.1."""
    url, _ = service
    assert httpx.get(f"{url}/api/web/domain_info?domain=x.blocked.test").json() == {
        "domain": "x.blocked.test",
        "can_fetch": False,
    }
    assert httpx.get(f"{url}/api/web/domain_info?domain=site.test").json()["can_fetch"] is True


def test_fetch_prints_markdown(service: tuple[str, subprocess.Popen[str]], site: _Site) -> None:
    """airlock fetch prints the page as Markdown and exits 0."""
    port = site.server_address[1]
    done = fetch(service[0], f"http://site.test:{port}/page", port=port)
    assert done.returncode == 0, done.stderr
    assert "# Hello airlock" in done.stdout and "<h1>" not in done.stdout


def test_fetch_json_carries_prompt(service: tuple[str, subprocess.Popen[str]], site: _Site) -> None:
    """--json prints the content, the checks that admitted it and the prompt."""
    import json

    port = site.server_address[1]
    done = fetch(
        service[0], f"http://site.test:{port}/text", "--json", "--prompt", "summarise", port=port
    )
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["prompt"] == "summarise" and body["content"] == "plain words ünïcode\n"
    assert any("domain-safety service" in check for check in body["checks"])


def test_fetch_blocked_exits_3(service: tuple[str, subprocess.Popen[str]], site: _Site) -> None:
    """A host the service blocks: exit 3, the preflight's answer on stderr, nothing fetched."""
    port = site.server_address[1]
    done = fetch(service[0], f"http://blocked.test:{port}/page", port=port)
    assert done.returncode == 3
    assert "blocked.test is blocked" in done.stderr and done.stdout == ""
    assert site.hosts == []


def test_fetch_denied_by_project_rule(
    service: tuple[str, subprocess.Popen[str]], site: _Site, project: Path
) -> None:
    """A deny rule in project settings: exit 3 with the rule and the file named."""
    settings = write_json(
        project / ".claude" / "settings.json",
        {"permissions": {"deny": ["WebFetch(domain:*.test)"]}},
    )
    port = site.server_address[1]
    done = fetch(service[0], f"http://site.test:{port}/page", port=port)
    assert done.returncode == 3
    assert "WebFetch(domain:*.test)" in done.stderr and str(settings) in done.stderr


def test_fetch_redirect_to_blocked_host(
    service: tuple[str, subprocess.Popen[str]], site: _Site
) -> None:
    """A redirect to a blocked host is not followed: exit 3."""
    port = site.server_address[1]
    to = quote(f"http://blocked.test:{port}/page", safe="")
    done = fetch(service[0], f"http://site.test:{port}/redirect?to={to}", port=port)
    assert done.returncode == 3
    assert "redirect from site.test to blocked.test not followed" in done.stderr
    assert site.hosts == [f"site.test:{port}"]


def test_fetch_fails_closed(site: _Site) -> None:
    """With the service unreachable, fetch refuses and says how to go on."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    port = site.server_address[1]
    done = fetch(dead, f"http://site.test:{port}/page", port=port)
    assert done.returncode == 3
    assert (
        "site.test" in done.stderr
        and dead in done.stderr
        and "skipWebFetchPreflight" in done.stderr
    )
    assert site.hosts == []


def test_skip_preflight_setting(site: _Site, project: Path) -> None:
    """skipWebFetchPreflight: true in project settings fetches without any service."""
    write_json(project / ".claude" / "settings.json", {"skipWebFetchPreflight": True})
    port = site.server_address[1]
    done = fetch("http://127.0.0.1:9", f"http://blocked.test:{port}/text", port=port)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "plain words ünïcode\n"


def test_settings_key_for_service(
    service: tuple[str, subprocess.Popen[str]], site: _Site, project: Path
) -> None:
    """airlock.domainSafetyUrl names the service when the variable is unset; private mode works through it."""
    write_json(
        project / ".claude" / "settings.json",
        {"airlock": {"domainSafetyUrl": service[0], "webFetchPrivateMode": True}},
    )
    port = site.server_address[1]
    assert fetch(None, f"http://site.test:{port}/text", port=port).returncode == 0
    blocked = fetch(None, f"http://blocked.test:{port}/text", port=port)
    assert blocked.returncode == 3 and "private mode" in blocked.stderr


def test_sighup_reloads(service: tuple[str, subprocess.Popen[str]], blocklist: Path) -> None:
    """SIGHUP makes airlock serve read its blocklist again."""
    url, process = service
    blocklist.write_text("site.test\n")
    process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    while httpx.get(f"{url}/api/web/domain_info?domain=site.test").json()["can_fetch"]:
        assert time.monotonic() < deadline, "not reloaded"
        time.sleep(0.05)


def test_unknown_blocklist_file(tmp_path: Path) -> None:
    """A missing blocklist file: exit 2, the path named."""
    done = subprocess.run(
        [*AIRLOCK, "serve", "--blocklist", str(tmp_path / "none.txt"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "none.txt" in done.stderr


def test_behind_a_proxy() -> None:
    """With HTTP_PROXY set, the preflight and the page go through the proxy, the hostname alone in the preflight."""
    from tests.servers import forward_proxy

    with forward_proxy() as proxy:
        env = {**os.environ, "HTTP_PROXY": f"http://127.0.0.1:{proxy.server_address[1]}"}
        env["AIRLOCK_DOMAIN_SAFETY_URL"] = "http://safety.corp.test"
        done = subprocess.run(
            [*AIRLOCK, "fetch", "http://intranet.corp.test/docs?token=abc"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "through the proxy\n"
    assert proxy.paths == [
        "http://safety.corp.test/api/web/domain_info?domain=intranet.corp.test",
        "http://intranet.corp.test/docs?token=abc",
    ]


def test_unreadable_rule_reported(
    service: tuple[str, subprocess.Popen[str]], site: _Site, project: Path
) -> None:
    """A WebFetch rule that cannot be read is named on stderr with its file, not silently ignored."""
    settings = write_json(
        project / ".claude" / "settings.json",
        {"permissions": {"deny": ["WebFetch(domain:https://x.test/)"]}},
    )
    port = site.server_address[1]
    done = fetch(service[0], f"http://site.test:{port}/text", port=port)
    assert done.returncode == 0, done.stderr
    assert "ignored rule 'WebFetch(domain:https://x.test/)' in permissions.deny" in done.stderr
    assert str(settings) in done.stderr


def test_serve_port_in_use(blocklist: Path) -> None:
    """A port that is taken: exit 2, saying so."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [*AIRLOCK, "serve", "--blocklist", str(blocklist), "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2 and f"--port {port}" in done.stderr


@pytest.mark.parametrize("code", [404, 410, 500, 503])
def test_fetch_error_status_exits_1(
    service: tuple[str, subprocess.Popen[str]], site: _Site, code: int
) -> None:
    """A page answering HTTP 400 or above: exit 1, the status on stderr, nothing on stdout."""
    port = site.server_address[1]
    done = fetch(service[0], f"http://site.test:{port}/status?code={code}", port=port)
    assert done.returncode == 1, done.stderr
    assert done.stdout == ""
    assert f"answered HTTP {code}" in done.stderr


def test_fetch_error_status_json(service: tuple[str, subprocess.Popen[str]], site: _Site) -> None:
    """With --json an error status is in the result and the exit code is 1."""
    import json

    port = site.server_address[1]
    done = fetch(service[0], f"http://site.test:{port}/missing", "--json", port=port)
    assert done.returncode == 1
    assert json.loads(done.stdout)["status"] == 404
    assert "answered HTTP 404 Not Found" in done.stderr


def test_fetch_help_lists_exit_codes() -> None:
    """airlock fetch --help names each exit code."""
    done = subprocess.run(
        [*AIRLOCK, "fetch", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(done.stdout.split())
    for words in (
        "0 fetched",
        "1 the server answered an error",
        "2 bad input",
        "3 refused by a rule or by the preflight",
    ):
        assert words in text


def test_serve_help_and_behaviour_agree(tmp_path: Path) -> None:
    """serve --help says --blocklist is optional, and serve without it runs without the preflight."""
    shown = subprocess.run(
        [*AIRLOCK, "serve", "--help"], capture_output=True, text=True, timeout=60, check=True
    )
    text = " ".join(shown.stdout.split())
    assert (
        "[--blocklist FILE]" in text
        and "Without --blocklist the domain-safety endpoints are not served" in text
    )
    with airlock_serve("--data-dir", str(tmp_path / "d")) as (url, _):
        assert (
            httpx.get(f"{url}/api/web/domain_info", params={"domain": "a.test"}).status_code == 404
        )
        assert httpx.get(f"{url}/healthz").status_code == 200


def test_serve_reports_invalid_lines(tmp_path: Path) -> None:
    """Invalid lines are counted and numbered on stderr before serve listens."""
    path = tmp_path / "list.txt"
    path.write_bytes(b"good.test\n\xff\xfe\x00\nalso.good.test\n")
    process = subprocess.Popen(
        [*AIRLOCK, "serve", "--blocklist", str(path), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
    )
    try:
        assert process.stderr is not None
        first = process.stderr.readline()
        second = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(10)
        if process.stderr is not None:
            process.stderr.close()
    assert "skipped 1 invalid line of 3 entries (line 2)" in first
    assert "2 blocked domains" in second and "listening on" in second


def test_serve_refuses_binary_file(tmp_path: Path) -> None:
    """A random-bytes blocklist: exit 2 saying it is not a blocklist, nothing served."""
    import random

    path = tmp_path / "random.bin"
    path.write_bytes(random.Random(1).randbytes(100_000))
    done = subprocess.run(
        [*AIRLOCK, "serve", "--blocklist", str(path), "--port", "0"],
        capture_output=True,
        text=True,
        errors="replace",
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "is not a blocklist" in done.stderr and "invalid lines" in done.stderr


@pytest.mark.parametrize(
    ("mode", "where"),
    [
        ("trickle-body", "preflight"),
        ("trickle-headers", "preflight"),
        ("trickle-headers", "page"),
        ("trickle-body", "page"),
    ],
)
def test_timeout_bounds_the_whole_fetch(mode: str, where: str, project: Path) -> None:
    """airlock fetch --timeout 3 ends in about 3 s when the preflight or the page trickles in."""
    from tests.webfetch.hostile import hostile_server

    if where == "page":
        write_json(project / ".claude" / "settings.json", {"skipWebFetchPreflight": True})
    with hostile_server(mode) as slow:
        start = time.monotonic()
        done = fetch(
            slow.url if where == "preflight" else None,
            f"http://site.test:{slow.port}/page",
            "--timeout",
            "3",
            port=slow.port,
        )
        took = time.monotonic() - start
    assert took < 3 + 4, (took, done.stderr)  # 4 s for the interpreter's start on a busy machine
    if where == "preflight":
        assert done.returncode == 3 and "did not answer in time" in done.stderr
    else:
        assert done.returncode == 2 and "3 s time limit ran out" in done.stderr


def test_private_destination_refused_by_the_cli(site: _Site, project: Path) -> None:
    """Without an allow rule for it, a name pinned to loopback is refused (exit 3), naming both ways to allow it."""
    write_json(project / ".claude" / "settings.json", {"skipWebFetchPreflight": True})
    port = site.server_address[1]
    done = subprocess.run(
        [
            *AIRLOCK,
            "fetch",
            f"http://site.test:{port}/text",
            f"--resolve=site.test:{port}:127.0.0.1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, done.stderr
    assert "loopback" in done.stderr and "WebFetch(domain:site.test)" in done.stderr
    assert site.hosts == []


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "[::ffff:127.0.0.1]", "127.1"])
def test_deny_rule_for_loopback_holds_in_the_cli(site: _Site, project: Path, host: str) -> None:
    """A deny rule for 127.0.0.1 in the project's settings refuses every spelling (exit 3)."""
    write_json(
        project / ".claude" / "settings.json",
        {"skipWebFetchPreflight": True, "permissions": {"deny": ["WebFetch(domain:127.0.0.1)"]}},
    )
    done = fetch(None, f"http://{host}:{site.server_address[1]}/text", port=site.server_address[1])
    assert done.returncode == 3 and "permissions.deny" in done.stderr, done.stderr
    assert site.hosts == []
