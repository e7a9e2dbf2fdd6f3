"""``airlock run``'s end when a process inside stops what ends the sandbox: a command that
ptrace-attaches to the sandbox's init (process 1 of its PID namespace, bubblewrap's) and
leaves it stopped, a tracer inside that holds the command's end unreported, and a command
stopped by SIGSTOP when airlock is told to stop. Each run ends promptly with the command's
exit status, its report and its audit log's ``run`` record written, and nothing it started
left running."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.sandbox.helpers import processes_holding

ENDS_WITHIN = 30.0
"""Seconds a run is given to end; one that hangs is killed then (kill -9: all inside dies)."""

ATTACH_TO_INIT = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH to the sandbox's init
    print("cannot attach:", ctypes.get_errno())
    sys.exit(3)
print("attached", flush=True)
time.sleep(0.3)  # the tracer ends: its tracee stays stopped
"""

HOLD_THE_COMMAND = """
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
child = os.fork()
if child == 0:  # attaches to the command, lets it go on, and stays, never waiting for it
    target = os.getppid()
    if libc.ptrace(16, target, None, None) != 0:  # PTRACE_ATTACH
        open("refused", "w").close()
        os._exit(3)
    os.waitpid(target, 0x40000000)  # __WALL: its stop as attached
    libc.ptrace(7, target, None, None)  # PTRACE_CONT
    open("attached", "w").close()
    os.execvp("sleep", ["sleep", sys.argv[1]])
while not (os.path.exists("attached") or os.path.exists("refused")):
    time.sleep(0.02)
print("attached" if os.path.exists("attached") else "cannot attach", flush=True)
os._exit(9)
"""


@dataclass
class Ended:
    code: int | str
    seconds: float
    out: str
    err: str
    report: dict[str, object]
    last_record: dict[str, object]
    left: list[str]
    scratch: list[str]


def _marker() -> str:
    """A ``sleep`` duration no other test's command has: its processes are found by it."""
    return f"{300 + random.random():.6f}"


def _run(
    tmp_path: Path,
    project: Path,
    script: str,
    markers: tuple[str, ...],
    files: dict[str, str] | None = None,
    stopped: str | None = None,
    options: tuple[str, ...] = (),
) -> Ended:
    """``airlock run OPTIONS -- sh -c SCRIPT`` in ``project`` (``files`` written there first);
    with ``stopped``, SIGTERM once a process holding that marker is stopped."""
    for name, text in (files or {}).items():
        (project / name).write_text(text, encoding="utf-8")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    home = tmp_path / "home"
    started = time.monotonic()
    run = subprocess.Popen(
        [
            sys.executable, "-m", "airlock", "run", "--audit-log", str(home / "audit.jsonl"),
            "--report-json", str(home / "report.json"), *options, "--", "sh", "-c", script,
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(scratch)},
    )  # fmt: skip
    try:
        if stopped is not None:
            while not any(state == "T" for _, state in processes_holding(stopped)):
                assert run.poll() is None and time.monotonic() - started < ENDS_WITHIN
                time.sleep(0.05)
            run.send_signal(signal.SIGTERM)
        out, err = run.communicate(timeout=max(1.0, ENDS_WITHIN - (time.monotonic() - started)))
        code: int | str = run.returncode
    except (subprocess.TimeoutExpired, AssertionError):
        run.kill()  # kill -9: bubblewrap, and all inside, die with airlock
        out, err = run.communicate()
        code = "still running"
    seconds = time.monotonic() - started
    time.sleep(0.3)  # what was killed at the end is gone from /proc by now
    records = (home / "audit.jsonl").read_text(encoding="utf-8").splitlines()
    report = json.loads((home / "report.json").read_text(encoding="utf-8"))
    left = [line for line, _ in processes_holding(*markers, str(project))]
    return Ended(
        code,
        seconds,
        out,
        err,
        report,
        json.loads(records[-1]),
        left,
        sorted(entry.name for entry in scratch.iterdir()),
    )


def _assert_ended(ended: Ended, code: int) -> None:
    assert ended.code == code, ended
    assert ended.seconds < ENDS_WITHIN, ended
    assert ended.report["complete"] is True and ended.report["exit_code"] == code, ended.report
    assert ended.last_record["type"] == "run", ended.last_record
    assert ended.last_record["exit_code"] == code, ended.last_record
    assert ended.left == [], ended.left
    assert ended.scratch == [], ended.scratch


def test_a_command_that_leaves_the_sandboxs_init_stopped_ends_the_run(
    tmp_path: Path, project: Path
) -> None:
    """The command ptrace-attaches to process 1 inside (bubblewrap's init) and its tracer
    ends, leaving init stopped: init can no longer reap the command nor tell bubblewrap it
    ended. The run ends all the same once the command does, with its status (7), its report
    and its ``run`` record; a child it left in the background is gone, and so is all else.
    Run with ``--allow-mounts``: under the Landlock rules of a default run the command cannot
    trace the init, which is outside them."""
    marker = _marker()
    ended = _run(
        tmp_path,
        project,
        f"sleep {marker} & python3 attach.py || exit 99; exit 7",
        (marker,),
        {"attach.py": ATTACH_TO_INIT},
        options=("--allow-mounts",),
    )
    if "cannot attach" in ended.out:  # Yama's ptrace_scope, or another bound, refuses it here
        pytest.skip(ended.out.strip())
    assert "attached" in ended.out, ended
    _assert_ended(ended, 7)


def test_a_tracer_inside_that_holds_the_commands_end_does_not_hold_the_run(
    tmp_path: Path, project: Path
) -> None:
    """A process inside traces the command and stays, never waiting for it: the command's end
    is reported to that tracer, not to init, which never tells bubblewrap. The run ends once
    the command does, with its status (9); the tracer is gone with the sandbox."""
    marker = _marker()
    ended = _run(
        tmp_path,
        project,
        f"exec python3 hold.py {marker}",
        (marker,),
        {"hold.py": HOLD_THE_COMMAND},
    )
    if "cannot attach" in ended.out:
        pytest.skip(ended.out.strip())
    assert "attached" in ended.out, ended
    _assert_ended(ended, 9)


def test_a_stopped_command_ends_at_the_first_signal(tmp_path: Path, project: Path) -> None:
    """The command stops itself (SIGSTOP: no terminal, no shell to continue it); SIGTERM to
    airlock ends it at once, as ``timeout`` would (SIGCONT follows the signal passed on), not
    only a second signal within 5 s: exit 143, the report and the ``run`` record written."""
    marker = _marker()
    ended = _run(
        tmp_path,
        project,
        f"kill -STOP $$; sleep {marker}; exit 12",
        (marker,),
        stopped=marker,
    )
    _assert_ended(ended, 128 + signal.SIGTERM)
    assert "second signal" not in ended.err, ended.err


def test_sigterm_while_the_run_ends_finishes_making_safe_and_says_so(
    tmp_path: Path, project: Path
) -> None:
    """SIGTERM after the command ended, while airlock looks at what it made (120,000 folders):
    airlock is not killed by it (it died of it, its report unwritten and the making safe left
    to the next run); the step under way is said to be left undone, or the run says it was
    stopped, and the report file says how the run ended."""
    home = tmp_path / "home"
    script = (
        "for i in $(seq 1 400); do mkdir -p d/$i && (cd d/$i && seq 1 300 | xargs mkdir); done;"
        " touch ended; exit 4"
    )
    run = subprocess.Popen(
        [
            sys.executable, "-m", "airlock", "run", "--audit-log", str(home / "audit.jsonl"),
            "--report-json", str(home / "report.json"), "--", "sh", "-c", script,
        ],
        cwd=project, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        started = time.monotonic()
        while not (project / "ended").exists():
            assert run.poll() is None and time.monotonic() - started < 120, run.poll()
            time.sleep(0.01)
        time.sleep(0.15)  # the command has ended: airlock looks at what it made
        assert run.poll() is None, "the run ended before its look after the command"
        run.send_signal(signal.SIGTERM)
        _, err = run.communicate(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode != -signal.SIGTERM, err[-2000:]
    assert run.returncode in (4, 128 + signal.SIGTERM), (run.returncode, err[-2000:])
    if run.returncode == 4:  # inside a step of making safe: that one is said, the rest ran
        assert "airlock: interrupted, did not" in err, err[-2000:]
        assert json.loads((home / "report.json").read_text())["exit_code"] == 4
    else:  # between two steps: every step ran, and the run says what stopped it
        assert "airlock run: stopped by SIGTERM" in err, err[-2000:]
