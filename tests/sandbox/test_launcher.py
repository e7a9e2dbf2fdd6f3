"""A real bubblewrap sandbox: what the command inside can see, write and reach."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox import Spec, check, launch
from airlock.sandbox.launcher import Sandbox
from airlock.sandbox.paths import Kind, mount
from tests.planted import PLANTED_IN_HOME
from tests.sandbox.helpers import rules_for, run_sandboxed
from tests.servers import origin_site


@pytest.fixture
def workspace(project: Path) -> Path:
    return project


def test_the_door_is_the_only_way_out(workspace: Path, home: Path) -> None:
    """A request through 127.0.0.1:3128 reaches the door; a direct one to a host server fails."""
    with origin_site() as site:
        port = site.server_address[1]
        ran = run_sandboxed(
            f"curl -sS --noproxy '' -x $HTTP_PROXY http://example.test/x; "
            f"curl -sS -m 5 --noproxy '*' http://127.0.0.1:{port}/ && echo REACHED; echo rc=$?",
            workspace,
            home,
        )
    assert "door: GET http://example.test/x HTTP/1.1" in ran.out
    assert "REACHED" not in ran.out
    assert "rc=7" in ran.out  # curl: couldn't connect


def test_name_lookups_fail_at_once(workspace: Path, home: Path) -> None:
    """DNS inside fails within a second, and resolv.conf says why."""
    started = time.monotonic()
    ran = run_sandboxed(
        "python3 -c 'import socket; socket.getaddrinfo(\"example.com\", 443)' 2>&1; "
        "cat /etc/resolv.conf",
        workspace,
        home,
    )
    assert time.monotonic() - started < 10
    assert "gaierror" in ran.out
    assert "no DNS inside the sandbox" in ran.out


def test_lookup_time_is_short(workspace: Path, home: Path) -> None:
    """One failing lookup takes well under a second (no resolver time-outs)."""
    ran = run_sandboxed(
        "python3 -c 'import socket,time; t=time.monotonic()\n"
        'try: socket.getaddrinfo("example.com", 443)\n'
        'except OSError: print("took", time.monotonic()-t)\'',
        workspace,
        home,
    )
    assert float(ran.out.split()[-1]) < 0.5


def test_credentials_are_not_there(workspace: Path, home: Path) -> None:
    """A file under ~/.ssh and a credential variable are invisible; --env passes one in."""
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_ed25519").write_text("PRIVATE KEY\n")
    (home / ".netrc").write_text("machine x password y\n")
    (home / "notes.txt").write_text("ordinary\n")
    ran = run_sandboxed(
        "ls -A ~/.ssh; cat ~/.netrc; cat ~/notes.txt; "
        'echo "token=${GH_TOKEN:-none} key=${OPENAI_API_KEY:-none}"',
        workspace,
        home,
        environ={"GH_TOKEN": "ghp_secret", "OPENAI_API_KEY": "sk-x"},
        wanted={"OPENAI_API_KEY": None},
    )
    assert "id_ed25519" not in ran.out and "PRIVATE" not in ran.out
    assert "password" not in ran.out
    assert "ordinary" in ran.out
    assert "token=none key=sk-x" in ran.out


def test_host_unix_sockets_cannot_be_reached(workspace: Path, home: Path, tmp_path: Path) -> None:
    """Unix sockets the host listens on (in the workspace, the home, /tmp, abstract) are unreachable."""
    paths = [workspace / "editor.sock", home / "docker.sock", tmp_path / "agent.sock"]
    abstract = (
        f"airlock-test-{os.getpid()}-{time.monotonic_ns()}"  # unique: suites run side by side
    )
    servers = []
    for path in [*paths, None]:
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(path) if path is not None else "\0" + abstract)
        server.listen()
        servers.append(server)
    probe = "import socket,sys\nfor p in sys.argv[1:]:\n  s=socket.socket(socket.AF_UNIX)\n  try:\n    s.connect(p.replace('@','\\0')); print('REACHED', p)\n  except OSError as e: print('refused', p, e.errno)\n"
    (workspace / "probe.py").write_text(probe)
    try:
        ran = run_sandboxed(
            "python3 probe.py " + " ".join(str(p) for p in paths) + f" @{abstract}",
            workspace,
            home,
        )
    finally:
        for server in servers:
            server.close()
    assert "REACHED" not in ran.out, ran.out
    assert ran.out.count("refused") == 4, ran.out + ran.err


def test_code_cannot_plant_what_runs_outside_later(workspace: Path, home: Path) -> None:
    """Writes to .git/hooks, .git/config, .mcp.json, .vscode/ and .claude/settings.json fail;
    the rest of the workspace is writable; the placeholders are gone afterwards."""
    os.system(f"git init -q {workspace}")  # noqa: S605 - a fixed command on a test folder
    hooks_before = sorted((workspace / ".git" / "hooks").iterdir())
    ran = run_sandboxed(
        "for p in .git/hooks/pre-commit .git/config .mcp.json .vscode/tasks.json "
        ".claude/settings.json .envrc .gitmodules; do "
        '(echo evil > "$p") 2>/dev/null && echo "WROTE $p"; done; '
        "echo fine > notes.txt && echo wrote-notes",
        workspace,
        home,
    )
    assert "WROTE" not in ran.out, ran.out
    assert "wrote-notes" in ran.out
    assert (workspace / "notes.txt").read_text() == "fine\n"
    assert sorted((workspace / ".git" / "hooks").iterdir()) == hooks_before
    assert "evil" not in (workspace / ".git" / "config").read_text()
    assert sorted(path.name for path in workspace.iterdir()) == [".git", "notes.txt"]


def _plant(paths: tuple[str, ...]) -> str:
    """A script that makes each path (its folders too) and says which it could write."""
    return "".join(
        f'(mkdir -p "$(dirname ~/{path})" && echo evil > ~/{path}) 2>/dev/null '
        f"&& echo WROTE {path}; "
        for path in paths
    )


def _tree(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def test_a_writable_home_cannot_be_given_code_or_keys_for_later(
    workspace: Path, home: Path
) -> None:
    """Home writable (``--rw ~``): start-up files, ``~/bin``, ``~/.local/bin``, fish's config,
    missing credential files (``~/.ssh/authorized_keys``, ``~/.aws/config``) and the agent's
    settings, plugins and skills cannot be written or made; other files can; afterwards the
    home holds what it held, and what was written."""
    (home / ".claude").mkdir()
    (home / ".docker").mkdir()
    (home / ".cargo").mkdir()  # cargo and Gradle installed: their files are protected
    (home / ".gradle").mkdir()
    (home / ".pyenv").mkdir()  # and pyenv and VS Code
    (home / ".vscode").mkdir()
    (home / ".codex").mkdir()  # the agents' state: writable, but not their hooks and skills
    (home / ".gemini").mkdir()
    (home / ".config").mkdir()
    before = _tree(home)
    ran = run_sandboxed(
        _plant(PLANTED_IN_HOME) + "echo fine > ~/notes.txt && echo wrote-notes",
        workspace,
        home,
        extra=[mount(Kind.WRITE, home, "--rw ~")],
    )
    assert "WROTE" not in ran.out, ran.out
    assert "wrote-notes" in ran.out, ran.out + ran.err
    assert _tree(home) == sorted([*before, "notes.txt"])


def test_a_read_only_home_is_left_as_it_was(workspace: Path, home: Path) -> None:
    """A normal run: nothing can be made in the home, and no placeholder is left there (nor
    made: the home is not writable)."""
    (home / ".claude").mkdir()
    before = _tree(home)
    ran = run_sandboxed(_plant(PLANTED_IN_HOME) + "ls -A ~", workspace, home)
    assert "WROTE" not in ran.out, ran.out
    assert ".ssh" not in ran.out.split() and "bin" not in ran.out.split(), ran.out
    assert _tree(home) == before


def test_the_rest_is_read_only_and_tmp_is_private(
    workspace: Path, home: Path, tmp_path: Path
) -> None:
    """/etc and the home are read-only; /tmp is empty and private; agent state is writable."""
    (home / ".claude").mkdir()
    (tmp_path / "host-file").write_text("host\n")
    ran = run_sandboxed(
        "touch /etc/airlock-x 2>/dev/null && echo WROTE-ETC; touch ~/x 2>/dev/null && echo WROTE-HOME; "
        f"ls {tmp_path}/host-file 2>/dev/null && echo SEES-HOST-TMP; "
        "echo '{}' > ~/.claude/state.json && echo wrote-state; "
        "echo '{}' > ~/.claude/settings.json 2>/dev/null && echo WROTE-SETTINGS; "
        "touch /tmp/mine && echo wrote-tmp",
        workspace,
        home,
    )
    assert "WROTE" not in ran.out and "SEES-HOST-TMP" not in ran.out, ran.out
    assert "wrote-state" in ran.out and "wrote-tmp" in ran.out
    assert (home / ".claude" / "state.json").exists()
    assert not (home / ".claude" / "settings.json").exists()


def test_namespaces_and_capabilities(workspace: Path, home: Path) -> None:
    """New PID namespace (few processes), no capabilities, no new privileges, own session."""
    ran = run_sandboxed(
        "ls /proc | grep -c '^[0-9]'; grep -E '^(CapEff|CapPrm|NoNewPrivs)' /proc/self/status; "
        "python3 -c 'import os; print(\"session\", os.getsid(0) == os.getpid())'",
        workspace,
        home,
    )
    lines = ran.out.split("\n")
    assert int(lines[0]) < 10
    assert "CapEff:\t0000000000000000" in ran.out
    assert "CapPrm:\t0000000000000000" in ran.out
    assert "NoNewPrivs:\t1" in ran.out


def test_user_rules_apply(workspace: Path, home: Path, tmp_path: Path) -> None:
    """--rw makes a path writable, --ro read-only inside the workspace, --hide empties one."""
    (tmp_path / "cache").mkdir()
    (workspace / "vendor").mkdir()
    (workspace / "private").mkdir()
    (workspace / "private" / "data").write_text("secret\n")
    extra = [
        mount(Kind.WRITE, tmp_path / "cache", "--rw"),
        mount(Kind.READ, workspace / "vendor", "--ro"),
        mount(Kind.HIDE, workspace / "private", "--hide"),
    ]
    ran = run_sandboxed(
        f"touch {tmp_path}/cache/x && echo wrote-cache; touch vendor/x 2>/dev/null && echo WROTE-VENDOR; "
        "cat private/data 2>/dev/null || echo hidden",
        workspace,
        home,
        extra=extra,
    )
    assert "wrote-cache" in ran.out and "hidden" in ran.out
    assert "WROTE-VENDOR" not in ran.out
    assert (tmp_path / "cache" / "x").exists()


def test_exit_status_is_the_commands(workspace: Path, home: Path) -> None:
    """The command's exit status comes back; a missing command is 127."""
    assert run_sandboxed("exit 7", workspace, home).code == 7
    ran = run_sandboxed("exec no-such-command-here", workspace, home)
    assert ran.code == 127


def _started(script: str, workspace: Path, home: Path) -> Sandbox:
    """``sh -c script`` running in the sandbox, its door served by nobody."""
    return launch(
        Spec(
            ("sh", "-c", script),
            workspace,
            {"PATH": os.environ["PATH"], "HOME": str(home)},
            tuple(rules_for(workspace, home)),
        ),
        check(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_waiting_unconnected_ends_at_the_commands_end(workspace: Path, home: Path) -> None:
    """A command that ends having connected nowhere: its exit status, long before the time."""
    sandbox = _started("exit 3", workspace, home)
    try:
        started = time.monotonic()
        assert sandbox.wait_unconnected(30) == 3
        assert time.monotonic() - started < 20
    finally:
        sandbox.close()


def test_waiting_unconnected_ends_at_the_first_connection(workspace: Path, home: Path) -> None:
    """A connection to the door ends the wait (None) while the command waits for its answer;
    the connection is still there to accept, its request unanswered until then."""
    sandbox = _started(
        "curl -sS --noproxy '' -x http://127.0.0.1:3128 http://example.test/first; echo rc=$?",
        workspace,
        home,
    )
    try:
        started = time.monotonic()
        assert sandbox.wait_unconnected(30) is None
        assert time.monotonic() - started < 20
        assert sandbox.process.poll() is None  # curl waits for an answer
        connection, _ = sandbox.listener.accept()
        with connection:
            connection.settimeout(10)
            assert connection.recv(4096).startswith(b"GET http://example.test/first HTTP/1.1")
        assert sandbox.wait() == 0
    finally:
        sandbox.close()


def test_waiting_unconnected_ends_when_the_time_is_up(workspace: Path, home: Path) -> None:
    """A command that runs on, connecting nowhere: None once the time is up, and it runs on."""
    sandbox = _started("sleep 30", workspace, home)
    try:
        started = time.monotonic()
        assert sandbox.wait_unconnected(0.3) is None
        assert 0.25 <= time.monotonic() - started < 20
        assert sandbox.process.poll() is None
    finally:
        sandbox.close()


def test_no_bubblewrap_is_an_error_saying_what_to_do() -> None:
    """Without bwrap in the system's folders, the error says to install it (or name one)."""
    with pytest.raises(SandboxError, match=r"apt-get install bubblewrap.*AIRLOCK_BWRAP names it"):
        check({"PATH": os.environ["PATH"]}, places=("/nonexistent",))
    with pytest.raises(SandboxError, match="AIRLOCK_BWRAP=bwrap: not a program"):
        check({"AIRLOCK_BWRAP": "bwrap"})


def test_bubblewrap_is_looked_for_in_the_system_not_on_path(tmp_path: Path) -> None:
    """A bwrap first on PATH (a folder a run could write) is not the one run; the system's is,
    by its real path; AIRLOCK_BWRAP names another."""
    (tmp_path / "bwrap").write_text('#!/bin/sh\nexec "$@"\n')
    (tmp_path / "bwrap").chmod(0o755)
    found = check({"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert Path(found).parent != tmp_path and Path(found) == Path(found).resolve()
    assert check({"AIRLOCK_BWRAP": str(tmp_path / "bwrap")}) == str(tmp_path / "bwrap")


def test_a_sandbox_that_cannot_be_built_runs_nothing(workspace: Path, home: Path) -> None:
    """When bubblewrap fails to build the sandbox, the command does not run and the error says so."""
    from airlock.sandbox.paths import Mount

    marker = workspace / "ran"
    broken = (Mount(Kind.WRITE, Path("/nonexistent/airlock-test"), "bad", True, True),)
    with pytest.raises(SandboxError, match=r"could not be built.*nothing was run"):
        launch(
            Spec(("touch", str(marker)), workspace, {"PATH": os.environ["PATH"]}, broken),
            check(os.environ),
            stderr=-3,  # subprocess.DEVNULL
        )
    assert not marker.exists()


def test_the_command_dies_with_its_launcher(workspace: Path, home: Path, tmp_path: Path) -> None:
    """kill -9 of the process that launched the sandbox ends the command inside."""
    import sys

    script = (
        "import os, sys\n"
        "from pathlib import Path\n"
        "from airlock.sandbox import Spec, check, launch\n"
        "from tests.sandbox.helpers import rules_for\n"
        f"ws, home = Path({str(workspace)!r}), Path({str(home)!r})\n"
        "sb = launch(Spec(('sleep', '60'), ws, {'PATH': os.environ['PATH']}, tuple(rules_for(ws, home))), check(os.environ))\n"
        "print(sb.command_pid, flush=True)\n"
        "sb.process.wait()\n"
    )
    root = Path(__file__).parents[2]
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        cwd=root,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its scratch folder: killed, it cannot clean
    )
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    os.kill(pid, 0)  # the command is running
    parent.kill()
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the sandboxed command {pid} outlived its launcher")


@pytest.mark.parametrize(
    "setting, value, fix",
    [
        ("unprivileged_userns_clone", "0", "kernel.unprivileged_userns_clone=1"),
        ("max_user_namespaces", "0", "user.max_user_namespaces"),
        ("apparmor_restrict_unprivileged_userns", "1", "AppArmor"),
    ],
    ids=["debian_switch_off", "no_user_namespaces", "ubuntu_apparmor_restriction"],
)
def test_user_namespaces_switched_off_is_an_error_saying_what_to_do(
    tmp_path: Path, setting: str, value: str, fix: str
) -> None:
    """For an unprivileged user, a kernel setting that forbids user namespaces is named, with its fix."""
    from airlock.sandbox.launcher import USERNS_SETTINGS

    files = []
    for path, forbidding, hint in USERNS_SETTINGS:
        found = tmp_path / Path(path).name
        found.write_text(
            value if Path(path).name == setting else ("1" if forbidding == "0" else "0")
        )
        files.append((str(found), forbidding, hint))
    with pytest.raises(SandboxError, match="user namespaces are disabled") as raised:
        check(dict(os.environ), userns_settings=tuple(files), euid=1000)
    assert fix in str(raised.value)
    assert check(dict(os.environ), userns_settings=tuple(files), euid=0)  # root needs none


def test_bubblewrap_runs_without_the_loaders_variables_which_the_command_gets(
    workspace: Path, home: Path
) -> None:
    """bubblewrap runs outside every namespace until it has built them: it is started in /
    and without LD_LIBRARY_PATH and the like (an empty entry is the current folder, where an
    earlier run could have left a library); the command inside still has them."""
    environ = {
        "PATH": os.environ["PATH"],
        "LD_LIBRARY_PATH": ":/opt/nothing/lib",
        "GCONV_PATH": "/opt/nothing/gconv",
    }
    sandbox = launch(
        Spec(
            ("sh", "-c", 'echo "$LD_LIBRARY_PATH|$GCONV_PATH" > seen; sleep 5'),
            workspace,
            environ,
            tuple(rules_for(workspace, home)),
        ),
        check(os.environ),
    )
    try:
        bwrap = sandbox.process.pid
        started = Path(f"/proc/{bwrap}/environ").read_bytes().split(b"\0")
        assert not [item for item in started if item.startswith((b"LD_", b"GCONV_PATH="))]
        assert Path(f"/proc/{bwrap}/cwd").readlink() == Path("/")
        deadline = time.monotonic() + 10
        while not (workspace / "seen").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        assert (workspace / "seen").read_text() == ":/opt/nothing/lib|/opt/nothing/gconv\n"
    finally:
        sandbox.close()
