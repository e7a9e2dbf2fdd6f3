"""``airlock run --rw ~``: what runs at the user's next start (a shell's, a desktop session's,
a service manager's, a tool's, git's in every other repository) stays read-only in the home,
missing ones included, and nothing is left behind after the run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from airlock.sandbox import repositories
from airlock.sandbox.paths import Kind, Mount, home_rules, mount, plan, zdotdir_rules
from tests.cli import airlock

PLANTED = (
    ".lessfilter",
    ".config/zsh/.zshrc",
    ".local/share/systemd/user/pipewire.service",
    ".config/systemd/user/evil.service",
    ".local/share/dbus-1/services/org.freedesktop.Notifications.service",
    ".local/share/applications/firefox.desktop",
    ".config/autostart/evil.desktop",
    ".xsession",
    ".xsessionrc",
    ".xprofile",
    ".bazelrc",
    ".julia/config/startup.jl",
    ".ghci",
    ".ghc/ghci.conf",
    ".config/pip/pip.conf",
    ".pip/pip.conf",
)
"""Paths under the home that run code, or name what is installed, at the user's next start:
each made with its folders by the tests' script (Julia's and GHC's with ``~/.julia`` and
``~/.ghc`` there: those are protected where the tool is installed)."""


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, env=env, timeout=180)


def _plant(paths: tuple[str, ...]) -> str:
    """A script that makes each path (its folders too) and says which it could write."""
    return "".join(
        f'(mkdir -p "$(dirname {path})" && echo evil > {path}) 2>/dev/null && echo WROTE {path}; '
        for path in paths
    )


def _tree(folder: Path) -> list[str]:
    """What ``folder`` holds, less airlock's own state (its audit log's heads)."""
    found = (str(path.relative_to(folder)) for path in folder.rglob("*"))
    return sorted(path for path in found if not path.startswith(".claude/airlock"))


def _by_path(rules: list[Mount]) -> dict[Path, Mount]:
    return {rule.path: rule for rule in rules}


def test_a_writable_home_keeps_what_runs_at_the_next_start_read_only(tmp_path: Path) -> None:
    """The rules themselves: each path stays read-only under ``--rw ~``, a missing one as a
    placeholder (an empty file for a file, as its program reads it; an empty folder for a
    folder, and for the first missing folder on the way)."""
    home = tmp_path / "home"
    for folder in (".config", ".local/share", ".julia", ".ghc", ".pip"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    (home / ".bazelrc").write_text("build --config=x\n")
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".bazelrc"].kind is Kind.READ and rules[home / ".bazelrc"].exists
    files = (".lessfilter", ".xsession", ".ghci", ".ghc/ghci.conf", ".pip/pip.conf")
    folders = (
        ".config/zsh",
        ".local/share/systemd",
        ".local/share/dbus-1",
        ".local/share/applications",
        ".julia/config",
        ".config/pip",  # the first missing folder on the way to pip.conf
    )
    for name in (*files, *folders):
        rule = rules[home / name]
        assert rule.kind is Kind.READ and not rule.exists, name
        assert rule.is_dir is (name in folders), name
        assert rule.why == "runs code outside later (in the home)", name


def test_rw_home_cannot_plant_what_runs_at_the_next_start(tmp_path: Path, home: Path) -> None:
    """--rw ~: none of :data:`PLANTED` can be made or changed; the rest of the home is
    writable; afterwards the home holds what it held and what was written, no placeholder."""
    for folder in (".claude", ".config", ".local/share", ".julia", ".ghc"):
        (home / folder).mkdir(parents=True, exist_ok=True)
    before = _tree(home)
    script = _plant(tuple(f"~/{path}" for path in PLANTED)) + "echo fine > ~/notes && echo ok"
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout, done.stdout
    assert "ok" in done.stdout
    assert [path for path in _tree(home) if path not in before] == ["notes"]


def test_zdotdir_start_up_files_stay_read_only(tmp_path: Path, home: Path) -> None:
    """ZDOTDIR in the environment names a folder of the home: zsh's files there, there or
    not, cannot be written under --rw ~ (zsh reads them instead of the home's)."""
    dots = home / "dotfiles" / "zsh"
    dots.mkdir(parents=True)
    (dots / ".zshrc").write_text("# the user's\n")
    assert [rule.path for rule in zdotdir_rules(home, {"ZDOTDIR": str(dots)})] == [
        dots / name for name in (".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout")
    ]
    assert list(zdotdir_rules(home, {"ZDOTDIR": "dotfiles/zsh"})) == []  # no fixed folder
    assert list(zdotdir_rules(home, {"ZDOTDIR": str(home)})) == []  # the home's own: listed
    script = _plant(tuple(f"{dots}/{name}" for name in (".zshrc", ".zshenv", ".zlogin")))
    done = _run(
        tmp_path, "--rw", "~", "--", "sh", "-c", script + "echo ok", env={"ZDOTDIR": str(dots)}
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "ok" in done.stdout, done.stdout
    assert sorted(path.name for path in dots.iterdir()) == [".zshrc"]
    assert (dots / ".zshrc").read_text() == "# the user's\n"


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_the_folders_gits_own_config_names_stay_read_only(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """~/.gitconfig's core.hooksPath (~/.githooks, there) and init.templateDir
    (~/.git-templates, missing): with the workspace no repository, under --rw ~, a hook cannot
    be changed in the one nor the other made with a hook in it (git outside would run them in
    every other repository, a clone's post-checkout at once); nothing is left after."""
    (home / ".gitconfig").write_text(
        "[core]\n\thooksPath = ~/.githooks\n[init]\n\ttemplateDir = ~/.git-templates\n"
    )
    (home / ".githooks").mkdir()
    (home / ".githooks" / "pre-commit").write_text("#!/bin/sh\nexit 0\n")
    script = (
        _plant(("~/.githooks/pre-commit", "~/.githooks/post-checkout"))
        + _plant(("~/.git-templates/hooks/post-checkout",))
        + "echo ok"
    )
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "ok" in done.stdout, done.stdout
    assert sorted(path.name for path in (home / ".githooks").iterdir()) == ["pre-commit"]
    assert (home / ".githooks" / "pre-commit").read_text() == "#!/bin/sh\nexit 0\n"
    assert not (home / ".git-templates").exists()


def test_a_missing_global_hooks_folder_cannot_be_made_from_a_repository(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """The workspace a repository, the user's core.hooksPath (~/.githooks) missing: it cannot
    be made under --rw ~ (it was writable: a read-only rule stood only on one that exists)."""
    (home / ".gitconfig").write_text("[core]\n\thooksPath = ~/.githooks\n")
    _git("init", "-q", ".", cwd=project)
    done = _run(
        tmp_path, "--rw", "~", "--", "sh", "-c", _plant(("~/.githooks/post-checkout",)) + "true"
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout, done.stdout
    assert not (home / ".githooks").exists()


def test_a_repositorys_own_missing_hooks_folder_elsewhere_cannot_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workspace's own config names an absolute ``core.hooksPath`` outside it that is
    missing (``~/hooks/app``): under a writable home a placeholder stands there, so it cannot
    be made with hooks for the user's git to run at the next commit (a rule stood only on one
    that exists)."""
    monkeypatch.setattr(repositories, "PRIVATE_TMPFS", ())  # a home where homes are
    home, work_tree = tmp_path / "home", tmp_path / "work"
    work_tree.mkdir()
    _git("init", "-q", ".", cwd=work_tree)
    _git("config", "core.hooksPath", str(home / "hooks" / "app"), cwd=work_tree)
    why = "runs code outside later (in the workspace)"
    found = list(repositories.hooks_rules(work_tree, work_tree / ".git", why))
    assert [(rule.path, rule.exists) for rule in found] == [(home / "hooks", False)]
    planned = _by_path(plan([mount(Kind.WRITE, home, "--rw ~"), *found]))
    assert planned[home / "hooks"].kind is Kind.READ
