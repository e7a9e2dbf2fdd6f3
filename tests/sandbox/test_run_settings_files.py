"""``airlock run`` and ``airlock flows`` with a settings file that cannot be read: the run is
refused (125, naming the file and why, nothing run) as for a restriction of the wrong kind,
since what the file would take away cannot be told; flows says so. Neither waits on a FIFO."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import airlock


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=60)


def test_a_user_file_that_is_not_json_stops_the_run(
    tmp_path: Path, home: Path, config_dir: Path, project: Path
) -> None:
    """One trailing comma in ~/.claude/settings.json: its denyRead is unknown, so the command
    does not run and the secret it names is not printed."""
    (home / "secret").mkdir()
    (home / "secret" / "s.txt").write_text("the-secret-value\n")
    settings = config_dir / "settings.json"
    settings.write_text('{"sandbox":{"filesystem":{"denyRead":["~/secret"],}}}')
    refused = _run(tmp_path, "--", "sh", "-c", "cat ~/secret/s.txt; touch ran")
    assert refused.returncode == 125, refused.stderr
    assert "the-secret-value" not in refused.stdout
    assert not (project / "ran").exists()
    assert f"{settings}: not valid JSON (line 1" in refused.stderr
    assert "could not be read: none of it is in effect" in refused.stderr
    assert "nothing ran" in refused.stderr


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_fifo(path: Path) -> None:
    os.mkfifo(path.with_name("fifo"))
    path.symlink_to(path.with_name("fifo"))


@pytest.mark.parametrize("name", ["settings.json", "settings.local.json"])
@pytest.mark.parametrize("make", [_fifo, _link_to_fifo], ids=["fifo", "link_to_fifo"])
def test_a_fifo_settings_file_stops_the_run_without_waiting(
    tmp_path: Path, project: Path, name: str, make: Callable[[Path], None]
) -> None:
    """A FIFO made at a workspace settings file is refused at once, never opened for a read
    that would wait for a writer."""
    path = project / ".claude" / name
    path.parent.mkdir()
    make(path)
    refused = _run(tmp_path, "--", "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert f"{path}: cannot be read: not a regular file (a FIFO)" in refused.stderr
    assert not (project / "ran").exists()


def test_settings_nested_too_deeply_stop_the_run_without_a_traceback(
    tmp_path: Path, project: Path
) -> None:
    """A file of 100,000 nested lists, as --settings and as the workspace's settings: a
    problem like invalid JSON, not a RecursionError."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    refused = _run(tmp_path, "--settings", str(deep), "--", "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert f"{deep}: nested too deeply" in refused.stderr
    assert "Traceback" not in refused.stderr
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_bytes(deep.read_bytes())
    again = _run(tmp_path, "--", "touch", "ran")
    assert again.returncode == 125, again.stderr
    assert "nested too deeply" in again.stderr and "Traceback" not in again.stderr
    assert not (project / "ran").exists()


def test_flows_names_a_fifo_and_a_link_to_stdin_without_reading_them(project: Path) -> None:
    """``airlock flows`` reports both files as unreadable and goes on: the FIFO is not waited
    on, and airlock's own input is not read as settings."""
    (project / ".claude").mkdir()
    os.mkfifo(project / ".claude" / "settings.local.json")
    (project / ".claude" / "settings.json").symlink_to("/dev/stdin")
    done = airlock("flows", stdin='{"permissions": {"allow": ["Bash"]}}', timeout=60)
    assert done.returncode == 0, done.stderr
    assert "could not be read: none of it is in effect" in done.stderr
    for name in ("settings.local.json", "settings.json"):
        assert f"{project / '.claude' / name}: cannot be read: not a regular file" in done.stderr
