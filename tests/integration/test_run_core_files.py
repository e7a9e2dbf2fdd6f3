"""A run that holds the run's CA key (``--inspect``) or reads a git token (``--repo``) writes
no core file: a crash would put the key, which is gone when the run ends, in a file or in the
system's crash collector. airlock's own limit is lowered, and the command inherits it. A run
without either leaves the limit as it was given."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest


def _core_limit(pid: int) -> str:
    """The soft core-file limit in ``/proc/PID/limits`` (``0``, ``unlimited``, …)."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max core file size"):
            return line.split()[4]
    raise AssertionError(f"no core-file limit for process {pid}")


@pytest.mark.parametrize(
    ("options", "inside"),
    [
        (["--inspect", "api.anthropic.com"], "0"),
        (["--repo", "owner/name", "--git-token-file", "TOKEN"], "0"),
        ([], "unlimited"),
    ],
)
def test_a_run_holding_a_key_or_a_token_writes_no_core_file(
    tmp_path: Path, options: list[str], inside: str
) -> None:
    token = tmp_path / "token"
    token.write_text("not-a-real-token\n")
    token.chmod(0o600)
    options = [str(token) if option == "TOKEN" else option for option in options]
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    ready = workspace / "ready"
    process = subprocess.Popen(
        [
            "prlimit", "--core=unlimited",
            sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "a.jsonl"),
            *options,
            "--", "sh", "-c", f"ulimit -Sc; touch {ready}; sleep 30",
        ],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
        cwd=workspace,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), process.communicate(timeout=30)
        own = _core_limit(process.pid)  # prlimit execs airlock: the same process
    finally:
        process.terminate()
        out, err = process.communicate(timeout=60)
    assert out.split()[:1] == [inside], err
    assert own == inside
