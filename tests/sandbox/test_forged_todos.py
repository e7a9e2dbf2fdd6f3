"""``airlock run``: a rebase left by code inside, with an ``exec`` line next, in a git folder
other than the workspace root's own ``.git`` (a nested repository's, a submodule's under
``.git/modules``, a linked worktree's under ``.git/worktrees``, the one a workspace that is
itself a linked worktree uses): the user's ``git rebase --continue`` there would run the line
on the host, so its state is set aside after the run, as the root's is."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.cli import run_script


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


def _repository(folder: Path, branch: str = "main") -> None:
    """A repository at ``folder`` with two commits, by a user of its own config."""
    folder.mkdir(parents=True, exist_ok=True)
    _git("init", "-q", "-b", branch, cwd=folder)
    _git("config", "user.name", "a", cwd=folder)
    _git("config", "user.email", "a@b", cwd=folder)
    for text in ("1", "2"):
        (folder / "f").write_text(text)
        _git("add", "f", cwd=folder)
        _git("commit", "-q", "-m", text, cwd=folder)


def _forge(git_dir: str, branch: str, marker: Path) -> str:
    """Shell run inside: an interactive rebase of ``branch`` left in ``git_dir`` (as named
    from the workspace), stopped with an ``exec`` line next that touches ``marker``."""
    return (
        f'G="{git_dir}" && H=$(git rev-parse HEAD) && mkdir -p "$G/rebase-merge" && '
        'cd "$G/rebase-merge" && '
        f"echo refs/heads/{branch} > head-name && echo $H > onto && echo $H > orig-head && "
        ": > interactive && echo 1 > msgnum && echo 1 > end && : > done && "
        f"echo 'exec touch {marker}' > git-rebase-todo && echo planted"
    )


def _check(
    done: subprocess.CompletedProcess[str],
    git_folder: Path,
    work_tree: Path,
    marker: Path,
    config_dir: Path,
    aside: str,
) -> None:
    """The run planted the rebase; after it the state is gone from ``git_folder``, set aside
    at ``aside`` in the run's folder and said; ``git rebase --continue`` in ``work_tree``
    finds no rebase and runs nothing."""
    assert done.returncode == 0 and "planted" in done.stdout, done.stderr
    assert not (git_folder / "rebase-merge").exists(), done.stderr
    assert f"{git_folder / 'rebase-merge'} →" in done.stderr
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert f"exec touch {marker}" in (run / aside / "git-rebase-todo").read_text()
    resumed = subprocess.run(
        ["git", "rebase", "--continue"], cwd=work_tree, capture_output=True, text=True
    )
    assert resumed.returncode != 0 and "No rebase in progress" in resumed.stderr
    assert not marker.exists()


def test_a_rebase_left_in_a_nested_repository_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """``sub/.git``, there before the run: its rebase state goes to ``git/sub/.git/``."""
    _repository(project)
    _repository(project / "sub")
    marker = tmp_path / "ran"
    done = run_script(tmp_path, _forge("sub/.git", "main", marker))
    aside = "git/sub/.git/rebase-merge"
    _check(done, project / "sub" / ".git", project / "sub", marker, config_dir, aside)


def test_a_rebase_left_in_a_submodules_git_folder_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """A submodule's git folder, ``.git/modules/sm``: what ``git rebase --continue`` in
    ``sm`` reads."""
    _repository(tmp_path / "upstream")
    _repository(project)
    _git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "-q",
        "add",
        str(tmp_path / "upstream"),
        "sm",
        cwd=project,
    )
    _git("commit", "-q", "-m", "sm", cwd=project)
    marker = tmp_path / "ran"
    done = run_script(tmp_path, _forge(".git/modules/sm", "main", marker))
    git_folder = project / ".git" / "modules" / "sm"
    aside = "git/.git/modules/sm/rebase-merge"
    _check(done, git_folder, project / "sm", marker, config_dir, aside)


def test_a_rebase_left_in_a_linked_worktrees_git_folder_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """The workspace's repository has a linked worktree elsewhere: its own git folder,
    ``.git/worktrees/wt2``, is in the workspace, and ``git rebase --continue`` there reads
    it."""
    _repository(project)
    worktree = tmp_path / "wt2"
    _git("worktree", "add", "-q", "-b", "wt2", str(worktree), cwd=project)
    marker = tmp_path / "ran"
    done = run_script(tmp_path, _forge(".git/worktrees/wt2", "wt2", marker))
    git_folder = project / ".git" / "worktrees" / "wt2"
    aside = "git/.git/worktrees/wt2/rebase-merge"
    _check(done, git_folder, worktree, marker, config_dir, aside)


def test_a_rebase_left_in_a_worktree_workspaces_git_folder_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """The workspace is a linked worktree, its main repository's ``.git`` opened with ``--rw``
    (to commit inside, as the README advises): the worktree's git folder there, named by the
    workspace's ``.git`` file, is the root's own, and set aside as such."""
    main = tmp_path / "main"
    _repository(main)
    _git("worktree", "add", "-q", "-b", "wt", str(project), cwd=main)
    marker = tmp_path / "ran"
    forged = _forge("$(git rev-parse --absolute-git-dir)", "wt", marker)
    done = run_script(tmp_path, forged, "--rw", str(main / ".git"))
    git_folder = main / ".git" / "worktrees" / "project"
    aside = "git/rebase-merge"
    _check(done, git_folder, project, marker, config_dir, aside)
