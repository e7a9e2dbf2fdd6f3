"""``airlock run`` in a workspace whose own content is hostile (a repository shipped with its
``.git``, an archive): what it names must not let code inside make what git outside runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import run_script

FSMONITOR = "[core]\n\trepositoryformatversion = 0\n\tfsmonitor = touch PWNED\n"


def _broken_repository(project: Path, commondir: str) -> None:
    """A repository at ``project`` whose ``.git/commondir`` names ``commondir``, where its
    objects, refs and config would be (not there yet: git takes no repository there)."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    for name in ("objects", "refs"):
        subprocess.run(["rm", "-rf", str(project / ".git" / name)], check=True)
    (project / ".git" / "config").unlink()
    (project / ".git" / "commondir").write_text(f"{commondir}\n")


def _make_git_folder(folder: str) -> str:
    """A script that makes the git folder ``folder`` with a config git runs a program from."""
    return (
        f"mkdir -p '{folder}/objects' '{folder}/refs' '{folder}/hooks'; "
        f"printf '{FSMONITOR}' > '{folder}/config'; "
        f"printf '#!/bin/sh\\ntouch PWNED\\n' > '{folder}/hooks/post-checkout'; true"
    )


@pytest.mark.parametrize("where", ["workspace", "agent state"])
def test_a_missing_common_folder_cannot_be_made_inside(
    tmp_path: Path, project: Path, home: Path, where: str
) -> None:
    """A ``.git/commondir`` that names a missing folder (in the workspace, or in the agents'
    writable state) has it made empty and read-only for the run: made inside, with a config
    holding ``core.fsmonitor``, the user's next ``git status`` would have run it outside."""
    (home / ".claude").mkdir()
    common = project / "common" if where == "workspace" else home / ".claude" / "common"
    _broken_repository(project, str(common))
    done = run_script(tmp_path, _make_git_folder(str(common)))
    assert done.returncode == 0, done.stderr
    assert not (common / "config").exists(), done.stderr
    assert not (common / "hooks").exists(), done.stderr
    assert not common.exists(), "the placeholder is removed after the run"
    assert (project / ".git" / "commondir").read_text() == f"{common}\n"


def test_a_missing_git_folder_a_git_file_names_cannot_be_made_inside(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A ``.git`` file naming a missing git folder in the agents' writable state (outside the
    workspace, where nothing is made safe after the run): it cannot be made inside."""
    (home / ".claude").mkdir()
    folder = home / ".claude" / "repository.git"
    (project / ".git").write_text(f"gitdir: {folder}\n")
    script = f"{_make_git_folder(str(folder))}; echo 'ref: refs/heads/main' > '{folder}/HEAD' || :"
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert not folder.exists(), done.stderr


def test_a_link_on_the_way_to_a_missing_common_folder_is_put_back(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A ``commondir`` naming a link in the workspace to a missing folder: the rule stands
    where the link leads, and a folder code inside puts in the link's place is set aside after
    the run, the link made again."""
    (home / ".claude").mkdir()
    _broken_repository(project, "../common")
    (project / "common").symlink_to(home / ".claude" / "common")
    done = run_script(tmp_path, f"rm common; {_make_git_folder('common')}")
    assert done.returncode == 0, done.stderr
    assert (project / "common").is_symlink(), done.stderr
    assert not (home / ".claude" / "common").exists(), done.stderr
