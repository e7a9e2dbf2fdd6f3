"""``airlock run`` on a terminal: the command gets a pseudo-terminal of its own, which airlock
relays to the user's (:mod:`airlock.sandbox.terminal`); the user's never enters the sandbox."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.sandbox.helpers import TIMEOUT
from tests.sandbox.terminals import UserTerminal, python, set_size, user_terminal, window_probe


@pytest.fixture
def terminal() -> Iterator[UserTerminal]:
    with user_terminal() as user:
        yield user


def _run(tmp_path: Path, *command: str, log: str = "audit.jsonl") -> list[str]:
    """``airlock run -- COMMAND``, its audit log ``log`` in ``tmp_path``."""
    return [
        sys.executable,
        "-m",
        "airlock",
        "run",
        "--audit-log",
        str(tmp_path / log),
        "--",
        *command,
    ]


STATED = ("streams", "console", "controlling", "foreground")


def test_the_command_runs_on_a_terminal_of_its_own(tmp_path: Path, terminal: UserTerminal) -> None:
    """Its standard streams, ``/dev/console`` (bound by bubblewrap to its output's terminal)
    and its controlling terminal are one terminal, not the user's; it is in its foreground."""
    run = terminal.start(
        _run(
            tmp_path,
            *python("""
                import os
                print("streams", *{os.fstat(fd).st_rdev for fd in (0, 1, 2)})
                print("console", os.stat("/dev/console").st_rdev)
                stat = open("/proc/self/stat").read().rsplit(")", 1)[1].split()
                print("controlling", stat[4])
                print("foreground", os.tcgetpgrp(0) == os.getpgrp())
            """),
        )
    )
    assert run.wait(TIMEOUT) == 0
    said = {name: terminal.line(name, 5).split()[1:] for name in STATED}
    assert len(said["streams"]) == 1
    ours = said["streams"][0]
    assert int(ours) != os.fstat(terminal.side).st_rdev
    assert said["console"] == [ours]
    assert said["controlling"] == [ours]
    assert said["foreground"] == ["True"]


def test_a_resize_reaches_the_command(tmp_path: Path, terminal: UserTerminal) -> None:
    """The command starts with the user's window size and gets SIGWINCH with the new one
    when the window changes (a full-screen program redraws)."""
    run = terminal.start(
        _run(
            tmp_path,
            *window_probe(1, 20),
        )
    )
    terminal.wait_for("start 30 100")
    set_size(terminal.main, 40, 120)
    assert terminal.line("winch") == "winch 40 120"
    assert run.wait(TIMEOUT) == 0


def test_the_users_terminal_is_raw_and_its_modes_come_back(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """While the command runs the user's terminal is raw: Ctrl-C is a byte its own terminal
    turns into SIGINT for it. What it sets on its terminal (``stty -echo``) is not the
    user's, whose modes are as they were after the run."""
    before = terminal.modes()
    script = 'trap "echo got-int; exit 7" INT; stty -echo -icanon; echo ready; while :; do sleep 0.1; done'
    run = terminal.start(_run(tmp_path, "sh", "-c", script))
    terminal.wait_for("ready")
    during = terminal.modes()
    terminal.type("\x03")
    terminal.wait_for("got-int")
    assert run.wait(TIMEOUT) == 7
    assert not during[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
    assert terminal.modes() == before


def test_bash_inside_has_job_control(tmp_path: Path, terminal: UserTerminal) -> None:
    """``bash -i`` inside takes its terminal: job control is on, with no complaint."""
    run = terminal.start(
        _run(tmp_path, "bash", "--norc", "--noprofile", "-i", "-c", "set -o | grep monitor")
    )
    assert run.wait(TIMEOUT) == 0
    assert terminal.line("monitor", 5).split() == ["monitor", "on"]
    shown = terminal.shown.decode(errors="replace")  # bash's complaints come before
    assert "no job control" not in shown
    assert "cannot set terminal process group" not in shown


READER = """\
import os, sys, threading
log = sys.argv[1]
def read(path):
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    with open(log, "ab", buffering=0) as out:
        while data := os.read(fd, 1024):
            out.write(data)
print("ready", flush=True)
for path in ("/dev/console", "/dev/tty", "/dev/stdin", "/proc/self/fd/1"):
    threading.Thread(target=read, args=(path,)).start()
"""


def test_a_run_in_the_background_reads_nothing_typed_into_the_shell(
    tmp_path: Path, project: Path, terminal: UserTerminal
) -> None:
    """``airlock run … &`` from an interactive shell, its input the terminal or /dev/null:
    what the user types into the shell (a password at ``read -s``) never reaches the command,
    whichever way it opens the terminal; airlock is not stopped for it, and ends when told."""
    shell = terminal.start(["bash", "--norc", "--noprofile", "-i"], env={"PS1": "$ "})
    jobs = []
    try:
        terminal.wait_for("$ ")
        for number, stdin in ((1, ""), (2, " </dev/null")):
            workspace = project / str(number)  # one run at a time in a workspace
            workspace.mkdir()
            (workspace / "reader.py").write_text(READER)
            log = workspace / "read.log"
            command = (sys.executable, str(workspace / "reader.py"), str(log))
            run = " ".join(_run(tmp_path, *command, log=f"audit{number}.jsonl"))
            terminal.type(f"cd {workspace} && {run}{stdin} &\r")
            shown = terminal.wait_for(f"[{number}] ")
            jobs.append(int(shown.split(f"[{number}] ", 1)[1].split()[0]))
            terminal.wait_for("ready", times=number)
        terminal.type('read -s -p "p""w:" P; echo read-by-shell "$P"\r')  # the prompt, not the line
        terminal.wait_for("pw:")
        time.sleep(0.5)  # bash flushes what is typed before its read -s set the terminal
        terminal.type("hunter2-secret\r")
        terminal.wait_for("read-by-shell hunter2-secret")
        time.sleep(1)
        for number in (1, 2):
            log = project / str(number) / "read.log"
            assert not log.exists() or log.read_bytes() == b"", number
        terminal.type('kill %1 %2; wait; echo "all-""ended"\r')  # the line typed reads
        terminal.wait_for("all-ended")  # otherwise: what the shell shows is its output
        # each job's shell ends at once; airlock, in its process group, ends as told too,
        # its run's record written (it is not killed before that, below)
        deadline = time.monotonic() + TIMEOUT
        for number in (1, 2):
            while _last_record(tmp_path / f"audit{number}.jsonl").get("type") != "run":
                assert time.monotonic() < deadline, f"run {number} did not end when told"
                time.sleep(0.05)
        for job in jobs:  # and is gone, what it made safe after the run done
            while _group_alive(job):
                assert time.monotonic() < deadline, f"airlock in job {job} did not end"
                time.sleep(0.05)
    finally:
        for job in jobs:  # its process group: the shell's job, airlock in it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job, signal.SIGKILL)
        shell.kill()
        shell.wait()


def _last_record(log: Path) -> dict[str, object]:
    """The last record of ``log``; none while its last line is being written."""
    try:
        record = json.loads(log.read_bytes().splitlines()[-1])
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` is still there."""
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True
