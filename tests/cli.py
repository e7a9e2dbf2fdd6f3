"""Run the real ``airlock`` command in a child process, as a user or a script would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def airlock(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str = "",
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """``airlock ARGS…`` with the test's environment (plus ``env``), text in and out, wide columns."""
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd or Path.cwd(),
        timeout=timeout,
        check=False,
    )
