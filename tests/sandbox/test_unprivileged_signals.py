"""``airlock run`` as an unprivileged user (``nobody``), told to stop by a signal."""

from __future__ import annotations

import json

from tests.sandbox.unprivileged import as_nobody

PROGRAM = """
import ctypes, json, os, random, signal, subprocess, sys, time
from pathlib import Path

ws, home = Path(os.getcwd()), Path(os.environ["HOME"])
scratch = home / "tmp"
scratch.mkdir()
seconds = f"{300 + random.random():.6f}"  # this run's, among other tests' commands
run = subprocess.Popen(
    [sys.executable, "-m", "airlock", "run", "--audit-log", str(home / "audit.jsonl"), "--",
     "sh", "-c", "curl -s -o /dev/null http://refused.invalid/; echo started > started; "
     f"exec sleep {seconds}"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    env={**os.environ, "TMPDIR": str(scratch)},
)
deadline = time.monotonic() + 60
tasks = Path(f"/proc/{run.pid}/task")
others = []
waiting = ""
while not ((ws / "started").exists() and others and waiting.startswith(("do_wait", "poll", "do_sys_poll"))):
    # the proxy has answered the command's request: airlock's main thread has started it
    # and waits for the command's end
    if time.monotonic() > deadline or run.poll() is not None:
        run.kill()
        raise AssertionError(run.communicate()[1])
    time.sleep(0.05)
    others = [int(task.name) for task in tasks.iterdir() if int(task.name) != run.pid]
    waiting = (tasks / str(run.pid) / "wchan").read_text()
# the kernel may hand a signal sent to a process to any of its threads: here, not the main one
libc = ctypes.CDLL(None, use_errno=True)
assert libc.syscall(234, run.pid, others[0], signal.SIGTERM) == 0  # tgkill (x86_64)
try:
    code = run.wait(20)
except subprocess.TimeoutExpired:
    run.kill()
    code = "still running"
run.wait()
def command_line(process):
    try:
        return (process / "cmdline").read_bytes()
    except OSError:  # gone meanwhile
        return b""
left = [
    process.name for process in Path("/proc").iterdir()
    if process.name.isdigit() and f"sleep\\0{seconds}".encode() in command_line(process)
]
print(json.dumps({"code": code, "left": left, "scratch": sorted(os.listdir(scratch)),
                  "err": run.stderr.read().decode(errors="replace")}))
"""


def test_a_signal_another_thread_receives_still_ends_the_command() -> None:
    """SIGTERM to airlock, taken by one of its threads other than the main one (the kernel
    picks any that does not block it): the command gets it and ends at once, airlock exits
    with its status, and no process or scratch folder is left."""
    done = as_nobody(PROGRAM)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["code"] == 128 + 15, found
    assert found["left"] == [], found
    assert found["scratch"] == [], found


IGNORED = """
import json, os, signal, subprocess, sys, time
from pathlib import Path

ws, home = Path(os.getcwd()), Path(os.environ["HOME"])

def ignore():  # as nohup does (SIGHUP), and a shell for a script's job run with & (SIGINT)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

run = subprocess.Popen(
    [sys.executable, "-m", "airlock", "run", "--audit-log", str(home / "audit.jsonl"), "--",
     "sh", "-c", "grep SigIgn /proc/self/status > ignored; "
     "i=0; while [ ! -e go ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; echo ended > ended"],
    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    preexec_fn=ignore,
)
deadline = time.monotonic() + 60
while not (ws / "ignored").exists():
    if time.monotonic() > deadline or run.poll() is not None:
        run.kill()
        raise AssertionError(run.communicate()[1])
    time.sleep(0.05)
run.send_signal(signal.SIGHUP)  # the terminal nohup shielded it from hangs up
(ws / "go").touch()
try:
    code = run.wait(60)
except subprocess.TimeoutExpired:
    run.kill()
    code = "still running"
ignored = int((ws / "ignored").read_text().split()[1], 16)
print(json.dumps({"code": code, "ended": (ws / "ended").exists(),
                  "hup": bool(ignored & 1 << signal.SIGHUP - 1),
                  "int": bool(ignored & 1 << signal.SIGINT - 1),
                  "err": run.stderr.read().decode(errors="replace")}))
"""


def test_signals_ignored_when_airlock_starts_stay_ignored_for_the_command() -> None:
    """``nohup airlock run …``: SIGHUP ignored at the start is not turned into one passed on
    to the command, which inherits it ignored, as run without airlock (so does a SIGINT a
    shell ignores for a script's job in the background); the hang-up leaves the run going."""
    done = as_nobody(IGNORED)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["hup"] and found["int"], found
    assert found["code"] == 0 and found["ended"], found
