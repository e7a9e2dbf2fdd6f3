"""``airlock run`` and git repositories in the workspace: nested ones are protected like the
root's, and ``git init`` works inside without leaving hooks or config that run outside later."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airlock.sandbox.repositories import find_nested
from tests.cli import airlock


def _git(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)


def _commit(cwd: Path) -> None:
    """An empty commit in the repository at ``cwd``, by a user of no configuration."""
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
        cwd=cwd,
    )


def _run_inside(tmp_path: Path, script: str) -> subprocess.CompletedProcess[str]:
    return airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", "sh", "-c", script, timeout=180
    )


NESTED_CODE_PATHS = [
    # (the file code inside tries to write, in a workspace holding nested repositories)
    pytest.param("sub/.git/hooks/pre-commit", id="nested_hook"),
    pytest.param("sub/.git/config", id="nested_config"),
    pytest.param("sub/.git/commondir", id="nested_commondir"),
    pytest.param("sub/.gitmodules", id="nested_gitmodules"),
    pytest.param("a/b/c/deep/.git/hooks/post-checkout", id="deeper_nested_hook"),
    pytest.param(".git/modules/lib/hooks/post-checkout", id="submodule_gitdir_hook"),
    pytest.param(".git/modules/lib/config", id="submodule_gitdir_config"),
    pytest.param("lib/.git", id="submodule_gitdir_link"),
]


def _workspace_with_nested_repositories(project: Path) -> None:
    """The root a repository; ``sub`` and ``a/b/c/deep`` repositories of their own; ``lib`` a
    submodule's work tree whose git folder is the root's ``.git/modules/lib``."""
    _git("init", "-q", ".", cwd=project)
    for folder in ("sub", "a/b/c/deep"):
        (project / folder).mkdir(parents=True)
        _git("init", "-q", ".", cwd=project / folder)
    gitdir = project / ".git" / "modules" / "lib"
    gitdir.parent.mkdir(parents=True)
    _git("init", "-q", "--bare", str(gitdir), cwd=project)
    (project / "lib").mkdir()
    (project / "lib" / ".git").write_text("gitdir: ../.git/modules/lib\n")


@pytest.mark.parametrize("name", NESTED_CODE_PATHS)
def test_nested_repositories_are_protected_like_the_root(
    tmp_path: Path, project: Path, name: str
) -> None:
    """Code inside cannot write what would make git run a program later in a repository of a
    subfolder, nor in a submodule's git folder; the rest of those repositories stays writable."""
    _workspace_with_nested_repositories(project)
    target = project / name
    before = target.read_bytes() if target.exists() else None
    done = _run_inside(
        tmp_path,
        f"mkdir -p {Path(name).parent} 2>/dev/null; echo evil > {name} && echo WROTE; "
        "echo ok > sub/notes.txt && git -C sub add notes.txt && echo ADDED",
    )
    assert "WROTE" not in done.stdout, done.stdout + done.stderr
    assert "ADDED" in done.stdout, done.stdout + done.stderr
    after = target.read_bytes() if target.exists() else None
    assert after == before


def test_the_scan_for_nested_repositories_is_bounded(tmp_path: Path) -> None:
    """The scan finds repositories breadth first within its depth, does not enter .git, the
    folders tools fill or links, and says when it stopped at its folder bound."""
    for folder in ("one", "x/two", "x/y/z/deep", "node_modules/pkg", "x/.venv/src/pkg"):
        (tmp_path / folder / ".git").mkdir(parents=True)
    (tmp_path / "linked").symlink_to(tmp_path / "x")
    (tmp_path / "one" / ".git" / "modules" / "m" / ".git").mkdir(parents=True)
    found = find_nested(tmp_path, max_depth=2)
    assert sorted(found.found) == [tmp_path / "one/.git", tmp_path / "x/two/.git"]
    assert found.complete
    assert sorted(find_nested(tmp_path).found) == [
        tmp_path / "one/.git",
        tmp_path / "x/two/.git",
        tmp_path / "x/y/z/deep/.git",
    ]
    stopped = find_nested(tmp_path, max_folders=2)
    assert not stopped.complete and stopped.found == (tmp_path / "one/.git",)


GIT_INIT_INSIDE = """
git init -q . && git config user.email me@example.com && git config user.name Me &&
git config core.fsmonitor "touch {marker}" && git config core.hooksPath /tmp &&
git config alias.st '!touch {marker}' && git remote add origin https://example.com/app.git &&
git remote add evil 'ext::sh -c touch% {marker}' && git config remote.up.pushurl 'fd::7' &&
printf '#!/bin/sh\\ntouch {marker}\\n' > .git/hooks/post-checkout &&
chmod +x .git/hooks/post-checkout && echo hello > readme && git add readme &&
git commit -qm first && echo COMMITTED
"""


def test_git_init_works_inside_and_brings_no_hook_or_command_out(
    tmp_path: Path, project: Path
) -> None:
    """In a workspace with no repository, git init, commit and hooks work inside; afterwards
    the repository is in the workspace with its commit, remote and user, but no hook and no
    config key that runs a program, so git used outside runs nothing it planted."""
    marker = tmp_path / "ran-outside"
    done = _run_inside(tmp_path, GIT_INIT_INSIDE.format(marker=marker))
    assert done.returncode == 0, done.stderr
    assert "COMMITTED" in done.stdout, done.stdout + done.stderr
    assert "hooks removed" in done.stderr and "core.fsmonitor" in done.stderr
    assert list((project / ".git" / "hooks").iterdir()) == []
    config = (project / ".git" / "config").read_text()
    assert "fsmonitor" not in config and "hooksPath" not in config and "alias" not in config
    assert "ext::" not in config and "fd::" not in config
    assert "remote.evil.url" in done.stderr and "remote.up.pushurl" in done.stderr
    assert _git("log", "--format=%s", cwd=project).stdout == "first\n"
    assert _git("config", "remote.origin.url", cwd=project).stdout == (
        "https://example.com/app.git\n"
    )
    _git("status", cwd=project)
    _git("checkout", "-q", "-b", "other", cwd=project)
    assert not marker.exists()
    assert list((tmp_path / "home" / ".claude" / "airlock" / "repositories").iterdir()) == []


def test_without_git_init_nothing_is_left_behind(tmp_path: Path, project: Path) -> None:
    """A run that makes no repository leaves no .git and no holding folder."""
    done = _run_inside(tmp_path, "git status 2>/dev/null; echo ok > file.txt")
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in project.iterdir()) == ["file.txt"]
    assert list((tmp_path / "home" / ".claude" / "airlock" / "repositories").iterdir()) == []


def test_a_repository_made_inside_stays_out_of_the_workspace_if_airlock_is_killed(
    tmp_path: Path, project: Path
) -> None:
    """kill -9 of airlock mid-run: the repository made inside, hooks and all, is in airlock's
    holding folder; the workspace's .git is at most the empty folder the sandbox stood on."""
    script = (
        "git init -q . && printf '#!/bin/sh\\nexit 0\\n' > .git/hooks/pre-commit && "
        "git config core.fsmonitor evil && echo READY && sleep 60"
    )
    command = [sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "a.jsonl")]
    with subprocess.Popen(
        [*command, "--", "sh", "-c", script],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path)},  # its scratch folder: killed, it cannot clean
    ) as process:
        try:
            assert process.stdout is not None
            assert process.stdout.readline().strip() == "READY"
        finally:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(30)
    time.sleep(0.2)  # bubblewrap dies with airlock
    git = project / ".git"
    assert not git.exists() or list(git.iterdir()) == []
    [held] = (tmp_path / "home" / ".claude" / "airlock" / "repositories").iterdir()
    assert (held / "hooks" / "pre-commit").exists()
    assert "evil" in (held / "config").read_text()


def test_git_works_inside_a_repository_whose_commondir_is_protected(
    tmp_path: Path, project: Path
) -> None:
    """In the root's repository and a nested one, git add and commit work inside (the
    protected commondir reads as the git folder itself), and no commondir is left afterwards."""
    _workspace_with_nested_repositories(project)
    script = (
        "git config --global user.email me@example.com 2>/dev/null; "
        "for repo in . sub; do echo hi > $repo/file && git -C $repo add file && "
        "git -C $repo -c user.name=Me -c user.email=me@example.com commit -qm one "
        "&& echo COMMITTED-$repo; done"
    )
    done = _run_inside(tmp_path, script)
    assert "COMMITTED-." in done.stdout and "COMMITTED-sub" in done.stdout, done.stderr
    assert not (project / ".git" / "commondir").exists()
    assert not (project / "sub" / ".git" / "commondir").exists()
    assert _git("log", "--format=%s", cwd=project / "sub").stdout == "one\n"


def test_the_scan_for_nested_repositories_is_bounded_by_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its count of repositories, or of entries in one folder, the scan stops and says it
    did not see everything (each repository's rules are bubblewrap arguments, bounded)."""
    from airlock.sandbox import repositories

    for number in range(5):
        (tmp_path / f"r{number}" / ".git").mkdir(parents=True)
    monkeypatch.setattr(repositories, "NESTED_REPOSITORIES", 3)
    stopped = find_nested(tmp_path)
    assert len(stopped.found) == 3 and not stopped.complete
    monkeypatch.setattr(repositories, "NESTED_REPOSITORIES", 300)
    monkeypatch.setattr(repositories, "NESTED_ENTRIES", 4)
    assert not find_nested(tmp_path).complete


def test_repositories_beyond_the_scans_bounds_changed_inside_are_made_safe(
    tmp_path: Path, project: Path
) -> None:
    """Past the nested scan's depth and in node_modules no rule keeps a repository's hooks
    and config: one made there during the run, and one there before whose config the
    command changed, are made safe after it (their fsmonitor does not run at the next git
    status there) and said; one there before and left alone keeps its config."""
    _git("init", "-q", ".", cwd=project)
    deep = project / "src" / "main" / "java" / "com" / "app"
    deep.mkdir(parents=True)
    for folder in ("old", "kept"):
        _git("init", "-q", folder, cwd=deep)
        _git("config", "user.name", "Me", cwd=deep / folder)
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    marker = tmp_path / "ran"
    fsmonitor = f"git config core.fsmonitor 'touch {marker}; false'"
    script = (
        f"git init -q {deep}/new && git -C {deep}/new {fsmonitor[4:]} && "
        f"git init -q node_modules/lib && git -C node_modules/lib {fsmonitor[4:]} && "
        f"git -C {deep}/old {fsmonitor[4:]} && echo planted"
    )
    done = _run_inside(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "planted" in done.stdout
    for folder in (deep / "new", project / "node_modules" / "lib", deep / "old"):
        subprocess.run(["git", "status"], cwd=folder, capture_output=True, check=False)
        assert not marker.exists(), folder
        assert f"{folder / '.git'}: changed during the run" in done.stderr
        kept = list((folder / ".git").glob("config.removed-*"))
        assert len(kept) == 1 and "fsmonitor" in kept[0].read_text()
    assert _git("config", "user.name", cwd=deep / "kept").stdout == "Me\n"
    assert f"{deep / 'kept'}" not in done.stderr


def test_the_walk_of_every_folder_says_what_it_did_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its folder bound the walk stops and says so; within it, it finds the names asked
    for at any depth, in node_modules too, and enters no git folder."""
    from airlock.sandbox import repositories

    (tmp_path / "a" / "b" / "c" / "d" / "e" / ".git").mkdir(parents=True)
    (tmp_path / "node_modules" / "x" / ".git" / "sub" / ".git").mkdir(parents=True)
    found, cut = repositories.walk_all(tmp_path, [tmp_path], frozenset({".git"}))
    assert sorted(found) == [
        tmp_path / "a/b/c/d/e/.git",
        tmp_path / "node_modules/x/.git",
    ]
    assert cut == []
    monkeypatch.setattr(repositories, "BEYOND_FOLDERS", 3)
    _, cut = repositories.walk_all(tmp_path, [tmp_path], frozenset({".git"}))
    assert len(cut) == 1 and "folders past the first 3" in cut[0]


def test_a_git_file_made_in_the_run_naming_a_worktrees_folder_leaves_it_whole(
    tmp_path: Path, project: Path
) -> None:
    """A ``.git`` file made in the run (past the scan's bounds, and within them) naming the
    git folder of one of the user's linked worktrees, which the run did not change: the
    worktree's git folder is left as it was, and the worktree still works."""
    _git("init", "-q", ".", cwd=project)
    _commit(cwd=project)
    worktree = tmp_path / "wt"
    _git("worktree", "add", "-q", str(worktree), cwd=project)
    _git("config", "extensions.worktreeConfig", "true", cwd=project)
    _git("config", "--worktree", "user.name", "u", cwd=worktree)
    folder = project / ".git" / "worktrees" / "wt"
    before = sorted(entry.name for entry in folder.iterdir())
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    script = (
        f"mkdir -p node_modules/x y && echo 'gitdir: {folder}' > node_modules/x/.git && "
        f"echo 'gitdir: {folder}' > y/.git"
    )
    done = _run_inside(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert sorted(entry.name for entry in folder.iterdir()) == before
    assert _git("config", "user.name", cwd=worktree).stdout == "u\n"
    assert "hooks emptied" not in done.stderr


def test_a_git_file_naming_what_cannot_be_read_is_said_and_the_rest_made_safe(
    tmp_path: Path, project: Path
) -> None:
    """A ``.git`` file naming a path too long to look at does not stop the step: it is named,
    and the repository after it is made safe."""
    _git("init", "-q", ".", cwd=project)
    marker = tmp_path / "ran"
    script = (
        "mkdir -p node_modules/a node_modules/b && "
        "printf 'gitdir: %0300d\\n' 0 > node_modules/a/.git && git init -q node_modules/b && "
        f"git -C node_modules/b config core.fsmonitor 'touch {marker}; false'"
    )
    done = _run_inside(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "node_modules/a/.git: changed during the run" in done.stderr
    assert "names no git folder" in done.stderr
    subprocess.run(["git", "status"], cwd=project / "node_modules" / "b", capture_output=True)
    assert not marker.exists()
    assert "could not make safe" not in done.stderr


def test_a_hook_written_in_a_deep_repositorys_hooks_path_is_made_safe(
    tmp_path: Path, project: Path
) -> None:
    """Past the scan's depth, a hook written in the folder ``core.hooksPath`` names (husky's)
    runs at the next commit there: the repository is made safe, its hooks path dropped."""
    _git("init", "-q", ".", cwd=project)
    repository = project / "a" / "b" / "c" / "d" / "e" / "repo"
    repository.mkdir(parents=True)
    _git("init", "-q", ".", cwd=repository)
    (repository / ".husky").mkdir()
    _git("config", "core.hooksPath", ".husky", cwd=repository)
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    marker = tmp_path / "ran"
    hook = repository / ".husky" / "pre-commit"
    done = _run_inside(
        tmp_path, f"printf '#!/bin/sh\\ntouch {marker}\\n' > {hook}; chmod +x {hook}"
    )
    assert done.returncode == 0, done.stderr
    assert "config keys dropped: core.hookspath" in done.stderr.lower()
    _commit(cwd=repository)
    assert not marker.exists()


def test_names_in_the_messages_after_the_run_are_shown_without_escapes(
    tmp_path: Path, project: Path
) -> None:
    """A repository made under a folder whose name holds an escape sequence and a newline:
    the message names it with both shown as text, so it cannot hide or fake a line."""
    _git("init", "-q", ".", cwd=project)
    done = _run_inside(
        tmp_path, 'd="node_modules/$(printf \'p\\033[8m\\nairlock: fake\')"; git init -q "$d"'
    )
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stderr
    assert "p\\x1b[8m\\x0aairlock: fake/.git: changed during the run" in done.stderr


def test_what_the_bounded_walk_left_is_where_the_walk_after_it_goes_on(tmp_path: Path) -> None:
    """The scan names the folders below its depth, those of node_modules and the like, and
    those past its folder bound, that it did not read: the walk of every folder reads those
    only."""
    from airlock.sandbox.repositories import scan_workspace, walk_all

    for folder in ("a/b/c/d/e/f", "node_modules/x", "src/.venv/lib"):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / "a/b/c/d/e/f/.git").mkdir()
    scan = scan_workspace(tmp_path, frozenset())
    assert scan.left is not None
    assert sorted(scan.left) == sorted(
        [tmp_path / "a/b/c/d/e", tmp_path / "node_modules", tmp_path / "src/.venv"]
    )
    found, cut = walk_all(tmp_path, scan.left, frozenset({".git"}))
    assert found == [tmp_path / "a/b/c/d/e/f/.git"] and cut == []
    cut = scan_workspace(tmp_path, frozenset(), max_folders=2)
    assert cut.left is not None  # past the bound: what it did not read, left to read
    found, _ = walk_all(tmp_path, cut.left, frozenset({".git"}))
    assert found == [tmp_path / "a/b/c/d/e/f/.git"]


def test_a_git_folder_moved_into_place_is_made_safe(tmp_path: Path, project: Path) -> None:
    """A git folder whose config was written before the run (a fixture of the project) moved
    to a subfolder's ``.git`` in the run keeps its files' times: in the scan's reach, it is
    new there, and made safe all the same."""
    where = "sub"
    _git("init", "-q", ".", cwd=project)
    marker = tmp_path / "ran"
    stash = project / "fixtures" / "g"
    stash.mkdir(parents=True)
    (stash / "config").write_text(f'[core]\n\tfsmonitor = "touch {marker}; false"\n')
    time.sleep(1.2)  # past the slack before the run's start within which a change is its own
    done = _run_inside(
        tmp_path,
        f"mkdir -p {where} && mv fixtures/g {where}/.git && cd {where}/.git && "
        "mkdir objects refs && echo 'ref: refs/heads/main' > HEAD",
    )
    assert done.returncode == 0, done.stderr
    assert f"{where}/.git: " in done.stderr and "core.fsmonitor" in done.stderr
    subprocess.run(["git", "status"], cwd=project / where, capture_output=True, check=False)
    assert not marker.exists()


def test_entries_past_a_folders_bound_in_reach_are_said(tmp_path: Path, project: Path) -> None:
    """A folder of more entries than the walks read (20,000): what lies past them is named as
    not checked, whichever walk met it."""
    script = (
        "mkdir big && cd big && python3 -c \"[open(f'f{i}', 'w').close() for i in range(20001)]\""
    )
    done = _run_inside(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "not checked after the run (entries past the first 20000 of" in done.stderr
