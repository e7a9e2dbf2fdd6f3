"""``airlock run``: what git runs later from files code inside can write outside the protected
paths.

- A rebase or a cherry-pick left in progress naming a merge strategy that is not git's own:
  ``git rebase --continue`` / ``git cherry-pick --continue`` run ``git-merge-NAME``, and a
  name holding a ``/`` (``../evil``) is a path from the work tree (``git-merge-../evil``, in
  a folder named ``git-merge-..`` made inside). It has no ``exec`` line, yet runs a program.
- The git hook managers' files (``.pre-commit-config.yaml``, ``.husky/``, lefthook's) in a
  nested repository's work tree: the hooks installed there read them at the next commit, as
  at the workspace's root, where they are read-only.
- The hooks in the work tree of a repository made inside, where the user's relative
  ``core.hooksPath`` (``.githooks``) has git look for them: its ``hooks/`` is emptied, and
  they must go too.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import run_script


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)


def _commit(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text)
    _git("add", name, cwd=folder)
    _git("commit", "-q", "-m", f"{name} {text}", cwd=folder)


def _diverged(project: Path) -> None:
    """``main`` and ``side`` both change ``f``; ``side`` has a commit after that one."""
    _git("init", "-q", "-b", "main", cwd=project)
    _git("config", "user.name", "a", cwd=project)
    _git("config", "user.email", "a@b", cwd=project)
    _commit(project, "f", "1")
    _git("checkout", "-q", "-b", "side", cwd=project)
    _commit(project, "f", "side")
    _commit(project, "g", "after")
    _git("checkout", "-q", "main", cwd=project)
    _commit(project, "f", "main")


def _evil_strategy(marker: Path) -> str:
    """Shell run inside: a program at ``git-merge-../evil`` that touches ``marker``."""
    return (
        "mkdir git-merge-.. && "
        f"printf '#!/bin/sh\\ntouch {marker}\\nexit 1\\n' > git-merge-../evil && "
        "chmod +x git-merge-../evil"
    )


def _set_aside(done: subprocess.CompletedProcess[str], state: Path) -> None:
    assert done.returncode == 0 and "planted" in done.stdout, done.stdout + done.stderr
    assert not state.exists(), done.stderr
    assert f"{state} →" in done.stderr


def test_a_cherry_pick_left_naming_a_strategy_of_its_own_is_set_aside(
    tmp_path: Path, project: Path
) -> None:
    """One stopped inside with git's own strategy stays, to go on with; one left naming a
    program as its strategy is set aside, and ``--continue`` runs nothing."""
    _diverged(project)
    done = run_script(
        tmp_path, "git cherry-pick --strategy=ort side~1 side >/dev/null 2>&1; echo stopped"
    )
    assert "stopped" in done.stdout, done.stderr
    assert "strategy = ort" in (project / ".git" / "sequencer" / "opts").read_text()
    assert "set aside" not in done.stderr
    _git("cherry-pick", "--abort", cwd=project)
    marker = tmp_path / "ran"
    done = run_script(
        tmp_path,
        "git cherry-pick side~1 side >/dev/null 2>&1; git reset -q --hard && "
        "printf '[options]\\n\\tstrategy = ../evil\\n' > .git/sequencer/opts && "
        f"{_evil_strategy(marker)} && echo planted",
    )
    _set_aside(done, project / ".git" / "sequencer")
    resumed = _git("cherry-pick", "--continue", cwd=project)
    assert resumed.returncode != 0
    assert not marker.exists()


def test_a_rebase_left_naming_a_strategy_of_its_own_is_set_aside(
    tmp_path: Path, project: Path
) -> None:
    _diverged(project)
    marker = tmp_path / "ran"
    done = run_script(
        tmp_path,
        "GIT_SEQUENCE_EDITOR=true git rebase -q -i main side >/dev/null 2>&1; "
        "test -f .git/rebase-merge/git-rebase-todo && echo ../evil > .git/rebase-merge/strategy "
        f"&& echo resolved > f && git add f && {_evil_strategy(marker)} && echo planted",
    )
    _set_aside(done, project / ".git" / "rebase-merge")
    resumed = _git("-c", "core.editor=true", "rebase", "--continue", cwd=project)
    assert "No rebase in progress" in resumed.stderr
    assert not marker.exists()


HOOK_MANAGERS = [
    pytest.param(".pre-commit-config.yaml", id="pre_commit"),
    pytest.param(".husky/pre-commit", id="husky"),
    pytest.param("lefthook.yml", id="lefthook"),
    pytest.param("lefthook-local.yml", id="lefthook_local_missing"),
]


@pytest.mark.parametrize("name", HOOK_MANAGERS)
def test_a_nested_repositorys_hook_managers_files_are_read_only(
    tmp_path: Path, project: Path, name: str
) -> None:
    """``sub`` uses pre-commit, husky and lefthook: what each reads there stays as it was, a
    missing lefthook file included (lefthook merges one it finds)."""
    _git("init", "-q", cwd=project)
    sub = project / "sub"
    sub.mkdir()
    _git("init", "-q", cwd=sub)
    (sub / ".pre-commit-config.yaml").write_text("repos: []\n")
    (sub / ".husky").mkdir()
    (sub / ".husky" / "pre-commit").write_text("npm test\n")
    (sub / "lefthook.yml").write_text("pre-commit: {}\n")
    target = sub / name
    before = target.read_bytes() if target.exists() else None
    done = run_script(tmp_path, f"echo evil >> sub/{name} && echo WROTE; echo ok > sub/notes")
    assert "WROTE" not in done.stdout, done.stdout + done.stderr
    assert (sub / "notes").read_text() == "ok\n"
    assert (target.read_bytes() if target.exists() else None) == before


def test_a_hook_managers_file_made_in_a_nested_repository_is_set_aside(
    tmp_path: Path, project: Path
) -> None:
    """``sub`` has pre-commit's hook and no config: one made inside would say what it runs."""
    _git("init", "-q", cwd=project)
    sub = project / "sub"
    sub.mkdir()
    _git("init", "-q", cwd=sub)
    done = run_script(
        tmp_path, "printf 'repos: []\\n' > sub/.pre-commit-config.yaml && echo planted"
    )
    assert "planted" in done.stdout, done.stderr
    assert not (sub / ".pre-commit-config.yaml").exists()
    assert f"{sub / '.pre-commit-config.yaml'} →" in done.stderr


@pytest.mark.parametrize("where", [".", "sub"])
def test_hooks_in_a_relative_hooks_path_of_a_repository_made_inside_are_set_aside(
    tmp_path: Path, project: Path, home: Path, where: str
) -> None:
    """The user's ``core.hooksPath = .githooks`` names each repository's own folder in its
    work tree: a repository made inside (at the root, or in a subfolder) comes out with its
    hooks there renamed aside, as its ``hooks/`` is emptied, and the next commit runs none."""
    (home / ".gitconfig").write_text("[core]\n\thooksPath = .githooks\n")
    marker = tmp_path / "ran"
    done = run_script(
        tmp_path,
        f"git init -q {where} && mkdir {where}/.githooks && "
        f"printf '#!/bin/sh\\ntouch {marker}\\n' > {where}/.githooks/pre-commit && "
        f"chmod +x {where}/.githooks/pre-commit && echo planted",
    )
    assert "planted" in done.stdout, done.stderr
    assert "renamed aside: pre-commit" in done.stderr
    _git(
        "-c",
        "user.name=a",
        "-c",
        "user.email=b",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
        cwd=project / where,
    )
    assert not marker.exists()
