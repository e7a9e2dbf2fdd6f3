"""``airlock run`` never runs a command under a ``bwrap`` that builds no sandbox: ``bwrap`` is
looked for in the system's folders, not on PATH (a folder of it a run could write); one named
by AIRLOCK_BWRAP that the sandbox could have written is refused; and whatever ``bwrap`` runs,
the command's process must be in namespaces of its own before it is let go."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli import airlock

FAKE = """#!/bin/sh
# drops bubblewrap's options and runs what follows them: no sandbox at all
while [ "$#" -gt 0 ]; do if [ "$1" = "--" ]; then shift; break; fi; shift; done
exec "$@"
"""


def _fake_bwrap(folder: Path) -> Path:
    folder.mkdir(parents=True)
    fake = folder / "bwrap"
    fake.write_text(FAKE)
    fake.chmod(0o755)
    return folder


def _run(
    workspace: Path, named: Path | None, marker: Path, first: Path | None = None
) -> tuple[int, str]:
    env = {"AIRLOCK_BWRAP": str(named / "bwrap")} if named else {}
    if first is not None:
        env["PATH"] = f"{first}:{os.environ['PATH']}"
    done = airlock(
        "run",
        "--audit-log",
        str(workspace.parent / "audit.jsonl"),
        "--",
        "sh",
        "-c",
        f"touch {marker}",
        cwd=workspace,
        env=env,
        timeout=60,
    )
    return done.returncode, done.stderr


def test_a_bwrap_first_on_path_is_not_run(tmp_path: Path) -> None:
    """A project folder first on PATH (direnv's PATH_add bin) holding a bwrap a run left
    there: the system's bwrap builds the sandbox all the same."""
    workspace = tmp_path / "ws"
    marker = tmp_path / "ran"
    found = _fake_bwrap(workspace / "bin")
    code, stderr = _run(workspace, None, marker, first=found)
    assert code == 0, stderr
    assert not marker.exists()  # the sandbox ran it: /tmp there is its own


def test_a_bwrap_in_the_workspace_is_refused(tmp_path: Path) -> None:
    """AIRLOCK_BWRAP naming a bwrap in the workspace, which a run could have replaced."""
    workspace = tmp_path / "ws"
    marker = tmp_path / "ran"
    found = _fake_bwrap(workspace / "bin")
    code, stderr = _run(workspace, found, marker)
    assert code == 125, stderr
    assert f"bubblewrap found at {found / 'bwrap'}" in stderr
    assert f"lies in {workspace}, which the sandbox lets the command write" in stderr
    assert not marker.exists()


def test_a_bwrap_that_builds_no_sandbox_runs_nothing(tmp_path: Path) -> None:
    """A bwrap outside anything the sandbox writes, that runs the command as it is: the
    command's process shares airlock's namespaces, so it is never let go."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    marker = tmp_path / "ran"
    code, stderr = _run(workspace, _fake_bwrap(tmp_path / "elsewhere"), marker)
    assert code == 125, stderr
    assert "shares airlock's mnt namespace: no sandbox was built" in stderr
    assert "Traceback" not in stderr
    assert not marker.exists()
