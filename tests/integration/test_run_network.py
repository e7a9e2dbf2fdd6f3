"""``airlock run``: the proxy is the only way out, and every connection is in the audit log.

Real bubblewrap, the real proxy, real clients inside (curl, git, Python's urllib and httpx,
Node), real servers on the host's 127.0.0.2 (see :mod:`tests.integration.run_servers`).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import airlock, run_script
from tests.conftest import write_json
from tests.integration.run_servers import HOST, git_server, web_site, web_site_v6


def _records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _connections(log: Path) -> list[dict[str, Any]]:
    return [record for record in _records(log) if "host" in record and "decision" in record]


def _run(
    tmp_path: Path, *args: str, script: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--report-json",
        str(tmp_path / "report.json"),
        *args,
        "--",
        "sh",
        "-c",
        script,
        cwd=cwd,
        timeout=180,
    )


def test_direct_fails_and_the_proxy_succeeds_and_is_logged(tmp_path: Path) -> None:
    """From inside, a direct connection to a host server fails; through the proxy it succeeds,
    is in the audit log with its bytes, and the chain verifies."""
    with web_site() as site:
        port = site.server_address[1]
        url = f"http://{HOST}:{port}/page?q=1"
        done = _run(
            tmp_path,
            "--allow",
            f"{HOST}:{port}",
            script=f"curl -sS -m 5 --noproxy '*' {url} && echo DIRECT-REACHED; curl -sS {url}",
        )
    assert done.returncode == 0, done.stderr
    assert "DIRECT-REACHED" not in done.stdout
    assert "hello from the origin: GET /page?q=1" in done.stdout
    assert site.seen == ["GET /page?q=1"]
    [record] = _connections(tmp_path / "audit.jsonl")
    assert (record["host"], record["port"], record["decision"]) == (HOST, port, "allow")
    assert record["bytes_in"] > 0 and record["bytes_out"] > 0
    verified = airlock("audit", "verify", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert verified.returncode == 0, verified.stderr


def test_a_host_not_allowed_is_refused_403_and_logged(tmp_path: Path) -> None:
    """A host no rule allows gets a 403 that says how to allow it; the refusal is logged and
    reported; the origin sees nothing."""
    with web_site() as site:
        port = site.server_address[1]
        done = _run(
            tmp_path,
            "--allow",
            f"{HOST}:{port}",
            "--deny",
            HOST,
            script=f"curl -sS -o /dev/null -w '%{{http_code}}\\n' http://{HOST}:{port}/x; curl -sS http://{HOST}:{port}/x",
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == "403"
    assert "--deny" in done.stdout  # the answer names the rule
    assert site.seen == []
    refusals = [r for r in _connections(tmp_path / "audit.jsonl") if r["decision"] == "deny"]
    assert refusals and all(r["host"] == HOST for r in refusals)
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["refused"] >= 2


@pytest.mark.parametrize(
    "settings",
    [
        pytest.param({"permissions": {"allow": ["WebFetch(domain:{host})"]}}, id="webfetch_rule"),
        pytest.param(
            {"sandbox": {"network": {"allowedDomains": ["{host}"]}}}, id="allowed_domains"
        ),
    ],
)
def test_a_projects_settings_never_reach_a_private_address(
    tmp_path: Path, settings: dict[str, Any]
) -> None:
    """A rule in the project's own settings naming a loopback host does not reach it, even
    when the user allows another host by name on the command line; the 403 says to use
    ``--allow``. The user's own ``--allow`` for that host does reach it."""
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    with web_site() as site:
        port = site.server_address[1]
        text = json.dumps(settings).replace("{host}", HOST)
        (project / ".claude" / "settings.json").write_text(text)
        script = f"curl -sS -w '%{{http_code}}\\n' http://{HOST}:{port}/x"
        refused = _run(
            tmp_path, "--workspace", str(project), "--allow", "example.org", script=script
        )
        assert refused.returncode == 0, refused.stderr
        assert refused.stdout.rstrip().endswith("403"), refused.stdout
        assert "loopback" in refused.stdout and f"--allow {HOST}" in refused.stdout
        assert site.seen == []
        reached = _run(tmp_path, "--workspace", str(project), "--allow", HOST, script=script)
    assert reached.returncode == 0, reached.stderr
    assert reached.stdout.rstrip().endswith("200"), reached.stdout
    assert site.seen == ["GET /x"]


def _refused_in(tmp_path: Path, project: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``airlock run --workspace PROJECT --allow HOST:PORT`` started in ``cwd``, fetching from
    a local site: the fetch is answered 403 (the project's settings refuse the host), and the
    site sees nothing."""
    with web_site() as site:
        port = site.server_address[1]
        done = _run(
            tmp_path,
            "--workspace",
            str(project),
            "--allow",
            f"{HOST}:{port}",
            script=f"curl -sS -w '%{{http_code}}\\n' http://{HOST}:{port}/x",
            cwd=cwd,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.rstrip().endswith("403"), done.stdout
    assert site.seen == []
    return done


@pytest.mark.parametrize(
    "rule",
    [
        pytest.param("WebFetch(domain:{host})", id="plain"),
        pytest.param(" WebFetch(domain:{host})", id="leading_space"),
        pytest.param("WebFetch( domain:{host})", id="space_inside"),
        pytest.param("WebFetch (domain:{host})", id="space_before"),
        pytest.param("WebFetch(domain:*)", id="every_host"),
    ],
)
def test_a_webfetch_deny_rule_refuses_in_every_spelling_the_guard_reads(
    tmp_path: Path, project: Path, rule: str
) -> None:
    """A deny rule the web-fetch guard reads refuses the host in the run too, whatever the
    command line allows: deny beats allow."""
    write_json(
        project / ".claude" / "settings.json",
        {"permissions": {"deny": [rule.replace("{host}", HOST)]}},
    )
    done = _refused_in(tmp_path, project, cwd=project)
    assert "permissions.deny" in done.stdout


def test_the_workspaces_own_settings_rule_the_proxy_when_started_elsewhere(
    tmp_path: Path, project: Path
) -> None:
    """--workspace DIR given from another folder: DIR's settings are the proxy's (its
    deniedDomains refuse the host the command line allows) and the flows' (its model host is
    let out by default), as when started in DIR."""
    write_json(
        project / ".claude" / "settings.json",
        {
            "env": {"ANTHROPIC_BASE_URL": "https://llm.example.com"},
            "sandbox": {"network": {"deniedDomains": [HOST]}},
        },
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _refused_in(tmp_path, project, cwd=elsewhere)
    [run] = [record for record in _records(tmp_path / "audit.jsonl") if record["type"] == "run"]
    assert HOST in run["rules"]["deny"]
    assert "llm.example.com" in run["rules"]["default_allow"]


def test_airlocks_no_proxy_goes_past_the_upstream_proxy(tmp_path: Path) -> None:
    """With --upstream-proxy, a host named in airlock's own NO_PROXY is dialled directly: the
    upstream proxy here listens nowhere, so only the bypass can reach the origin."""
    with web_site() as site:
        port = site.server_address[1]
        args = ("--allow", f"{HOST}:{port}", "--upstream-proxy", "http://127.0.0.1:9")
        script = f"curl -sS -o /dev/null -w '%{{http_code}}\\n' http://{HOST}:{port}/bypass"
        bypassed = run_script(
            tmp_path, script, *args, env={"NO_PROXY": f"localhost,{HOST}", "no_proxy": ""}
        )
        chained = run_script(tmp_path, script, *args, env={"NO_PROXY": "localhost", "no_proxy": ""})
    assert bypassed.returncode == 0, bypassed.stderr
    assert bypassed.stdout.strip() == "200"
    assert chained.stdout.strip() == "502"  # through the upstream proxy, which is not there
    assert site.seen == ["GET /bypass"]
    # the report names the party that failed: the upstream proxy, not the destination
    assert f"cannot connect to the upstream proxy 127.0.0.1:9 (for {HOST}:{port})" in chained.stderr


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://proxy.example:99999", "Port out of range"),
        ("https://proxy.example:3128", "expected http://HOST:PORT"),
        ("http://[::1", "Invalid IPv6 URL"),
        ("http://proxy.example:3128/path", "expected http://HOST:PORT"),
        ("garbage", "expected http://HOST[:PORT] or HOST:PORT"),
    ],
)
def test_an_upstream_proxy_that_is_no_url_is_refused_before_the_command_runs(
    tmp_path: Path, project: Path, url: str, said: str
) -> None:
    """It was read at the first connection, inside the proxy: a traceback there, and the
    command ran without its way out."""
    done = run_script(tmp_path, "touch ran", "--upstream-proxy", url)
    assert done.returncode == 125, done.stderr
    assert f"--upstream-proxy {url!r}: {said}" in done.stderr, done.stderr
    assert not (project / "ran").exists()


def test_airlocks_own_https_proxy_is_read_before_the_command_runs(
    tmp_path: Path, project: Path
) -> None:
    malformed = {"HTTPS_PROXY": "http://proxy.example:0x", "https_proxy": ""}
    done = run_script(tmp_path, "touch ran", env=malformed)
    assert done.returncode == 125, done.stderr
    assert "HTTPS_PROXY in airlock's environment 'http://proxy.example:0x'" in done.stderr
    assert not (project / "ran").exists()


def test_an_unusable_https_proxy_of_airlocks_says_what_to_do_and_upstream_proxy_overrides_it(
    tmp_path: Path, project: Path
) -> None:
    """A SOCKS proxy in airlock's own ``HTTPS_PROXY`` (set for other tools) stops the run,
    saying that ``--upstream-proxy`` takes its place, or to unset it; given, the run goes."""
    socks = {"HTTPS_PROXY": "socks5://127.0.0.1:1080", "https_proxy": ""}
    done = run_script(tmp_path, "touch ran", env=socks)
    assert done.returncode == 125, done.stderr
    assert "--upstream-proxy http://HOST:PORT (it takes the place of HTTPS_PROXY)" in done.stderr
    assert "unset HTTPS_PROXY" in done.stderr
    assert not (project / "ran").exists()
    with web_site() as upstream:  # any HTTP server: nothing goes through it here
        given = f"http://{HOST}:{upstream.server_address[1]}"
        done = run_script(tmp_path, "touch ran", "--upstream-proxy", given, env=socks)
    assert done.returncode == 0, done.stderr
    assert (project / "ran").exists()


def test_an_ipv6_literal_pattern_is_allowed_and_a_malformed_one_is_refused(
    tmp_path: Path,
) -> None:
    """--allow [::1] lets a request to the host's IPv6 loopback through the proxy; a pattern
    with an unbalanced bracket stops airlock before anything runs (125, saying why and nothing
    else: the sandbox that was being built goes quietly)."""
    with web_site_v6() as site:
        port = site.server_address[1]
        script = f"curl -sS -x \"$HTTP_PROXY\" --noproxy '' http://[::1]:{port}/v6"
        done = _run(tmp_path, "--allow", "[::1]", script=script)
    assert done.returncode == 0, done.stderr
    assert "hello from the origin: GET /v6" in done.stdout
    assert site.seen == ["GET /v6"]
    bad = airlock("run", "--allow", "[::1", "--", "sh", "-c", "echo RAN")
    assert bad.returncode == 125
    assert "--allow '[::1'" in bad.stderr and "unbalanced '['" in bad.stderr
    assert "RAN" not in bad.stdout
    assert len(bad.stderr.strip().splitlines()) == 1, bad.stderr  # the reason, and only it


def test_an_allowed_loopback_host_is_said_and_reached_with_no_proxy_emptied(
    tmp_path: Path,
) -> None:
    """``--allow [::1]:PORT``: inside, ``::1`` is the sandbox's own loopback and ``NO_PROXY``
    names it, so a client goes there and finds nothing (the report said nothing left, with no
    word why). The run says so before the command; ``--env NO_PROXY=`` sends it through the
    proxy, which reaches this machine's server."""
    with web_site_v6() as site:
        port = site.server_address[1]
        script = f"curl -sS http://[::1]:{port}/v6 || echo UNREACHED"
        direct = _run(tmp_path, "--allow", f"[::1]:{port}", script=script)
        through = _run(tmp_path, "--allow", f"[::1]:{port}", "--env", "NO_PROXY=", script=script)
    assert "UNREACHED" in direct.stdout
    assert f"--allow [::1]:{port}: inside the sandbox ::1 is the sandbox's own loopback" in (
        direct.stderr
    )
    assert "hello from the origin: GET /v6" in through.stdout, through.stderr
    assert "is the sandbox's own loopback" not in through.stderr  # told already: no note
    assert site.seen == ["GET /v6"]


CLIENTS = {
    "curl": "curl -sS {url}",
    "python_urllib": "python3 -c 'import sys,urllib.request; print(urllib.request.urlopen(sys.argv[1]).read().decode())' {url}",
    "python_httpx": "{python} -c 'import sys,httpx; print(httpx.get(sys.argv[1]).text)' {url}",
    "node": (
        "node -e '"
        'const http=require("http"); const p=new URL(process.env.HTTP_PROXY);'
        "http.get({{host:p.hostname,port:p.port,path:process.argv[1]}},"
        'r=>{{r.setEncoding("utf8");r.on("data",d=>process.stdout.write(d))}})'
        "' {url}"
    ),
}


@pytest.mark.parametrize("client", CLIENTS)
def test_clients_work_through_the_proxy(tmp_path: Path, client: str) -> None:
    """curl, Python's urllib and httpx, and Node reach an allowed host from inside."""
    import sys

    with web_site() as site:
        port = site.server_address[1]
        url = f"http://{HOST}:{port}/{client}"
        script = CLIENTS[client].format(url=url, python=sys.executable)
        done = _run(tmp_path, "--allow", f"{HOST}:{port}", script=script)
    assert done.returncode == 0, done.stderr
    assert f"hello from the origin: GET /{client}" in done.stdout


def test_git_clone_works_through_the_proxy(tmp_path: Path, project: Path) -> None:
    """git clone over smart HTTP (git http-backend on the host) works from inside."""
    origin = tmp_path / "repos" / "demo.git"
    work = tmp_path / "seed"
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    (work / "README").write_text("cloned through the proxy\n")
    git = ["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@example.test"]
    subprocess.run([*git, "add", "README"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(origin)], check=True)
    with git_server(origin.parent) as server:
        port = server.server_address[1]
        done = _run(
            tmp_path,
            "--allow",
            f"{HOST}:{port}",
            script=f"git clone -q http://{HOST}:{port}/demo.git clone && cat clone/README",
        )
    assert done.returncode == 0, done.stderr
    assert "cloned through the proxy" in done.stdout
    assert (project / "clone" / "README").exists()
    assert any("git-upload-pack" in seen for seen in server.seen)


def test_report_and_exit_code(tmp_path: Path) -> None:
    """The command's exit code comes back; the report names hosts, bytes, dropped variables."""
    with web_site() as site:
        port = site.server_address[1]
        done = airlock(
            "run",
            "--allow",
            f"{HOST}:{port}",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--report-json",
            str(tmp_path / "report.json"),
            "--",
            "sh",
            "-c",
            f"curl -sS http://{HOST}:{port}/r >/dev/null; exit 3",
            env={"GH_TOKEN": "ghp_x", "MY_SECRET": "s"},
            timeout=180,
        )
    assert done.returncode == 3, done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == 3
    assert {"GH_TOKEN", "MY_SECRET"} <= set(report["variables_dropped"])
    assert report["variables_dropped_why"]["GH_TOKEN"].startswith("a token")
    [host] = [h for h in report["hosts"] if h["host"] == HOST]
    assert host["requests"] == 1 and host["bytes_in"] > 0
    assert report["final_hash"] and report["final_hash"] in done.stderr
    assert "GH_TOKEN" in done.stderr and HOST in done.stderr


def test_a_secret_in_the_command_line_is_not_kept_in_the_log(tmp_path: Path) -> None:
    """The run's record keeps the command, with a token in an argument redacted as in every
    other record; a command with none is kept as it is."""
    key = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJ"
    password = "Xk9!pQ2@rT7z"
    gitlab = "glpat-abcdefghijklmnopqrst"  # no digit in it
    log = tmp_path / "audit.jsonl"
    for arguments in (
        ["-H", f"Authorization: Bearer {key}"],
        ["--password", password, "-d", f'{{"password": "{password}"}}', gitlab],
        ["-H", "plain"],
    ):
        done = airlock(
            "run", "--audit-log", str(log), "--", "sh", "-c", "true", *arguments, timeout=180
        )
        assert done.returncode == 0, done.stderr
    text = log.read_text()
    assert key not in text and password not in text and gitlab not in text
    listed = json.loads(airlock("audit", "--json", "--audit-log", str(log)).stdout)
    commands = [record["command"] for record in listed if record.get("type") == "run"]
    assert commands[0][-1] == "Authorization: Bearer [REDACTED:anthropic_api_key]"
    assert commands[1][3:] == [
        "--password",
        "[REDACTED:generic_password]",
        "-d",
        '{"password": "[REDACTED:generic_password]"}',
        "[REDACTED:gitlab_pat]",
    ]
    assert commands[2] == ["sh", "-c", "true", "-H", "plain"]


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--"],
        ["--max-upload-mb", "0", "--", "RUN"],
        ["--new-connections-per-second", "0", "--", "RUN"],
        ["--rw", "/nonexistent/x", "--", "RUN"],
        ["--allow", "bad host!", "--", "RUN"],
        ["--env", "=X", "--", "RUN"],
        ["--bogus", "--", "RUN"],
        ["--hide", "/", "--", "RUN"],
    ],
    ids=[
        "no_command",
        "empty_command",
        "bad_upload_budget",
        "bad_connection_rate",
        "missing_rw_path",
        "bad_allow_pattern",
        "bad_env_name",
        "unknown_option",
        "hide_the_root",
    ],
)
def test_airlock_failures_exit_125(tmp_path: Path, args: list[str]) -> None:
    """When airlock itself fails (arguments, a path that cannot be bound), it exits 125, says
    why on stderr, and runs nothing."""
    marker = tmp_path / "ran"
    command = [arg if arg != "RUN" else f"touch {marker}" for arg in args]
    command = [
        part for arg in command for part in (arg.split() if arg.startswith("touch ") else [arg])
    ]
    done = airlock("run", "--audit-log", str(tmp_path / "a.jsonl"), *command)
    assert done.returncode == 125, done.stderr
    assert done.stderr.strip()
    assert not marker.exists()


def test_an_audit_log_that_cannot_be_created_is_named_and_nothing_runs(tmp_path: Path) -> None:
    """--audit-log in a folder that cannot exist (its parent is a file): 125, the option and the
    path named, and the command never ran."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    marker = tmp_path / "ran"
    log = blocker / "audit.jsonl"
    done = airlock("run", "--audit-log", str(log), "--", "touch", str(marker))
    assert done.returncode == 125, done.stderr
    assert f"--audit-log {log}: cannot be created" in done.stderr
    assert not marker.exists()


def _run_in_terminal(tmp_path: Path, *args: str) -> tuple[int, bytes]:
    """``airlock run ARGS`` with stderr on a terminal (a pty): its exit code and what the
    terminal got."""
    import os
    import pty
    import sys

    main, side = pty.openpty()
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "airlock",
                "run",
                "--audit-log",
                str(tmp_path / "audit.jsonl"),
                *args,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=side,
            env={**os.environ, "COLUMNS": "160", "TERM": "xterm"},
            timeout=120,
            check=False,
        )
        os.close(side)
        side = -1
        shown = b""
        while True:
            try:
                piece = os.read(main, 65536)
            except OSError:  # the terminal's other side is closed: all read
                break
            if not piece:
                break
            shown += piece
    finally:
        os.close(main)
        if side != -1:
            os.close(side)
    return done.returncode, shown


def test_the_report_is_a_table_in_a_terminal(tmp_path: Path) -> None:
    """With stderr on a terminal, the report is a table: host, connections, requests, bytes."""
    with web_site() as site:
        port = site.server_address[1]
        code, shown = _run_in_terminal(
            tmp_path,
            "--allow",
            f"{HOST}:{port}",
            "--",
            "sh",
            "-c",
            f"curl -sS http://{HOST}:{port}/t >/dev/null",
        )
    text = shown.decode(errors="replace")
    assert code == 0, text
    assert "what left the machine" in " ".join(text.split())  # the title, however wrapped
    assert "conns" in text and "requests" in text and HOST in text
    assert "─" in text  # drawn as a table


def test_what_a_command_sends_the_proxy_is_never_markup_in_the_table(tmp_path: Path) -> None:
    """A command inside names the proxy hosts written as rich markup: the report does not
    fail on them (the run keeps the command's exit code) and writes no hyperlink to the
    terminal; what was sent is not quoted."""
    send = (
        "import os, socket, sys, urllib.parse\n"
        "u = urllib.parse.urlparse(os.environ['HTTP_PROXY'])\n"
        "for target in sys.argv[1:]:\n"
        "    s = socket.create_connection((u.hostname, u.port), timeout=5)\n"
        "    s.sendall(target.encode() + b' HTTP/1.1\\r\\n\\r\\n'); s.recv(100); s.close()\n"
    )
    code, shown = _run_in_terminal(
        tmp_path,
        "--",
        "sh",
        "-c",
        'python3 -c "$0" "$@"; exit 7',
        send,
        "CONNECT [/bold]x:443",
        "CONNECT [link=https://evil.example/]x:443",
    )
    text = shown.decode(errors="replace")
    assert code == 7, text
    assert "MarkupError" not in text and b"\x1b]8;" not in shown
    assert "[/bold]" not in text and "evil.example" not in text  # refused without quoting it


def test_the_git_token_file_is_hidden_inside(tmp_path: Path, project: Path) -> None:
    """``--git-token-file``: the gateway reads it outside; inside, neither the file as named
    (a link here) nor the file it leads to (in the workspace, where it would also be
    writable) holds the token."""
    token = "ghp_" + "T0kenFileN0tForTheSandbox1234567890abcd"
    (project / "gh-token").write_text(token + "\n")
    (project / "token").symlink_to("gh-token")
    done = run_script(
        tmp_path,
        "cat token gh-token; echo probe >> gh-token; echo looked",
        "--repo",
        "octo/widgets",
        "--git-token-file",
        "token",
        cwd=project,
    )
    assert "looked" in done.stdout, done.stderr
    assert token not in done.stdout + done.stderr
    assert (project / "gh-token").read_text() == token + "\n"


def test_new_connections_to_a_host_are_limited_per_second(tmp_path: Path) -> None:
    """``--new-connections-per-second 1``: of three connections at once to one host, the
    first passes and the others are answered 429, saying the limit; all are logged."""
    with web_site() as site:
        url = f"http://{HOST}:{site.server_address[1]}/page"
        script = "; ".join(
            f"curl -s -o /dev/null -w '%{{http_code}}\\n' -H 'Connection: close' {url}"
            for _ in range(3)
        )
        done = _run(tmp_path, "--allow", HOST, "--new-connections-per-second", "1", script=script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "429", "429"], done.stdout
    listed = json.loads(
        airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl")).stdout
    )
    requests = [record for record in listed if record.get("type") == "request"]
    assert [record["decision"] for record in requests] == ["allow", "deny", "deny"]
    assert "new connections per second" in requests[1]["reason"]
