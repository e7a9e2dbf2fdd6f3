"""The path rules and the plan they make (no sandbox started here)."""

from __future__ import annotations

import os
import socket
from dataclasses import replace
from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox import paths
from airlock.sandbox.paths import (
    SELF_COMMONDIR,
    Kind,
    Mount,
    codex_folder,
    codex_writable,
    commondir_rule,
    home_rules,
    links_on_the_way,
    mount,
    path_rules,
    plan,
    socket_rules,
    user_rules,
    workspace_rules,
)


def _by_path(rules: list[Mount]) -> dict[Path, Mount]:
    return {rule.path: rule for rule in rules}


def test_workspace_is_writable_and_protected_paths_are_not(tmp_path: Path) -> None:
    """The workspace is WRITE; .git/hooks, .git/config and the rest are READ above it."""
    workspace = tmp_path / "ws"
    (workspace / ".git" / "hooks").mkdir(parents=True)
    (workspace / ".git" / "config").write_text("[core]\n")
    (workspace / ".claude").mkdir()
    (workspace / ".claude" / "settings.backup.json").write_text("{}")
    rules = _by_path(plan(workspace_rules(workspace)))
    assert rules[workspace].kind is Kind.WRITE
    for name in (".git/hooks", ".git/config", ".gitmodules", ".vscode", ".mcp.json", ".envrc"):
        assert rules[workspace / name].kind is Kind.READ, name
    assert rules[workspace / ".claude" / "settings.backup.json"].kind is Kind.READ
    assert rules[workspace / ".claude" / "commands"].exists is False


def test_missing_protected_paths_get_folder_placeholders(tmp_path: Path) -> None:
    """A missing protected path is covered at its first missing ancestor, by an empty folder."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    rules = _by_path(plan(workspace_rules(workspace)))
    assert rules[workspace / ".git"] == Mount(
        Kind.READ, workspace / ".git", rules[workspace / ".git"].why, False, True
    )
    assert rules[workspace / ".claude"].is_dir and not rules[workspace / ".claude"].exists
    assert workspace / ".claude" / "commands" not in rules  # covered by .claude's placeholder
    assert rules[workspace / ".mcp.json"].is_dir  # git ignores an empty folder


def test_missing_settings_files_in_the_config_dir_get_file_placeholders(tmp_path: Path) -> None:
    """The agent reads an empty file at a settings file as no settings, and warned at every
    start about a folder there; its folders (commands, hooks, …) stay folders."""
    from airlock.sandbox.paths import config_dir_rules

    config = tmp_path / ".claude"
    config.mkdir()
    rules = _by_path(config_dir_rules(config, "why"))
    for name in ("settings.json", "settings.local.json", "CLAUDE.md"):
        assert not rules[config / name].exists and not rules[config / name].is_dir, name
    for name in ("commands", "agents", "hooks", "skills"):
        assert rules[config / name].is_dir, name


def test_a_worktree_git_file_is_read_only(tmp_path: Path) -> None:
    """A ``.git`` file (a worktree's link to its repository) is itself read-only."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".git").write_text("gitdir: /elsewhere\n")
    rules = _by_path(plan(workspace_rules(workspace)))
    assert rules[workspace / ".git"].kind is Kind.READ
    assert rules[workspace / ".git"].exists and not rules[workspace / ".git"].is_dir


def test_plan_orders_parents_first_and_the_strictest_wins(tmp_path: Path) -> None:
    """Parents are mounted before children; on one path HIDE beats READ beats WRITE."""
    (tmp_path / "a" / "b").mkdir(parents=True)
    rules = plan(
        [
            mount(Kind.READ, tmp_path / "a" / "b", "ro"),
            mount(Kind.WRITE, tmp_path / "a", "rw"),
            mount(Kind.HIDE, tmp_path / "a" / "b", "hide"),
            mount(Kind.WRITE, tmp_path / "a" / "b", "rw"),
        ]
    )
    assert [(rule.path, rule.kind) for rule in rules] == [
        (tmp_path / "a", Kind.WRITE),
        (tmp_path / "a" / "b", Kind.HIDE),
    ]


def test_under_a_hidden_folder_only_what_must_stay_in_sight_is_bound_back(tmp_path: Path) -> None:
    """A read-only rule under a hidden folder is dropped (hiding wins: nothing under it is
    shown); a writable one (a workspace under a hidden folder) is kept, after the hide."""
    outer = tmp_path / "outer"
    hidden = outer / "hidden"
    (hidden / "work" / ".git" / "hooks").mkdir(parents=True)
    rules = plan(
        [
            mount(Kind.WRITE, outer, "the workspace"),
            mount(Kind.HIDE, hidden, "--hide"),
            mount(Kind.WRITE, hidden / "work", "--rw"),
            mount(Kind.READ, hidden / "work" / ".git" / "hooks", "protected"),
            mount(Kind.READ, hidden / "elsewhere", "protected"),
        ]
    )
    assert [(rule.path, rule.kind) for rule in rules] == [
        (outer, Kind.WRITE),
        (hidden, Kind.HIDE),
        (hidden / "work", Kind.WRITE),
        (hidden / "work" / ".git", Kind.WRITE),  # kept in place: it holds the hooks
        (hidden / "work" / ".git" / "hooks", Kind.READ),
    ]
    hidden_git = plan(
        [
            mount(Kind.WRITE, hidden / "work", "the workspace"),
            mount(Kind.HIDE, hidden / "work" / ".git", "--hide"),
            mount(Kind.READ, hidden / "work" / ".git" / "hooks", "protected"),
        ]
    )
    assert [(rule.path, rule.kind) for rule in hidden_git] == [
        (hidden / "work", Kind.WRITE),
        (hidden / "work" / ".git", Kind.HIDE),
    ]


def test_hiding_the_root_folder_is_refused(tmp_path: Path) -> None:
    """Nothing would be left to run: an error that says so, whatever the spelling of /."""
    for text in ("/", "//", "/../"):
        with pytest.raises(SandboxError, match="hides the whole system"):
            list(user_rules(Kind.HIDE, [text], "--hide", tmp_path, tmp_path))


def test_placeholders_only_where_code_could_create_the_path(tmp_path: Path) -> None:
    """A missing path outside every writable rule needs no placeholder: nothing is created."""
    (tmp_path / "rw").mkdir()
    rules = plan(
        [
            mount(Kind.WRITE, tmp_path / "rw", "rw"),
            mount(Kind.READ, tmp_path / "rw" / "missing", "protected"),
            mount(Kind.READ, tmp_path / "elsewhere" / "missing", "protected"),
        ]
    )
    assert [rule.path for rule in rules] == [tmp_path / "rw", tmp_path / "rw" / "missing"]


def test_symlinks_are_resolved(tmp_path: Path) -> None:
    """A rule lands on what a symlink names."""
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert mount(Kind.HIDE, tmp_path / "link", "x").path == tmp_path / "real"


def test_home_rules_hide_credentials_and_open_agent_state(tmp_path: Path) -> None:
    """Existing credential paths are hidden; agent state is writable, its settings read-only
    and its state file too (saved in its config dir for the run); airlock's own state is
    hidden."""
    home = tmp_path / "home"
    for folder in (".ssh", ".aws", ".claude/commands", ".codex", ".config/gh"):
        (home / folder).mkdir(parents=True)
    (home / ".netrc").write_text("machine x password y\n")
    (home / ".claude.json").write_text("{}")
    state = home / ".claude" / "airlock"
    state.mkdir()
    rules = _by_path(plan(home_rules(home, home / ".claude", [state])))
    for hidden in (".ssh", ".aws", ".config/gh", ".netrc"):
        assert rules[home / hidden].kind is Kind.HIDE, hidden
    assert home / ".kube" not in rules  # nothing there to hide
    assert not rules[home / ".netrc"].is_dir
    for writable in (".claude", ".codex"):
        assert rules[home / writable].kind is Kind.WRITE, writable
    for read_only in (".claude/commands", ".claude/settings.json", ".claude.json"):
        assert rules[home / read_only].kind is Kind.READ, read_only
    assert rules[home / ".claude" / "airlock"].kind is Kind.HIDE  # not even locked from inside


def test_socket_rules_hide_bound_sockets(tmp_path: Path) -> None:
    """Each socket path in /proc/net/unix that is still a socket gets a HIDE; others are skipped."""
    path = tmp_path / "s.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    try:
        table = (
            "Num       RefCount Protocol Flags    Type St Inode Path\n"
            f"0000000000000000: 00000002 00000000 00010000 0001 01 1 {path}\n"
            "0000000000000000: 00000002 00000000 00010000 0001 01 2 @abstract\n"
            f"0000000000000000: 00000002 00000000 00010000 0001 01 3 {tmp_path / 'gone.sock'}\n"
            "0000000000000000: 00000002 00000000 00010000 0001 01 4\n"
        )
        rules = list(socket_rules(table.encode()))
    finally:
        server.close()
    assert [(rule.path, rule.kind, rule.is_dir) for rule in rules] == [(path, Kind.HIDE, False)]


def _bound(path: Path) -> socket.socket:
    server = socket.socket(socket.AF_UNIX)
    server.bind(os.fsencode(path))
    server.listen(1)
    return server


def _table(*paths: bytes) -> bytes:
    return b"Num       RefCount Protocol Flags    Type St Inode Path\n" + b"".join(
        b"0000000000000000: 00000002 00000000 00010000 0001 01 %d %s\n" % (number, path)
        for number, path in enumerate(paths)
    )


def test_socket_rules_find_sockets_that_moved_since_they_were_bound(tmp_path: Path) -> None:
    """A socket linked to another name and unlinked (OpenSSH's control master), one whose
    folder was renamed, and names that are not text or hold a line break: all hidden."""
    (tmp_path / "ssh").mkdir()
    (tmp_path / "home" / "old").mkdir(parents=True)
    odd = tmp_path / os.fsdecode(b"caf\xe9.sock")
    broken = tmp_path / "new\nline.sock"
    servers = [
        _bound(tmp_path / "ssh" / "cm.Xy12Ab"),
        _bound(tmp_path / "home" / "old" / "s"),
        _bound(odd),
        _bound(broken),
    ]
    try:
        os.link(tmp_path / "ssh" / "cm.Xy12Ab", tmp_path / "ssh" / "cm")
        (tmp_path / "ssh" / "cm.Xy12Ab").unlink()
        (tmp_path / "home" / "old").rename(tmp_path / "home" / "new")
        table = _table(
            os.fsencode(tmp_path / "ssh" / "cm.Xy12Ab"),
            os.fsencode(tmp_path / "home" / "old" / "s"),
            os.fsencode(odd),
            os.fsencode(broken),
        )
        hidden = {rule.path for rule in socket_rules(table)}
    finally:
        for server in servers:
            server.close()
    assert hidden == {
        tmp_path / "ssh" / "cm",
        tmp_path / "home" / "new" / "s",
        odd,
        broken,
    }


def test_a_folder_too_large_to_look_through_for_a_moved_socket_is_hidden_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the entries read in all, the folder a socket may have moved to is hidden whole
    (fail closed), not passed over; a folder that cannot be searched is passed over."""
    from airlock.sandbox import paths

    monkeypatch.setattr(paths, "SOCKET_ENTRIES", 5)
    (tmp_path / "big").mkdir()
    for number in range(10):
        (tmp_path / "big" / f"f{number}").write_text("")
    (tmp_path / "ssh").mkdir()
    server = _bound(tmp_path / "ssh" / "cm.X")
    try:
        os.link(tmp_path / "ssh" / "cm.X", tmp_path / "ssh" / "cm")
        (tmp_path / "ssh" / "cm.X").unlink()
        table = _table(
            os.fsencode(tmp_path / "big" / "gone"), os.fsencode(tmp_path / "ssh" / "cm.X")
        )
        rules = {rule.path: rule for rule in socket_rules(table)}
    finally:
        server.close()
    assert rules[tmp_path / "big"].kind is Kind.HIDE and rules[tmp_path / "big"].is_dir
    assert rules[tmp_path / "ssh"].kind is Kind.HIDE  # the budget was spent: hidden whole
    assert "may have moved here" in rules[tmp_path / "ssh"].why


def test_hides_under_a_private_tmp_are_dropped_unless_bound_back(tmp_path: Path) -> None:
    """A socket under /tmp is out of sight already, unless a rule binds its folder back."""
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "s").write_text("")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "s").write_text("")
    assert str(tmp_path).startswith("/tmp/")
    rules = plan(
        [
            mount(Kind.WRITE, tmp_path / "ws", "ws"),
            mount(Kind.HIDE, tmp_path / "ws" / "s", "socket"),
            mount(Kind.HIDE, tmp_path / "other" / "s", "socket"),
        ]
    )
    assert [rule.path for rule in rules] == [tmp_path / "ws", tmp_path / "ws" / "s"]


def test_user_rules_expand_home_and_relative_paths(tmp_path: Path) -> None:
    """``~/x`` is under the home, ``x`` under the current folder."""
    (tmp_path / "home" / "x").mkdir(parents=True)
    (tmp_path / "cwd" / "y").mkdir(parents=True)
    found = list(user_rules(Kind.READ, ["~/x", "y"], "--ro", tmp_path / "home", tmp_path / "cwd"))
    assert [rule.path for rule in found] == [tmp_path / "home" / "x", tmp_path / "cwd" / "y"]


@pytest.mark.parametrize("kind, option", [(Kind.WRITE, "--rw"), (Kind.READ, "--ro")])
def test_user_rules_refuse_a_missing_path(tmp_path: Path, kind: Kind, option: str) -> None:
    """``--rw``/``--ro`` of a missing path cannot be bound: an error naming it."""
    with pytest.raises(SandboxError, match=f"{option} nope: no such file"):
        list(user_rules(kind, ["nope"], option, tmp_path, tmp_path))


def test_hiding_a_missing_path_is_nothing(tmp_path: Path) -> None:
    """``--hide`` of a missing path has nothing to hide."""
    assert list(user_rules(Kind.HIDE, ["nope"], "--hide", tmp_path, tmp_path)) == []


def test_shell_startup_files_in_the_workspace_are_read_only_when_there(tmp_path: Path) -> None:
    """An existing .bashrc in the workspace is read-only; a missing one needs no placeholder."""
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / ".bashrc").write_text("echo hi\n")
    rules = _by_path(plan(workspace_rules(workspace)))
    assert rules[workspace / ".bashrc"].kind is Kind.READ
    assert workspace / ".zshrc" not in rules


def test_a_home_opened_for_writing_keeps_its_start_up_files(tmp_path: Path) -> None:
    """With the home writable (``--rw ~``), shell start-up files and git's config stay read-only,
    missing ones included."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    (home / ".gitconfig").write_text("[alias]\n")
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".gitconfig"].kind is Kind.READ
    assert rules[home / ".bashrc"].kind is Kind.READ and not rules[home / ".bashrc"].exists


def test_a_missing_commondir_is_bound_to_one_naming_the_git_folder_itself(tmp_path: Path) -> None:
    """A repository without commondir gets a read-only one holding '.', which git reads as
    the git folder itself; one that exists is bound read-only as it is."""
    git_folder = tmp_path / ".git"
    git_folder.mkdir()
    rule = commondir_rule(git_folder, "why")
    assert (rule.kind, rule.path, rule.source) == (
        Kind.READ,
        git_folder / "commondir",
        SELF_COMMONDIR,
    )
    assert SELF_COMMONDIR.read_text() == ".\n"
    (git_folder / "commondir").write_text("../elsewhere\n")
    rule = commondir_rule(git_folder, "why")
    assert (rule.exists, rule.source) == (True, None)


def test_a_writable_home_keeps_every_start_up_path_read_only(tmp_path: Path) -> None:
    """With the home writable (``--rw ~``), ``.bash_aliases`` (Debian's .bashrc sources it),
    ``.bash_logout``, ``.zlogin``, ``.zlogout``, fish's config (``config.fish``, ``conf.d``),
    ``~/bin`` and ``~/.local/bin`` (on Debian's PATH) cannot be written or created."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True)
    (home / ".local").mkdir()
    (home / "bin").mkdir()
    (home / ".bash_aliases").write_text("alias ll='ls -l'\n")
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".bash_aliases"].kind is Kind.READ and rules[home / ".bash_aliases"].exists
    assert rules[home / "bin"].kind is Kind.READ and rules[home / "bin"].exists
    for missing in (".bash_logout", ".zlogin", ".zlogout", ".config/fish", ".local/bin"):
        assert rules[home / missing].kind is Kind.READ, missing
        assert not rules[home / missing].exists, missing
    for name in (".bash_aliases", ".bash_logout", ".zlogin", ".zlogout", "bin", ".local/bin"):
        assert rules[home / name].why == "runs code outside later (in the home)", name


def test_a_writable_home_keeps_what_editors_python_and_build_tools_run_read_only(
    tmp_path: Path,
) -> None:
    """With the home writable: Python's user site (a ``.pth`` there runs at every start of
    Python), direnv's library, Vim's, Neovim's and Emacs's start-up files, tmux's, VS Code's
    user settings and tasks, cargo's config, Gradle's init scripts and Yarn's and Bun's files
    are read-only, missing or not; a missing one in an existing folder is covered there."""
    home = tmp_path / "home"
    for folder in (".local/lib", ".config/Code/User", ".cargo", ".gradle"):
        (home / folder).mkdir(parents=True)
    (home / ".vimrc").write_text("set nu\n")
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".local/lib"].kind is Kind.READ and rules[home / ".local/lib"].exists
    assert rules[home / ".vimrc"].kind is Kind.READ and rules[home / ".vimrc"].exists
    for missing in (
        ".config/direnv",
        ".direnvrc",
        ".vim",
        ".config/nvim",
        ".emacs.d",
        ".tmux.conf",
        ".config/Code/User/settings.json",
        ".config/Code/User/tasks.json",
        ".cargo/config.toml",
        ".gradle/init.d",
        ".gradle/gradle.properties",
        ".yarnrc.yml",
        ".bunfig.toml",
    ):
        rule = rules[home / missing]
        assert (rule.kind, rule.exists) == (Kind.READ, False), missing
        assert rule.why == "runs code outside later (in the home)", missing


def test_the_folders_of_path_in_the_home_are_read_only(tmp_path: Path) -> None:
    """Each folder of PATH under the home is read-only (a ``git`` written there would run
    outside later), a missing one where its folder is there (``~/go/bin`` with no ``~/go``
    gets none: ``go`` may make ``~/go``), one holding the workspace around it; not the
    workspace's own, the home itself, folders outside the home, relative entries, the agents'
    state, or a folder the user's own ``--rw`` opens under the home."""
    home, workspace = tmp_path / "home", tmp_path / "home" / "src" / "app"
    (home / ".cargo" / "bin").mkdir(parents=True)
    (home / ".npm-global").mkdir()
    (home / ".claude" / "local").mkdir(parents=True)
    (workspace / ".venv" / "bin").mkdir(parents=True)
    (home / "tools").mkdir()
    (home / "linked").symlink_to(home / "tools")
    search_path = ":".join(
        [
            str(home / ".cargo" / "bin"),
            str(home / ".npm-global" / "bin"),
            str(home / "go" / "bin"),
            str(home / ".claude" / "local"),
            str(workspace / ".venv" / "bin"),
            str(home),
            str(home / "src"),
            "/usr/bin",
            "node_modules/.bin",
            "",
            str(home / "linked"),
            str(home / "tools"),
        ]
    )
    found = list(path_rules(search_path, home, workspace, agent_state=[home / ".claude"]))
    assert [(rule.path, rule.kind, rule.exists) for rule in found] == [
        (home / ".cargo" / "bin", Kind.READ, True),
        (home / ".npm-global" / "bin", Kind.READ, False),
        (home / "src", Kind.READ, True),
        (home / "tools", Kind.READ, True),
    ]
    planned = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *workspace_rules(workspace), *found])
    )
    assert planned[home / "src"].kind is Kind.READ and planned[workspace].kind is Kind.WRITE
    assert {rule.why for rule in found} == {
        "runs code outside later (a folder of PATH in the home)"
    }
    opened = list(path_rules(search_path, home, workspace, [home / ".cargo", home]))
    assert [rule.path for rule in opened] == [
        home / ".npm-global" / "bin",
        home / ".claude" / "local",
        home / "src",
        home / "tools",
    ]
    many = ":".join(str(home / f"b{index}") for index in range(paths.PATH_FOLDERS + 10))
    assert len(list(path_rules(many + ":" + many, home, workspace))) == paths.PATH_FOLDERS


def test_a_workspace_that_is_the_home_keeps_the_folders_of_path_read_only(
    tmp_path: Path,
) -> None:
    """A workspace that is the home, or holds it, exempts none of PATH's folders there; a home
    that holds the sandbox's own folders (``HOME=/``) makes no rule (``/tmp/bin`` on PATH must
    not be bound into the private ``/tmp``)."""
    home = tmp_path / "home"
    (home / ".cargo" / "bin").mkdir(parents=True)
    search_path = str(home / ".cargo" / "bin")
    for workspace in (home, tmp_path):
        found = list(path_rules(search_path, home, workspace))
        assert [rule.path for rule in found] == [home / ".cargo" / "bin"], workspace
    assert list(path_rules("/tmp/bin:/run/x:/usr/local/bin", Path("/"), tmp_path)) == []


def test_the_tools_files_are_protected_where_the_tool_is_installed(tmp_path: Path) -> None:
    """cargo's config and Gradle's init scripts are read-only when ``~/.cargo`` or
    ``~/.gradle`` is there; with no such folder no rule stands, so the tool can still make it
    in a run with a writable home."""
    home = tmp_path / "home"
    (home / ".cargo").mkdir(parents=True)
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".cargo" / "config.toml"].kind is Kind.READ
    assert not any(path.is_relative_to(home / ".gradle") for path in rules)
    assert not any(path.is_relative_to(home / ".config" / "Code") for path in rules)


def test_a_writable_home_cannot_grow_credential_files(tmp_path: Path) -> None:
    """With the home writable, a missing credential path gets an empty read-only placeholder
    (``~/.ssh/authorized_keys``, ``~/.ssh/config``, ``~/.aws/config`` cannot be made); one in
    an existing folder is covered there, the folder kept in place; existing ones are hidden."""
    home = tmp_path / "home"
    (home / ".docker").mkdir(parents=True)
    (home / ".config").mkdir()
    (home / ".netrc").write_text("machine x password y\n")
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    for missing in (".ssh", ".aws", ".kube", ".gnupg", ".config/gh"):  # folders
        rule = rules[home / missing]
        assert (rule.kind, rule.exists, rule.is_dir) == (Kind.READ, False, True), missing
        assert "credentials" in rule.why
    for missing in (".git-credentials", ".npmrc", ".pgpass"):  # files: as their programs read them
        rule = rules[home / missing]
        assert (rule.kind, rule.exists, rule.is_dir) == (Kind.READ, False, False), missing
    assert rules[home / ".docker" / "config.json"].kind is Kind.READ
    assert not rules[home / ".docker" / "config.json"].exists
    assert rules[home / ".docker"].kind is Kind.WRITE  # kept in place: cannot be renamed away
    assert rules[home / ".netrc"].kind is Kind.HIDE and rules[home / ".netrc"].exists


def test_a_workspace_holding_the_home_cannot_grow_credential_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A workspace that holds the home makes it writable: the same placeholders."""
    monkeypatch.setattr(paths, "PRIVATE_TMPFS", ())  # a home where homes are, not under /tmp
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    rules = _by_path(plan([*workspace_rules(tmp_path), *home_rules(home, home / ".claude", [])]))
    assert rules[tmp_path].kind is Kind.WRITE
    for missing in (".ssh", ".aws", "bin", ".bash_aliases"):
        assert rules[home / missing].kind is Kind.READ, missing
        assert not rules[home / missing].exists, missing


def test_a_read_only_home_gets_no_placeholder(tmp_path: Path) -> None:
    """A normal run (the home read-only): no placeholder in the home, for a missing credential
    path or a protected one, so nothing is made there; existing credentials are hidden."""
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".claude").mkdir()
    rules = plan(home_rules(home, home / ".claude", []))
    made = [rule.path for rule in rules if not rule.exists]
    assert all(path.is_relative_to(home / ".claude") for path in made), made
    assert {rule.path for rule in rules if rule.kind is Kind.HIDE} == {home / ".aws"}


def test_plugins_and_skills_in_the_config_dir_are_read_only(tmp_path: Path) -> None:
    """``plugins/`` and ``skills/`` of the config dir (hooks, MCP servers, instructions) are
    read-only there, missing ones included; other files there stay writable."""
    home = tmp_path / "home"
    (home / ".claude" / "plugins").mkdir(parents=True)
    (home / ".claude" / "settings.backup.json").write_text("{}")
    rules = _by_path(plan(home_rules(home, home / ".claude", [])))
    assert rules[home / ".claude"].kind is Kind.WRITE
    assert rules[home / ".claude" / "plugins"].kind is Kind.READ
    assert rules[home / ".claude" / "plugins"].exists
    assert rules[home / ".claude" / "skills"].kind is Kind.READ
    assert not rules[home / ".claude" / "skills"].exists
    assert rules[home / ".claude" / "settings.backup.json"].kind is Kind.READ


def test_home_claude_is_protected_when_the_config_dir_is_elsewhere(tmp_path: Path) -> None:
    """``CLAUDE_CONFIG_DIR`` elsewhere: both it and ``~/.claude`` (writable agent state) keep
    their settings, commands, agents, plugins and skills read-only."""
    home = tmp_path / "home"
    (home / ".claude" / "commands").mkdir(parents=True)
    (home / ".claude" / "settings.json").write_text("{}")
    (home / ".claude" / "settings.old.json").write_text("{}")
    config_dir = tmp_path / "alt-config"
    config_dir.mkdir()
    rules = _by_path(plan(home_rules(home, config_dir, [])))
    assert rules[home / ".claude"].kind is Kind.WRITE
    assert rules[config_dir].kind is Kind.WRITE
    for folder in (home / ".claude", config_dir):
        for name in ("settings.json", "settings.local.json", "commands", "agents", "plugins"):
            assert rules[folder / name].kind is Kind.READ, folder / name
        assert rules[folder / "skills"].kind is Kind.READ
    assert rules[home / ".claude" / "settings.old.json"].kind is Kind.READ
    assert "~/.claude" in rules[home / ".claude" / "settings.json"].why


def test_a_missing_config_dir_in_a_writable_home_cannot_be_given_settings(tmp_path: Path) -> None:
    """With the home writable and no ``~/.claude``, code inside cannot create its settings:
    the folder is an empty read-only placeholder for the run."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    rules = _by_path(
        plan([mount(Kind.WRITE, home, "--rw ~"), *home_rules(home, home / ".claude", [])])
    )
    assert rules[home / ".claude"].kind is Kind.READ and not rules[home / ".claude"].exists


def test_the_links_on_the_way_to_a_protected_path_are_noted(tmp_path: Path) -> None:
    """A read-only or hidden rule given through links (``~/.config -> dotfiles/config``, then
    ``git``) stands on what they name; each link on the way is noted with its target, for the
    run to put back; a writable rule's links are not (nothing to protect there)."""
    home = tmp_path / "home"
    (home / "dotfiles" / "config" / "git").mkdir(parents=True)
    (home / "dotfiles" / "tools").mkdir()
    (home / ".config").symlink_to("dotfiles/config")
    (home / "tools").symlink_to("dotfiles/tools")
    protected = mount(Kind.READ, home / ".config" / "git", "why")
    assert protected.path == home / "dotfiles" / "config" / "git"
    assert protected.named == home / ".config" / "git"
    plain = mount(Kind.READ, home / "dotfiles", "why")
    assert plain.named is None
    writable = mount(Kind.WRITE, home / "tools", "why")
    assert links_on_the_way([protected, plain, writable]) == {home / ".config": "dotfiles/config"}


def test_config_text_is_read_back_by_git_as_written(tmp_path: Path) -> None:
    """The cut-down config of a repository made inside is written in one go; git reads every
    kept value back exactly (quotes, backslashes, tabs, line breaks, dotted subsections)."""
    import subprocess

    from airlock.sandbox.repositories import config_text

    entries = [
        ("core.bare", "false"),
        ('remote.or"ig\\in.url', 'https://x/"a b"\\c\t d '),
        ('remote.or"ig\\in.fetch', "+refs/*:refs/*"),
        ("user.name", " Ann\nB "),
        ("remote.a.b.c.url", "dotted subsection"),
        ("bad\nkey.x", "dropped"),
    ]
    text, unwritable = config_text(entries)
    assert unwritable == ["bad\nkey.x"]
    (tmp_path / "config").write_text(text)
    listed = subprocess.run(
        ["git", "config", "--file", str(tmp_path / "config"), "--null", "--list"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    read = [tuple(item.split("\n", 1)) for item in listed.split("\0") if item]
    assert read == entries[:-1]


def test_system_rules_hide_the_hosts_secrets_that_are_there() -> None:
    """Every path of SYSTEM_SECRETS on this machine (files, and folders whole) gets a HIDE;
    none that is missing."""
    from airlock.sandbox.paths import SYSTEM_SECRETS, system_rules

    there = set()
    for pattern in SYSTEM_SECRETS:
        folder, _, name = pattern.rpartition("/")
        there |= {path.resolve() for path in Path(folder).glob(name)}
    rules = list(system_rules())
    assert {rule.path for rule in rules} == there
    assert all(rule.kind is Kind.HIDE for rule in rules)
    assert Path("/etc/shadow") in there  # every Linux system has it: the test sees something


def test_a_plan_of_a_plan_is_the_same_plan(tmp_path: Path) -> None:
    """bubblewrap's arguments come from a plan of the run's plan with the Python's binds
    added: the placeholders and pins must be the same, or what the run lists as its
    placeholders would not be what bubblewrap makes."""
    home = tmp_path / "home"
    (home / ".config").mkdir(parents=True, exist_ok=True)
    workspace = tmp_path / "ws"
    workspace.mkdir()
    given = [
        mount(Kind.WRITE, home, "--rw ~"),
        *home_rules(home, home / ".claude", []),
        *workspace_rules(workspace),
        *(replace(rule, why="other root") for rule in workspace_rules(home) if rule.path != home),
    ]
    once = plan(given)
    assert plan(once) == once


def test_the_folders_holding_a_writable_bind_inside_another_are_kept_in_place(
    tmp_path: Path,
) -> None:
    """A config dir two folders down in the workspace (``.config/claude``, with airlock's
    own state hidden in it): ``.config`` is pinned, so code inside cannot move it away and
    make a config dir of its own at the same path (the next run would read its state)."""
    workspace = tmp_path / "ws"
    config_dir = workspace / ".config" / "claude"
    (config_dir / "airlock").mkdir(parents=True)
    rules = _by_path(
        plan(
            [
                mount(Kind.WRITE, workspace, "workspace"),
                mount(Kind.WRITE, config_dir, "config dir"),
                mount(Kind.HIDE, config_dir / "airlock", "airlock's own state"),
            ]
        )
    )
    pin = rules[workspace / ".config"]
    assert (pin.kind, pin.exists) == (Kind.WRITE, True) and "kept in place" in pin.why


def test_codex_folder_is_where_codex_home_says(tmp_path: Path) -> None:
    """A folder that is there, other than ``~/.codex``, read as Codex reads it (a relative one
    from where the command starts, no ``~``); not the root, nor one holding the home or the
    workspace, nor one that is not a folder (each said); writable inside when in the home and
    holding none of its protected paths."""
    home, elsewhere = tmp_path / "home", tmp_path / "w" / "project"
    workspace = home / "project"
    for folder in (home / ".codex", workspace / "state", elsewhere, tmp_path / "srv"):
        folder.mkdir(parents=True)
    (tmp_path / "file").write_text("x")

    def folder(value: str, at: Path = workspace) -> tuple[Path | None, str]:
        return codex_folder(home, {"CODEX_HOME": value}, at, at)

    assert folder(str(tmp_path / "srv")) == (tmp_path / "srv", "")
    assert folder("state") == (workspace / "state", "")
    for value in ("", str(home / ".codex")):
        assert folder(value) == (None, "")
    assert folder(".codex", home) == (None, "")
    assert folder("~/x")[1] == "CODEX_HOME ~/x: not a folder that is there"
    assert folder(str(tmp_path / "file"))[1].endswith("not a folder that is there")
    for value in ("/", str(home), str(tmp_path)):
        assert folder(value) == (None, f"CODEX_HOME {value}: holds the home")
    assert folder(str(tmp_path / "w"), elsewhere)[1].endswith("holds the workspace")
    assert codex_writable(workspace / "state", home)
    assert not codex_writable(tmp_path / "srv", home)
    assert not codex_writable(home / ".local", home)  # holds ~/.local/bin
