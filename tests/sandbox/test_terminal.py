"""The command's own terminal (:mod:`airlock.sandbox.terminal`) and the stub's part in it.

Each test gives a driver a real pseudo-terminal as the user's terminal (its controlling one,
as a login's): the driver does what ``airlock run`` does (a :class:`Terminal` around the stub,
which becomes the command), and the test types into that terminal and reads what it shows.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import airlock.sandbox
from tests.sandbox.helpers import TIMEOUT, run_sandboxed
from tests.sandbox.terminals import (
    SOURCE,
    UserTerminal,
    python,
    set_size,
    user_terminal,
    window_probe,
)

STUB = Path(airlock.sandbox.__file__).with_name("_stub.py")

DRIVER = """\
import os, signal, socket, subprocess, sys

from airlock.sandbox.terminal import Terminal

stub, command = sys.argv[1], sys.argv[2:]


def fail(*_):
    raise RuntimeError("the driver fails while the command runs")


if os.environ.get("DRIVER_FAILS"):  # on SIGUSR1
    signal.signal(signal.SIGUSR1, fail)
with Terminal() as terminal:
    ours, theirs = socket.socketpair()
    child = subprocess.Popen(
        [sys.executable, "-I", "-S", stub, str(theirs.fileno()), "0", "0", "-", *command],
        pass_fds=[theirs.fileno()],
        stdin=terminal.stdin,
        stdout=terminal.stdout,
        stderr=terminal.stderr,
    )
    theirs.close()
    try:
        _, fds, _, _ = socket.recv_fds(ours, 64, 1)
        os.close(fds[0])
        terminal.running()
        ours.sendall(b"go")
        code = child.wait()
    finally:
        child.kill()
        child.wait()
sys.exit(128 - code if code < 0 else code)
"""


def _driver(
    terminal: UserTerminal, tmp_path: Path, *command: str, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """The driver on ``terminal``, running ``command`` through the stub."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    return terminal.start([sys.executable, str(script), str(STUB), *command], env)


@pytest.fixture
def terminal() -> Iterator[UserTerminal]:
    with user_terminal() as user:
        yield user


def test_bytes_pass_both_ways(tmp_path: Path, terminal: UserTerminal) -> None:
    """What the user types reaches the command, and what the command writes is shown."""
    driver = _driver(
        terminal,
        tmp_path,
        *python("""
            import sys
            print("ready", flush=True)
            line = sys.stdin.readline()
            print("got", line.strip()[::-1])
        """),
    )
    terminal.wait_for("ready")
    terminal.type("hello\r")
    assert "got olleh" in terminal.wait_for("got olleh")
    assert driver.wait(TIMEOUT) == 0


def test_the_command_gets_the_pty_slave_not_the_users_terminal(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """Its standard streams are one terminal, not the user's; it is the controlling terminal
    of the command's session (``/dev/tty`` opens it), with the command in the foreground."""
    driver = _driver(
        terminal,
        tmp_path,
        *python("""
            import os
            print("names", *[os.ttyname(fd) for fd in (0, 1, 2)])
            tty = os.open("/dev/tty", os.O_RDWR)
            controlling = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[4])
            print("same", controlling == os.fstat(0).st_rdev)
            print("foreground", os.tcgetpgrp(tty) == os.getpgrp())
        """),
    )
    shown = terminal.wait_for("foreground True")
    assert driver.wait(TIMEOUT) == 0
    names = next(line for line in shown.splitlines() if line.startswith("names")).split()[1:]
    assert len(set(names)) == 1
    assert names[0] != os.ttyname(terminal.side)
    assert "same True" in shown
    assert "foreground True" in shown


def test_the_window_size_is_copied_and_a_change_signals_the_command(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """The command starts with the user's window size, and gets SIGWINCH with the new size
    when the user's window changes."""
    driver = _driver(
        terminal,
        tmp_path,
        *window_probe(0, 30),
    )
    terminal.wait_for("start 30 100")
    set_size(terminal.main, 40, 120)  # the terminal signals the driver, in its foreground
    assert "winch 40 120" in terminal.wait_for("winch 40 120")
    assert driver.wait(TIMEOUT) == 0


@pytest.mark.parametrize("how", ["killed", "failed"])
def test_the_users_modes_are_raw_while_the_command_runs_and_put_back(
    tmp_path: Path, terminal: UserTerminal, how: str
) -> None:
    """The user's terminal is raw while the command runs (its keys are bytes for the
    command's terminal), and has its modes back after, however the run ends: the command
    killed, or the driver failing while it runs."""
    before = terminal.modes()
    script = 'echo ready; read line; echo "read $line"; kill -9 $$'
    env = {"DRIVER_FAILS": "1"} if how == "failed" else None
    driver = _driver(terminal, tmp_path, "sh", "-c", script, env=env)
    terminal.wait_for("ready")
    during = terminal.modes()
    if how == "killed":
        terminal.type("x\r")
        terminal.wait_for("read x")
    else:
        os.kill(driver.pid, signal.SIGUSR1)
    assert driver.wait(TIMEOUT) == (137 if how == "killed" else 1)
    assert not during[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
    assert terminal.modes() == before


def test_the_relay_ends_though_processes_left_hold_the_terminal(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """The command ended, processes it left (in ``airlock run`` none outlive the sandbox)
    still hold its terminal, one of them writing on: the relay shows what came and ends."""
    script = (
        "(trap '' HUP; sleep 5) & "
        "(trap '' HUP; while echo left-behind; do sleep 0.05; done) & "
        "echo command-ends"
    )
    driver = _driver(terminal, tmp_path, "sh", "-c", script)
    started = time.monotonic()
    assert driver.wait(TIMEOUT) == 0
    assert time.monotonic() - started < 10
    assert "command-ends" in terminal.wait_for("command-ends", 1)


JOB_SHELL = """\
import os, signal, subprocess, sys, termios

cooked = termios.tcgetattr(0)
editing = termios.tcgetattr(0)
editing[3] &= ~(termios.ICANON | termios.ECHO)  # as readline leaves it at the shell's prompt
termios.tcsetattr(0, termios.TCSANOW, editing)
job = subprocess.Popen(sys.argv[1:], process_group=0)  # ``… &``: not given the terminal
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
signal.sigwait({signal.SIGUSR1})  # the user types ``fg``
termios.tcsetattr(0, termios.TCSANOW, cooked)  # the shell's own modes for a job, then the terminal
os.tcsetpgrp(0, job.pid)
os.killpg(job.pid, signal.SIGCONT)
print("brought-back", flush=True)
sys.exit(job.wait())
"""
"""A shell's job control, as ``bash`` does it: the terminal in its line editor's modes while
the job starts in the background; on SIGUSR1 (``fg``), the shell's own modes back and the job
given the terminal."""


def test_a_run_started_in_the_background_gets_the_modes_it_has_when_brought_back(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """Started in the background (``airlock run … &``), while the shell's line editor has
    the terminal without line editing or echo: the command's terminal does not take those
    modes (Ctrl-D would not end its input, nothing typed would show) but, brought to the
    foreground, the user's modes then."""
    shell = tmp_path / "shell.py"
    shell.write_text(JOB_SHELL)
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER)
    command = python("""
        import sys, termios
        print("ready", flush=True)
        sys.stdin.readline()
        print("line-editing", bool(termios.tcgetattr(0)[3] & termios.ICANON), flush=True)
    """)
    job = terminal.start(
        [sys.executable, str(shell), sys.executable, str(driver), str(STUB), *command]
    )
    try:
        terminal.wait_for("ready")
        os.kill(job.pid, signal.SIGUSR1)
        terminal.wait_for("brought-back")
        terminal.type("typed\r")
        assert terminal.line("line-editing") == "line-editing True"
        assert job.wait(TIMEOUT) == 0
    finally:
        job.kill()
        job.wait()


def _states(pid: int) -> list[str]:
    """The state of each thread of process ``pid`` (``T``: stopped)."""
    tasks = Path(f"/proc/{pid}/task")
    return [(task / "stat").read_text().rsplit(")", 1)[1].split()[0] for task in tasks.iterdir()]


def test_a_command_reads_nothing_typed_while_airlock_is_stopped(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """airlock stopped (as by its shell's job control), the command still runs: what the
    user types then, into the shell that took the terminal back, never reaches it."""
    log = tmp_path / "read.log"
    driver = _driver(
        terminal,
        tmp_path,
        *python(f"""
            import os
            print("ready", flush=True)
            with open({str(log)!r}, "ab", buffering=0) as log:
                while data := os.read(0, 1024):
                    log.write(data)
        """),
    )
    terminal.wait_for("ready")
    os.kill(driver.pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + TIMEOUT
        while set(_states(driver.pid)) != {"T"}:  # a stop takes each thread in its turn
            assert time.monotonic() < deadline
            time.sleep(0.01)
        terminal.type("hunter2-secret\r")
        time.sleep(1)
        assert not log.exists() or log.read_bytes() == b""
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(TIMEOUT)


def test_a_command_run_in_the_background_reads_nothing_typed_until_brought_back(
    tmp_path: Path, terminal: UserTerminal
) -> None:
    """Run in the background of an interactive shell, its standard input still the terminal:
    what the user types into the shell (a password prompt) never reaches the command, which
    reads its standard input, ``/dev/tty`` and the terminal through ``/proc/self/fd``; the
    driver is not stopped for it. Brought back with ``fg``, what is typed reaches it."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    reader = tmp_path / "reader.py"
    log = tmp_path / "read.log"
    reader.write_text(
        textwrap.dedent(f"""
            import os, threading
            def read(path):
                fd = os.open(path, os.O_RDONLY)
                with open({str(log)!r}, "ab", buffering=0) as log:
                    while data := os.read(fd, 1024):
                        log.write(data)
                        if b"typed-after-fg" in data:
                            os._exit(0)
            print("ready", flush=True)
            for path in ("/dev/stdin", "/dev/tty", "/proc/self/fd/2"):
                threading.Thread(target=read, args=(path,)).start()
        """)
    )
    shell = terminal.start(["bash", "--norc", "--noprofile", "-i"], env={"PS1": "$ "})
    driver = 0
    try:
        terminal.wait_for("$ ")
        terminal.type(f"{sys.executable} {script} {STUB} {sys.executable} {reader} &\r")
        shown = terminal.wait_for("ready")
        driver = int(shown.split("[1] ", 1)[1].split()[0])
        terminal.type('read -s -p "p""w:" P; echo read-by-shell "$P"\r')  # the prompt, not the line
        terminal.wait_for("pw:")
        time.sleep(0.5)  # bash flushes what is typed before its read -s set the terminal
        terminal.type("hunter2-secret\r")
        terminal.wait_for("read-by-shell hunter2-secret")
        time.sleep(1)
        assert not log.exists() or log.read_bytes() == b""
        assert "T" not in _states(driver)  # not stopped for the terminal: it ends when told
        terminal.type("fg\r")
        time.sleep(1)  # the driver looks at the foreground every half second
        terminal.type("typed-after-fg\r")
        terminal.wait_for("$ ")
        deadline = time.monotonic() + TIMEOUT
        while b"typed-after-fg" not in (log.read_bytes() if log.exists() else b""):
            assert time.monotonic() < deadline, terminal.shown
            time.sleep(0.05)
        assert b"hunter2" not in log.read_bytes()
    finally:
        if driver:  # a job of the shell's: the shell's end does not end it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(driver, signal.SIGKILL)
        shell.kill()
        shell.wait()


def test_the_stub_sets_sigpipe_and_sigxfsz_back_to_their_default(tmp_path: Path) -> None:
    """Python ignores SIGPIPE and SIGXFSZ from its start, and an ignored signal stays ignored
    across exec: the command gets them at their default, so ``seq | head -1`` ends quietly
    with 141 (SIGPIPE), as in a shell."""
    ours, theirs = socket.socketpair()
    with ours, theirs:
        fd = theirs.fileno()
        script = (
            "set -o pipefail; seq 1 1000000 | head -1; echo rc=$?; grep SigIgn /proc/self/status"
        )
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", str(STUB), str(fd), "0", "0", "-", "bash", "-c", script],
            pass_fds=[fd],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        _, fds, _, _ = socket.recv_fds(ours, 64, 1)
        socket.socket(fileno=fds[0]).close()
        ours.sendall(b"go")
        out, err = child.communicate(timeout=TIMEOUT)
    assert child.returncode == 0
    assert out.split() == ["1", "rc=141", "SigIgn:", "0000000000000000"]
    assert err == ""


def test_a_broken_pipe_ends_a_command_in_the_sandbox_by_its_signal(
    tmp_path: Path, home: Path
) -> None:
    """In a real sandbox: ``seq | head -1`` exits 141 with no "Broken pipe" message."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    ran = run_sandboxed(
        "bash -c 'set -o pipefail; seq 1 1000000 | head -1; echo rc=$?'", workspace, home
    )
    assert ran.code == 0, ran.err
    assert ran.out.split() == ["1", "rc=141"]
    assert "Broken pipe" not in ran.err


SANDBOXED_ON_A_TERMINAL = """\
import os, sys
from pathlib import Path
from airlock.sandbox import Spec, check, launch
from tests.sandbox.helpers import rules_for

workspace, home, side = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
check_foreground = (
    "import os; tty = os.open('/dev/tty', os.O_RDWR); "
    "print('foreground', os.tcgetpgrp(tty) == os.getpgrp(), flush=True)"
)
spec = Spec(
    (sys.executable, "-c", check_foreground),
    workspace,
    {"PATH": os.environ["PATH"]},
    tuple(rules_for(workspace, home)),
)
sandbox = launch(spec, check(os.environ), stdout=side, stderr=side)
try:
    sys.exit(sandbox.wait())
finally:
    sandbox.close()
"""


def test_in_a_real_sandbox_a_terminal_given_is_the_commands_controlling_one(
    tmp_path: Path, home: Path, terminal: UserTerminal
) -> None:
    """bubblewrap's ``--new-session`` leaves the command no controlling terminal: given a
    terminal (airlock gives its pty's slave), the stub makes it the controlling terminal of
    the command's own session, with the command in its foreground (job control inside)."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    script = tmp_path / "launch.py"
    script.write_text(SANDBOXED_ON_A_TERMINAL)
    root = str(Path(__file__).parents[2])
    done = subprocess.run(
        [sys.executable, str(script), str(workspace), str(home), str(terminal.side)],
        stdin=subprocess.DEVNULL,
        pass_fds=[terminal.side],
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(SOURCE), root])},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "foreground True" in terminal.wait_for("foreground True", 5)
