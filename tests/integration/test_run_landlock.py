"""``airlock run``: files are opened for writing only where the sandbox lets the command write
(Landlock, applied by the stub just before the command runs). A read-only mount does not keep
a named pipe (FIFO) from being opened for writing: one on the host's file systems, which a
program of the host's may read commands from, is refused now, while the workspace, ``/tmp``,
``/dev``, ``/proc``, the agent's state, ``--rw`` paths and the files the command's standard
streams go to are written as before."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.sandbox.launcher import writes_limited
from tests.cli import run_script
from tests.integration.started import sh_run
from tests.sandbox.helpers import TIMEOUT
from tests.sandbox.terminals import user_terminal
from tests.sandbox.unprivileged import as_nobody

pytestmark = pytest.mark.skipif(
    not writes_limited(),
    reason="this kernel has no Landlock, or only its first version (before 5.19): the "
    "sandbox then leaves a named pipe on a read-only host path writable, as the README says",
)


@pytest.fixture
def host_folder() -> Iterator[Path]:
    """A folder on the host's file systems, read-only inside, in none the sandbox makes
    writable or its own: in the account's home (the test's own folders are under ``/tmp``,
    which is private inside)."""
    folder = Path(
        tempfile.mkdtemp(prefix=".airlock-landlock-test-", dir=pwd.getpwuid(os.getuid()).pw_dir)
    )
    try:
        yield folder
    finally:
        shutil.rmtree(folder)


@contextlib.contextmanager
def fifo_read(path: Path) -> Iterator[int]:
    """A named pipe made at ``path``, open for reading without blocking: a writer's open
    inside does not wait for a reader, and the test never waits for a writer."""
    os.mkfifo(path)
    reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        yield reader
    finally:
        os.close(reader)


def received(reader: int) -> bytes:
    """What was written to the pipe ``reader`` reads (nothing: ``b""``)."""
    try:
        return os.read(reader, 4096)
    except BlockingIOError:
        return b""


WRITES = """
echo into-the-pipe > {fifo} && echo host-pipe-written
echo into-the-workspace-pipe > workspace-pipe && echo workspace-pipe-written
echo w > written && echo workspace-written
echo t > /tmp/t && echo tmp-written
echo n > /dev/null && echo null-written
echo s > {state}/written && echo state-written
echo r > {rw}/written && echo rw-written
echo f > {rw_file} && echo rw-file-written
echo 0 > /proc/self/oom_score_adj && echo proc-written
mkdir moved-from moved-to && touch moved-from/a moved-from/b && ln moved-from/a moved-to/a &&
  {python} -c 'import os; os.rename("moved-from/b", "moved-to/b")' &&
  echo moved-written
"""


def test_a_named_pipe_on_a_read_only_host_path_is_not_written(
    tmp_path: Path, project: Path, config_dir: Path, host_folder: Path
) -> None:
    """``echo … > FIFO`` on a host path outside the writable ones fails inside with a
    permission error, and the program reading it outside gets nothing; a named pipe in the
    workspace, the workspace itself, ``/tmp``, ``/dev/null``, the agent's state, a ``--rw``
    folder and file, and ``/proc/self`` are written as before, and a file is moved or linked into
    another folder as before (which Landlock refuses unless a rule allows it)."""
    opened = tmp_path / "opened"
    opened.mkdir()
    (host_folder / "opened-file").touch()  # a file of its own: allowed as a folder is
    with (
        fifo_read(host_folder / "commands") as outside,
        fifo_read(project / "workspace-pipe") as inside,
    ):
        script = WRITES.format(
            fifo=host_folder / "commands",
            state=config_dir,
            rw=opened,
            rw_file=host_folder / "opened-file",
            python=sys.executable,
        )
        options = ("--rw", str(opened), "--rw", str(host_folder / "opened-file"))
        done = run_script(tmp_path, script, *options)
        host_got, workspace_got = received(outside), received(inside)
    assert done.returncode == 0, done.stderr
    assert "host-pipe-written" not in done.stdout
    assert f"{host_folder / 'commands'}: Permission denied" in done.stderr
    assert host_got == b""
    assert workspace_got == b"into-the-workspace-pipe\n"
    places = ("workspace-pipe", "workspace", "tmp", "null", "state", "rw", "rw-file", "proc")
    for place in (*places, "moved"):
        assert f"{place}-written" in done.stdout, done.stderr
    assert (project / "written").read_text() == "w\n"
    assert (config_dir / "written").read_text() == "s\n"
    assert (opened / "written").read_text() == "r\n"
    assert (host_folder / "opened-file").read_text() == "f\n"


STREAMS = """
echo to-stdout >> /dev/stdout && echo stdout-opened-again
echo to-stderr >> /dev/stderr && echo stderr-opened-again
echo to-fd-1 >> /proc/self/fd/1 && echo fd-1-opened-again
echo rewritten >> /proc/self/fd/0 || echo stdin-refused
echo into-the-pipe > {fifo} || echo pipe-refused
"""


def test_the_files_of_the_standard_streams_are_opened_again_as_before(
    tmp_path: Path, project: Path, host_folder: Path
) -> None:
    """A run whose output goes to a host file outside the writable paths still opens it again
    (``> /dev/stdout``, as scripts do); its input, a host file open for reading only, is not
    opened for writing (through ``/proc/self/fd/0`` it could be before, its mount being the
    host's), nor is a named pipe next to them."""
    given = host_folder / "input"
    given.write_text("as it was\n")
    output = host_folder / "output"
    with (
        fifo_read(host_folder / "commands") as outside,
        given.open() as stdin,
        output.open("a") as stdout,
    ):
        done = subprocess.run(
            sh_run(tmp_path / "a.jsonl", STREAMS.format(fifo=host_folder / "commands")),
            stdin=stdin,
            stdout=stdout,
            stderr=stdout,
            cwd=project,
            timeout=180,
            check=False,
        )
        host_got = received(outside)
    shown = output.read_text()
    assert done.returncode == 0, shown
    for line in ("to-stdout", "to-stderr", "to-fd-1", "stdout-opened-again"):
        assert line in shown.splitlines(), shown
    assert "stderr-opened-again" in shown and "fd-1-opened-again" in shown
    assert "stdin-refused" in shown and "pipe-refused" in shown
    assert given.read_text() == "as it was\n"
    assert host_got == b""


def test_a_pipe_as_the_output_is_opened_again(
    tmp_path: Path, project: Path, host_folder: Path
) -> None:
    """Output to a pipe (a shell's ``|``, CI's): ``> /dev/stdout`` and ``/proc/self/fd/2`` open
    it again inside (pipes are no files Landlock checks); the host's named pipe stays
    refused."""
    with fifo_read(host_folder / "commands") as outside:
        script = (
            "echo piped >> /dev/stdout && echo err >> /proc/self/fd/2 && "
            f"{{ echo x > {host_folder / 'commands'} || echo pipe-refused; }}"
        )
        done = run_script(tmp_path, script)
        host_got = received(outside)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["piped", "pipe-refused"]
    assert "err\n" in done.stderr
    assert host_got == b""


def test_on_a_terminal_dev_tty_and_the_streams_are_written(
    tmp_path: Path, host_folder: Path
) -> None:
    """On a terminal (the pseudo-terminal airlock relays, a file of the host's ``/dev/pts``):
    ``/dev/tty`` and ``/dev/stdout`` are opened for writing inside as before, the host's named
    pipe is not."""
    fifo = host_folder / "commands"
    script = (
        "echo by-tty > /dev/tty; echo by-stdout > /dev/stdout; "
        f"echo x > {fifo} 2>/dev/null || echo pipe-refused"
    )
    with fifo_read(fifo) as outside, user_terminal() as terminal:
        run = terminal.start(sh_run(tmp_path / "a.jsonl", script))
        assert run.wait(TIMEOUT) == 0
        shown = terminal.wait_for("pipe-refused")
        host_got = received(outside)
    assert "by-tty" in shown and "by-stdout" in shown
    assert host_got == b""


def test_allow_mounts_lets_the_command_mount_and_write_such_a_pipe(
    tmp_path: Path, host_folder: Path
) -> None:
    """``--allow-mounts``: no Landlock rules, so the command may mount in namespaces of its
    own (bubblewrap, a container tool), and the host's named pipe is written, as the option's
    help says."""
    with fifo_read(host_folder / "commands") as outside:
        done = run_script(
            tmp_path, f"echo into-the-pipe > {host_folder / 'commands'}", "--allow-mounts"
        )
        host_got = received(outside)
    assert done.returncode == 0, done.stderr
    assert host_got == b"into-the-pipe\n"


AS_NOBODY = r"""
import json, os, subprocess, sys
os.mkdir("/mnt/work/host")
os.mkfifo("/mnt/work/host/commands")
reader = os.open("/mnt/work/host/commands", os.O_RDONLY | os.O_NONBLOCK)
ATTACH = "import ctypes, sys; sys.exit(ctypes.CDLL(None).ptrace(16, 1, None, None) == 0)"
def run(more, *options):
    script = (
        "echo x > /mnt/work/host/commands || echo pipe-refused; echo w > written && "
        "echo workspace-written; unshare -rm sh -c 'mount -t tmpfs none /mnt && echo mounted' "
        "|| echo not-mounted; " + more
    )
    done = subprocess.run(
        [sys.executable, "-m", "airlock", "run", *options, "--", "sh", "-c", script],
        capture_output=True, text=True,
    )
    try:
        got = os.read(reader, 4096).decode()
    except BlockingIOError:
        got = ""
    return {"code": done.returncode, "out": done.stdout, "err": done.stderr, "got": got}
untraced = f"python3 -c '{ATTACH}' && echo init-untraced"  # PTRACE_ATTACH to bubblewrap's init
print(json.dumps({"default": run(untraced), "allowed": run("true", "--allow-mounts")}))
"""


def test_as_an_unprivileged_user_too(tmp_path: Path) -> None:
    """As ``nobody`` (bubblewrap in a user namespace): the host's named pipe is refused and
    the workspace written; the command cannot mount, even in a namespace of its own, unless
    ``--allow-mounts`` is given (bubblewrap, a container tool inside then work as before), nor
    trace the sandbox's init, which is outside its Landlock rules."""
    done = as_nobody(AS_NOBODY)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    default, allowed = found["default"], found["allowed"]
    assert default["code"] == 0, default["err"]
    assert default["out"].splitlines() == [
        "pipe-refused",
        "workspace-written",
        "not-mounted",
        "init-untraced",
    ], default
    assert default["got"] == ""
    assert allowed["code"] == 0, allowed["err"]
    assert allowed["out"].splitlines() == ["workspace-written", "mounted"], allowed
    assert allowed["got"] == "x\n"


AS_NOBODY_NOTE = r"""
import json, os, subprocess, sys
def run(*options):
    done = subprocess.run(
        [sys.executable, "-m", "airlock", "run", *options, "--", "true"],
        capture_output=True, text=True,
    )
    return {"code": done.returncode, "err": done.stderr}
found = {"plain": run(), "scrub": run("--env", "CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=1")}
found["scrub_off"] = run("--env", "CLAUDE_CODE_SUBPROCESS_ENV_SCRUB=0")
os.makedirs(".claude", exist_ok=True)
with open(".claude/settings.json", "w") as file:
    json.dump({"sandbox": {"enabled": True}}, file)
found["enabled"] = run()
found["allowed"] = run("--allow-mounts")
with open(".claude/settings.local.json", "w") as file:  # above the project's own file
    json.dump({"sandbox": {"enabled": False}}, file)
found["local_off"] = run()
print(json.dumps(found))
"""

NOTE = "the agent's own sandbox is on"


def test_the_agents_own_sandbox_is_told_it_cannot_mount(tmp_path: Path) -> None:
    """As ``nobody``, where a sandbox the command builds could mount without the limit: a run
    whose settings turn the agent's own sandbox on (``sandbox.enabled``, the highest file that
    sets it deciding), or whose command gets ``CLAUDE_CODE_SUBPROCESS_ENV_SCRUB``, says that
    it cannot be built in this run and how to let it; ``--allow-mounts`` and a run without
    either say nothing."""
    done = as_nobody(AS_NOBODY_NOTE)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert all(run["code"] == 0 for run in found.values()), found
    said = {name: NOTE in run["err"] for name, run in found.items()}
    assert said == {
        "plain": False,
        "scrub": True,
        "scrub_off": False,
        "enabled": True,
        "allowed": False,
        "local_off": False,
    }, found
    assert "CLAUDE_CODE_SUBPROCESS_ENV_SCRUB" in found["scrub"]["err"]
    assert "sandbox.enabled in project settings" in found["enabled"]["err"]
    assert "--allow-mounts" in found["enabled"]["err"]


def test_a_run_as_root_says_nothing_of_the_agents_sandbox(tmp_path: Path) -> None:
    """As root no user namespace made inside may map root, with the limit or without it: the
    note would offer a way that does not exist, and is not said."""
    if os.geteuid() != 0:
        pytest.skip("the run as root is what is checked")
    settings = Path.cwd() / ".claude" / "settings.json"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(json.dumps({"sandbox": {"enabled": True}}))
    done = run_script(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert NOTE not in done.stderr
