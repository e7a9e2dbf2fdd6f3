""":func:`airlock.sandbox.paths.hide_note`: what ``airlock run`` says of a path to hide
(``--hide``, ``sandbox.filesystem.denyRead``), on real files: the workspace is refused, a
missing path is said (with a space at either end of the entry pointed out), one that is
there needs no word."""

from __future__ import annotations

from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox.paths import hide_note


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    (tmp_path / "ws").mkdir()
    return (tmp_path / "ws").resolve()


@pytest.mark.parametrize("name", ["ws", "link"])
def test_the_workspace_is_refused(tmp_path: Path, workspace: Path, name: str) -> None:
    """Hiding it leaves the command nowhere to start; through a link too."""
    (tmp_path / "link").symlink_to(workspace)
    with pytest.raises(SandboxError) as refused:
        hide_note("sandbox.filesystem.denyRead '.' in x", ".", tmp_path / name, workspace)
    assert str(refused.value) == (
        f"sandbox.filesystem.denyRead '.' in x: that is the workspace ({workspace}), where the "
        "command runs; hide what is inside it instead"
    )


def test_a_missing_path_is_said(workspace: Path) -> None:
    missing = workspace / ".awss"
    assert hide_note("--hide .awss", ".awss", missing, workspace) == (
        f"--hide .awss: no such file or folder ({missing}), so nothing to hide there"
    )


def test_a_space_at_either_end_is_pointed_out(workspace: Path) -> None:
    (workspace / "notes.txt").write_text("kept\n")
    note = hide_note("e", "./notes.txt ", workspace / "notes.txt ", workspace)
    assert "(the entry begins or ends with a space), so nothing to hide there" in note


@pytest.mark.parametrize("what", ["file", "folder", "dangling_link", "folder_above"])
def test_a_path_that_is_there_needs_no_word(tmp_path: Path, workspace: Path, what: str) -> None:
    """A link to nothing is there too: it is hidden as a link. A folder above the workspace
    is hidden with the workspace bound back."""
    path = {
        "file": workspace / "f",
        "folder": workspace / "d",
        "dangling_link": workspace / "l",
        "folder_above": workspace.parent,
    }[what]
    if what == "file":
        path.write_text("x")
    elif what == "folder":
        path.mkdir()
    elif what == "dangling_link":
        path.symlink_to(workspace / "nothing")
    assert hide_note("x", str(path), path, workspace) == ""
