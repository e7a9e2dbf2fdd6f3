"""``airlock run`` started in the background, for tests that then signal or kill it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def start_run(tmp_path: Path, script: str) -> subprocess.Popen[str]:
    """``airlock run -- sh -c SCRIPT``, once SCRIPT has printed its first line (``started``).

    Its audit log is ``tmp_path/a.jsonl`` and its scratch folder under ``tmp_path``: killed,
    airlock cannot remove it. The caller kills it, waits for it and closes its ``stdout``.
    """
    log = str(tmp_path / "a.jsonl")
    process = subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "--audit-log", log, "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    return process
