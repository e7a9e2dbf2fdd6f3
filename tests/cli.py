"""Run the real ``airlock`` command in a child process, as a user or a script would."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Literal, overload


@overload
def airlock(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str = "",
    timeout: float = 120,
    text: Literal[True] = True,
) -> subprocess.CompletedProcess[str]: ...


@overload
def airlock(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes = b"",
    timeout: float = 120,
    text: Literal[False],
) -> subprocess.CompletedProcess[bytes]: ...


def airlock(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: str | bytes | None = None,
    timeout: float = 120,
    text: bool = True,
) -> subprocess.CompletedProcess[str] | subprocess.CompletedProcess[bytes]:
    """``airlock ARGS…`` with the test's environment (plus ``env``) and wide columns.

    Text in and out, or bytes with ``text=False`` (``stdin`` then bytes too); stdin is empty
    unless given.
    """
    return subprocess.run(
        [sys.executable, "-m", "airlock", *args],
        capture_output=True,
        text=text,
        input=stdin if stdin is not None else "" if text else b"",
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=cwd or Path.cwd(),
        timeout=timeout,
        check=False,
    )


def run_script(
    tmp_path: Path,
    script: str,
    *options: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """``airlock run OPTIONS… -- sh -c SCRIPT``, its audit log ``tmp_path/audit.jsonl``."""
    return airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        *options,
        "--",
        "sh",
        "-c",
        script,
        env=env,
        cwd=cwd,
        timeout=180,
    )


def on_a_terminal(
    *args: str, cwd: Path, typescript: Path, env: dict[str, str] | None = None
) -> bytes:
    """``airlock ARGS…`` with a terminal for its streams (``script``'s pseudo-terminal, the
    test's environment plus ``env``): the bytes the terminal was sent, from ``typescript``."""
    command = shlex.join([sys.executable, "-m", "airlock", *args])
    done = subprocess.run(
        ["script", "-qec", command, str(typescript)],
        capture_output=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return typescript.read_bytes()
