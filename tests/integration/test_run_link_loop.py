"""A protected name in the workspace that is a loop of symbolic links (``.vscode ->
.vscode``, or two links naming each other, as a clone may hold): nothing can be bound there,
so the run stops (125) naming the link, not with bubblewrap's words about its own mount
folders, and runs nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import run_script


@pytest.mark.parametrize("pair", [False, True], ids=["itself", "a_pair"])
def test_a_protected_name_in_a_loop_of_links_is_refused_naming_it(
    tmp_path: Path, project: Path, pair: bool
) -> None:
    link = project / ".vscode"
    if pair:
        link.symlink_to("other")
        (project / "other").symlink_to(".vscode")
    else:
        link.symlink_to(".vscode")
    done = run_script(tmp_path, "echo RAN")
    assert done.returncode == 125, done.stdout + done.stderr
    assert "RAN" not in done.stdout
    assert "leads back to itself (a loop of links" in done.stderr, done.stderr
    assert "bwrap:" not in done.stderr, done.stderr
    assert link.is_symlink()  # left as it was
