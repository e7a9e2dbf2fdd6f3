"""``airlock run`` raises its soft open-files limit so that its proxy can hold its 512
connections at once (two sockets each): at the usual 1,024 it ran out past about 500 tunnels
and reset connections with no answer. Never past the hard limit, never lowered; the command
inherits it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airlock.cli.run import OPEN_FILES


@pytest.mark.parametrize(
    ("limits", "inside"),
    [
        ("1024:8192", f"{OPEN_FILES} 8192"),  # raised to what the proxy needs
        ("1024:2000", "2000 2000"),  # as far as the hard limit lets it
        ("9000:9000", "9000 9000"),  # never lowered
    ],
)
def test_the_soft_open_files_limit_is_raised_for_the_proxy(
    tmp_path: Path, limits: str, inside: str
) -> None:
    done = subprocess.run(
        [
            "prlimit", f"--nofile={limits}",
            sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "a.jsonl"),
            "--", "sh", "-c", "echo $(ulimit -Sn) $(ulimit -Hn)",
        ],
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == inside.split()
