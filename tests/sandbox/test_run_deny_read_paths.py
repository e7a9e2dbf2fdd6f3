"""``sandbox.filesystem.denyRead`` paths told as ``--hide`` paths are: the workspace itself is
refused before bubblewrap is started (it was "read-only inside (?)" and then a bubblewrap
failure), and an entry that names nothing (a typo, a space at its end) is said, not skipped
without a word."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli import airlock
from tests.conftest import write_json


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=60)


def test_a_deny_read_of_the_workspace_is_refused(tmp_path: Path, project: Path) -> None:
    settings = write_json(
        project / ".claude" / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["."]}}},
    )
    refused = _run(tmp_path, "--", "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert not (project / "ran").exists()
    assert (
        f"sandbox.filesystem.denyRead '.' in project settings {settings}: that is the "
        f"workspace ({project.resolve()}), where the command runs" in refused.stderr
    )
    assert "(?)" not in refused.stderr and "bwrap" not in refused.stderr


def test_a_deny_read_that_names_nothing_is_said(
    tmp_path: Path, project: Path, config_dir: Path, home: Path
) -> None:
    """``~/.awss`` for ``~/.aws``, ``./notes.txt `` for ``./notes.txt``: each hides nothing;
    the run goes on (as with ``--hide``) and says so, naming the entry and its file."""
    (project / "notes.txt").write_text("kept\n")
    settings = write_json(
        config_dir / "settings.json",
        {"sandbox": {"filesystem": {"denyRead": ["~/.awss", "./notes.txt "]}}},
    )
    done = _run(tmp_path, "--", "touch", "ran")
    assert done.returncode == 0, done.stderr
    assert (project / "ran").exists()
    assert (
        f"airlock run: sandbox.filesystem.denyRead '~/.awss' in user settings {settings}: no "
        f"such file or folder ({home / '.awss'}), so nothing to hide there" in done.stderr
    )
    assert (
        f"sandbox.filesystem.denyRead './notes.txt ' in user settings {settings}: no such "
        f"file or folder ({project / 'notes.txt '}) (the entry begins or ends with a space), "
        "so nothing to hide there" in done.stderr
    )
