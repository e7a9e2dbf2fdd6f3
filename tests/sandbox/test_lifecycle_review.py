"""The sandbox's lifecycle: a signal passed on before the command has started, what the
command left running gone once its end is known, and, as an unprivileged user (``nobody``),
a command that leaves the sandbox's init stopped: the run still ends."""

from __future__ import annotations

import json
import os
import random
import signal
from pathlib import Path

import pytest

from airlock.sandbox import Spec, check, launch
from airlock.sandbox.launcher import start
from tests.sandbox.helpers import processes_holding, rules_for
from tests.sandbox.unprivileged import as_nobody


def test_a_signal_passed_on_before_the_command_runs_reaches_the_command(
    project: Path, home: Path, tmp_path: Path
) -> None:
    """SIGINT passed on while the stub still waits for ``go`` (``airlock run`` sends those it
    took during start-up as it lets the command go) is held until the stub has become the
    command: the command dies of it (130), and the stub's Python never takes it (no
    ``KeyboardInterrupt`` traceback of airlock's own on the command's stderr)."""
    err = tmp_path / "err.txt"
    spec = Spec(
        ("sh", "-c", "exec sleep 30"),
        project,
        {"PATH": os.environ["PATH"], "HOME": str(home)},
        tuple(rules_for(project, home)),
    )
    with err.open("wb") as stderr:
        sandbox = start(spec, check(os.environ), stderr=stderr.fileno()).ready()
    try:
        sandbox.signal(signal.SIGINT)
        sandbox.go()
        code = sandbox.process.wait(30)
    finally:
        sandbox.close()
    text = err.read_text(errors="replace")
    assert "KeyboardInterrupt" not in text and "Traceback" not in text, text
    assert code == 128 + signal.SIGINT


STOPPED_INIT = """
import json, os, subprocess, sys, time
from pathlib import Path

ws, home = Path(os.getcwd()), Path(os.environ["HOME"])
(ws / "attach.py").write_text('''
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
if libc.ptrace(16, 1, None, None) != 0:  # PTRACE_ATTACH to the sandbox's init
    print("cannot attach:", ctypes.get_errno())
    sys.exit(3)
print("attached", flush=True)
time.sleep(0.3)
''')
scratch = home / "tmp"
scratch.mkdir()
started = time.monotonic()
run = subprocess.Popen(
    [sys.executable, "-m", "airlock", "run", "--audit-log", str(home / "audit.jsonl"),
     "--allow-mounts", "--", "sh", "-c", "python3 attach.py || exit 99; exit 7"],
    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    env={**os.environ, "TMPDIR": str(scratch)},
)
try:
    out, err = run.communicate(timeout=30)
    code = run.returncode
except subprocess.TimeoutExpired:
    run.kill()
    out, err = run.communicate()
    code = "still running"
last = json.loads((home / "audit.jsonl").read_text().splitlines()[-1])
print(json.dumps({"code": code, "seconds": time.monotonic() - started, "out": out.decode(),
                  "err": err.decode(errors="replace"), "last": [last["type"], last.get("exit_code")],
                  "scratch": sorted(os.listdir(scratch))}))
"""


def test_an_unprivileged_run_whose_init_is_left_stopped_ends_with_the_commands_status() -> None:
    """As ``nobody`` (bubblewrap in user namespaces of its own): a command that leaves the
    sandbox's init stopped (ptrace-attached by a tracer that ended) exits 7; the run ends
    with 7, read from the command's end through those namespaces, its ``run`` record
    written and its scratch folder removed. Run with ``--allow-mounts``: under the Landlock
    rules of a default run the command cannot trace the init, which is outside them."""
    done = as_nobody(STOPPED_INIT)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    if "cannot attach" in found["out"]:
        pytest.skip(found["out"].strip())
    assert found["code"] == 7, found
    assert found["last"] == ["run", 7], found
    assert found["scratch"] == [], found


def test_what_the_command_left_running_is_gone_when_its_end_is_known(
    project: Path, home: Path
) -> None:
    """The command leaves children in the background, one in a session of its own, and exits:
    when :meth:`Sandbox.wait` gives its status, none of them still runs (they die with the
    sandbox's init, which bubblewrap's end kills; ``airlock run`` looks at what the command
    wrote right after)."""
    marker = f"{300 + random.random():.6f}"
    script = " ".join(f"sleep {marker} &" for _ in range(6)) + f" setsid sleep {marker} & exit 3"
    sandbox = launch(
        Spec(
            ("sh", "-c", script),
            project,
            {"PATH": os.environ["PATH"], "HOME": str(home)},
            tuple(rules_for(project, home)),
        ),
        check(os.environ),
    )
    try:
        code = sandbox.wait()
        left = [state for _, state in processes_holding(marker)]
    finally:
        sandbox.close()
    assert code == 3
    assert left == [], left
