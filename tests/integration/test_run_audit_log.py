"""``airlock run`` with an audit log it must not append to: refused with 125 and the reason,
before the command runs, never a traceback or a wait."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from airlock.egress.audit import GENESIS
from tests.cli import airlock


def _run(log: Path, tmp_path: Path, padding: int = 0) -> tuple[int, str]:
    """``airlock run`` in ``tmp_path/ws``: the command leaves ``ran`` there; with
    ``padding``, an argument of that many characters it does not use makes its run record
    (which holds the command) that much longer."""
    workspace = tmp_path / "ws"
    workspace.mkdir(exist_ok=True)
    command = ["sh", "-c", "touch ran", "sh", "p" * padding] if padding else ["touch", "ran"]
    done = airlock("run", "--audit-log", str(log), "--", *command, cwd=workspace, timeout=60)
    return done.returncode, done.stderr


def _limited_run(log: Path, tmp_path: Path, limit: int) -> subprocess.CompletedProcess[str]:
    """``airlock run -- touch ran`` in ``tmp_path/ws`` under a file-size limit of ``limit``
    bytes (every file it writes: a write past it fails with EFBIG)."""

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit: EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "airlock", "run", "--audit-log", str(log), "--", "touch", "ran"],
        capture_output=True,
        text=True,
        cwd=tmp_path / "ws",
        timeout=60,
        check=False,
        preexec_fn=limited,
    )


PADDING = 20_000
"""Each run before a file-size limit is set grows the log by this much more than its heads
file (whose lines name the log's path): the limit, set just past the log, must leave room
for the heads file's next lines, and the heads file grows almost as fast as the log."""


def test_a_fifo_as_the_log_is_refused_at_once(tmp_path: Path) -> None:
    """Opening a FIFO for writing waits for a reader: the run would hang before anything."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, stderr = _run(fifo, tmp_path)
    assert code == 125 and f"--audit-log {fifo}: not a regular file" in stderr
    assert not (tmp_path / "ws" / "ran").exists()


@pytest.mark.parametrize("last", ['{"seq": null}', '{"type": "note"}', "[1, 2]"])
def test_a_log_whose_last_line_is_no_record_is_refused(tmp_path: Path, last: str) -> None:
    log = tmp_path / "audit.jsonl"
    first = orjson.dumps({"type": "start", "seq": 0, "prev": GENESIS}).decode()
    log.write_text(f"{first}\n{last}\n")
    code, stderr = _run(log, tmp_path)
    assert code == 125 and "Traceback" not in stderr
    assert f"audit log {log}: its last line (line 2) is no audit record" in stderr
    assert not (tmp_path / "ws" / "ran").exists()


def test_a_log_cut_short_since_its_last_run_is_refused(tmp_path: Path) -> None:
    """The log no longer holds what the last run checkpointed: the next run does not chain
    on (and so vouch for) what is left."""
    log = tmp_path / "audit.jsonl"
    code, stderr = _run(log, tmp_path)
    assert code == 0, stderr
    (tmp_path / "ws" / "ran").unlink()
    log.write_bytes(log.read_bytes().splitlines(keepends=True)[0])  # the run record gone
    code, stderr = _run(log, tmp_path)
    assert code == 125 and f"audit log {log}: it does not hold what run" in stderr
    assert "to start a new log move the file aside, with its heads file" in stderr
    assert not (tmp_path / "ws" / "ran").exists()


@pytest.mark.parametrize("how", ["removed", "emptied"])
def test_a_log_removed_or_emptied_since_its_last_run_is_refused(tmp_path: Path, how: str) -> None:
    """A log in the workspace is read-only to the run that names it, not to one that does
    not: removed or emptied there, the next run naming it does not start a new log over the
    loss without a word."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    log = workspace / "audit.jsonl"
    code, stderr = _run(log, tmp_path)
    assert code == 0, stderr
    assert f"the audit log {log} is in the workspace" in stderr
    script = "rm audit.jsonl" if how == "removed" else ": > audit.jsonl"
    done = airlock(
        "run", "--audit-log", str(tmp_path / "other.jsonl"), "--", "sh", "-c", script,
        cwd=workspace,
    )  # fmt: skip
    assert done.returncode == 0 and log.read_bytes() == b"" if log.exists() else True
    (workspace / "ran").unlink()
    code, stderr = _run(log, tmp_path)
    assert code == 125, stderr
    assert f"audit log {log}: it holds no record, but run " in stderr
    assert "it was removed or emptied since" in stderr
    assert not (workspace / "ran").exists()


def test_a_log_that_fails_at_the_run_record_ends_the_run_with_125(tmp_path: Path) -> None:
    """The log takes the start record, then no more (a file-size limit: the run record's write
    fails at the end): the run exits 125 naming the log and the command's own status, with
    no traceback (the failure comes after the proxy's loop closed)."""
    log = tmp_path / "audit.jsonl"
    for _ in range(3):  # runs first: the log grows past the run's other files (its heads, the
        # note of what to make safe), which the limit must leave room for
        assert _run(log, tmp_path, PADDING)[0] == 0
        (tmp_path / "ws" / "ran").unlink()
    start = len(log.read_bytes().splitlines()[0]) + 1
    limit = log.stat().st_size + start + 64  # the next start record fits, its run record not

    done = _limited_run(log, tmp_path, limit)
    assert (tmp_path / "ws" / "ran").exists()  # the command ran
    assert done.returncode == 125, done.stderr
    assert "Traceback" not in done.stderr and "Exception" not in done.stderr, done.stderr
    assert f"audit log {log} could not be written" in done.stderr
    assert "the command exited 0, airlock exits 125" in done.stderr
    assert "no final hash (the log failed" in done.stderr and "final hash None" not in done.stderr


def test_a_log_that_cannot_take_the_start_record_runs_nothing(tmp_path: Path) -> None:
    """The log takes no more (a file-size limit just past it): the start record is written
    before the command, so its failure stops the run with 125 and nothing run (it was
    queued, written 50 ms later, with the command already going); the log is as it was."""
    log = tmp_path / "audit.jsonl"
    for _ in range(3):  # the log grows past the run's other files, which the limit must fit
        assert _run(log, tmp_path, PADDING)[0] == 0
        (tmp_path / "ws" / "ran").unlink()
    before = log.read_bytes()
    limit = len(before) + 16  # not a start record more

    done = _limited_run(log, tmp_path, limit)
    assert done.returncode == 125, done.stderr
    assert not (tmp_path / "ws" / "ran").exists()  # the command did not run
    assert f"audit log {log}: the run's start could not be written (" in done.stderr
    assert "nothing ran" in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert log.read_bytes() == before
    verified = airlock("audit", "verify", str(log), timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_workspace_inside_airlocks_own_state_is_refused(tmp_path: Path) -> None:
    """A workspace in <config dir>/airlock (its heads folder, say) would be writable inside,
    the checkpoints with it: refused with 125 before anything runs."""
    config = tmp_path / "config"
    heads = config / "airlock" / "audit-heads"
    heads.mkdir(parents=True)
    done = airlock(
        "run",
        "--",
        "touch",
        "ran",
        cwd=heads,
        env={"CLAUDE_CONFIG_DIR": str(config)},
        timeout=60,
    )
    assert done.returncode == 125, done.stderr
    assert "is inside airlock's own state" in done.stderr
    assert not (heads / "ran").exists()
