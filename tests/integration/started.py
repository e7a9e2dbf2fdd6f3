"""``airlock run`` started in the background, for tests that then signal or kill it, and the
command line that runs a shell script in it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def sh_run(log: str | Path, script: str) -> list[str]:
    """The command line of ``airlock run --audit-log LOG -- sh -c SCRIPT``."""
    airlock_run = [sys.executable, "-m", "airlock", "run", "--audit-log", str(log)]
    return [*airlock_run, "--", "sh", "-c", script]


def start_run(tmp_path: Path, script: str) -> subprocess.Popen[str]:
    """``airlock run -- sh -c SCRIPT``, once SCRIPT has printed its first line (``started``).

    Its audit log is ``tmp_path/a.jsonl`` and its scratch folder under ``tmp_path``: killed,
    airlock cannot remove it. The caller kills it, waits for it and closes its ``stdout``.
    """
    process = subprocess.Popen(
        sh_run(tmp_path / "a.jsonl", script),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    return process


def killed_once_started(project: Path, *options: str) -> None:
    """``airlock run OPTIONS -- sh -c 'touch started; sleep 60'`` in ``project``, killed with
    SIGKILL (``kill -9``: airlock does nothing more) once its command runs."""
    started = project / "started"
    command = [
        sys.executable, "-m", "airlock", "run", *options,
        "--", "sh", "-c", f"touch {started}; sleep 60",
    ]  # fmt: skip
    with subprocess.Popen(
        command, cwd=project, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    ) as airlock_run:
        try:
            deadline = time.monotonic() + 60
            while not started.exists() and time.monotonic() < deadline:
                assert airlock_run.poll() is None, airlock_run.stderr
                time.sleep(0.05)
            assert started.exists()
        finally:
            os.kill(airlock_run.pid, signal.SIGKILL)
            airlock_run.wait(30)
