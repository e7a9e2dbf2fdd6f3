"""The programs the agent's settings and a project's .mcp.json name."""

from __future__ import annotations

import json
import os
from pathlib import Path

from airlock.sandbox.paths import Kind
from airlock.sandbox.programs import (
    CONFIG_BYTES,
    commands,
    named_commands,
    named_paths,
    program_rules,
    server_commands,
    state_commands,
)


def test_commands_of_hooks_status_line_and_helpers() -> None:
    settings = {
        "apiKeyHelper": "~/bin/key.sh",
        "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"},
        "hooks": {
            "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "a b"}]}],
            "Stop": "not a list",
        },
    }
    assert list(commands(settings)) == ["~/bin/key.sh", "~/.claude/statusline.sh", "a b"]


def test_server_commands_join_command_and_args() -> None:
    mcp = {"mcpServers": {"x": {"command": "node", "args": ["tools/s.js", "--x"]}, "y": {}}}
    assert list(server_commands(mcp)) == ["node tools/s.js --x"]


def test_named_paths_are_files_that_are_there(tmp_path: Path) -> None:
    """``~``, ``$CLAUDE_PROJECT_DIR``, relative and absolute paths; not words without a ``/``,
    options with ``=``, or paths to nothing."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".claude").mkdir(parents=True)
    (workspace / "scripts").mkdir(parents=True)
    status = home / ".claude" / "status.sh"
    start = workspace / "scripts" / "start.sh"
    status.write_text("x")
    start.write_text("x")
    lines = [
        "~/.claude/status.sh",
        'bash "$CLAUDE_PROJECT_DIR"/scripts/start.sh',
        f"python {start} --out=scripts/start.sh",
        "node missing/server.js",
        "echo 'unclosed",
    ]
    assert named_paths(lines, home, workspace) == [status, start]


def test_program_rules_from_settings_and_mcp_json(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "tools").mkdir(parents=True)
    (workspace / "tools" / "server.js").write_text("//")
    (workspace / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"x": {"command": "node", "args": ["tools/server.js"]}}})
    )
    rules, left = program_rules([{}], tmp_path, workspace)
    assert [(rule.kind, rule.path) for rule in rules] == [
        (Kind.READ, workspace / "tools" / "server.js")
    ]
    assert left == 0


def test_paths_inside_quoted_commands_bare_names_and_home(tmp_path: Path) -> None:
    """``sh -c "scripts/b.sh --fix"``, ``bash check.sh`` (a file in the workspace),
    ``$HOME/…``; a missing path with a ``/`` whose folder is there (it could be made)."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".claude").mkdir(parents=True)
    (workspace / "scripts").mkdir(parents=True)
    quoted, bare, status = (
        workspace / "scripts" / "b.sh",
        workspace / "check.sh",
        home / ".claude" / "s.sh",
    )
    for path in (quoted, bare, status):
        path.write_text("x")
    lines = [
        'sh -c "scripts/b.sh --fix"',
        "bash check.sh",
        "bash $HOME/.claude/s.sh",
        "scripts/new.sh",
    ]
    assert named_paths(lines, home, workspace) == [
        quoted,
        bare,
        status,
        workspace / "scripts" / "new.sh",
    ]


def test_the_users_own_rw_keeps_a_program_writable(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "mcp").mkdir(parents=True)
    (workspace / "mcp" / "server.py").write_text("x")
    settings = {"apiKeyHelper": "python mcp/server.py"}
    assert program_rules([settings], tmp_path, workspace)[0]
    assert (
        program_rules([settings], tmp_path, workspace, [workspace / "mcp" / "server.py"])[0] == []
    )


def test_named_commands_whatever_the_layout() -> None:
    """A line, a program with its args, a list of words, Codex's ``notify``, Gemini's tool
    discovery; values that are not commands are passed over."""
    config = {
        "notify": ["python3", "/h/.codex/notify.py"],
        "mcp_servers": {"docs": {"command": "node", "args": ["srv.js", 3]}},
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "bash x.sh"}]}]},
        "tools": {"discoveryCommand": "bin/discover"},
        "other": {"command": 7, "notify": [1, 2], "args": ["a"]},
    }
    assert sorted(named_commands(config)) == sorted(
        ["python3 /h/.codex/notify.py", "node srv.js 3", "bash x.sh", "bin/discover"]
    )
    assert list(named_commands(None)) == []


def test_the_state_files_servers_read_from_their_projects(tmp_path: Path) -> None:
    """``~/.claude.json``: the user's servers read relative paths from the workspace, a
    project's from that project's folder; a project key that is no absolute path is passed
    over."""
    workspace, other = tmp_path / "ws", tmp_path / "other"
    state = {
        "mcpServers": {"u": {"command": "node", "args": ["u.js"]}},
        "projects": {
            str(other): {"mcpServers": {"p": {"command": "node", "args": ["p.js"]}}},
            "relative": {"mcpServers": {"r": {"command": "r"}}},
        },
    }
    assert list(state_commands(state, workspace)) == [
        ("node u.js", workspace),
        ("node p.js", other),
    ]


def test_program_rules_from_the_other_agents_files(tmp_path: Path) -> None:
    """Codex's notify program in ``~/.codex``, a Gemini server's script in the workspace, a
    project server of ``~/.claude.json`` in another project; broken and huge files name
    nothing."""
    home, workspace, other = tmp_path / "home", tmp_path / "ws", tmp_path / "other"
    for folder in (home / ".codex", home / ".gemini", workspace / ".codex", other):
        folder.mkdir(parents=True)
    notify, server, kept = home / ".codex" / "notify.py", workspace / "g.js", other / "p.js"
    for path in (notify, server, kept):
        path.write_text("x")
    (home / ".codex" / "config.toml").write_text(f'notify = ["python3", "{notify}"]\n')
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"mcpServers": {"g": {"command": "node", "args": ["g.js"]}}})
    )
    (workspace / ".codex" / "config.toml").write_text("notify = [\n")
    (home / ".codex" / "hooks.json").write_text(" " * (CONFIG_BYTES + 1))
    (home / ".claude.json").write_text(
        json.dumps({"projects": {str(other): {"mcpServers": {"p": {"command": "p.js"}}}}})
    )
    rules, left = program_rules([{}], home, workspace, (), [home / ".claude.json"])
    assert sorted(rule.path for rule in rules) == sorted([notify, server, kept])
    assert {rule.kind for rule in rules} == {Kind.READ} and left == 0


def test_a_fifo_or_a_folder_where_a_file_is_read_names_nothing(tmp_path: Path) -> None:
    """A FIFO at ``~/.claude.json`` or ``~/.codex/config.toml`` (made by an earlier run, or
    by anyone) is not waited on; a folder there names nothing either."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".codex").mkdir(parents=True)
    (home / ".gemini" / "settings.json").mkdir(parents=True)
    workspace.mkdir()
    os.mkfifo(home / ".claude.json")
    os.mkfifo(home / ".codex" / "config.toml")
    assert program_rules([{}], home, workspace, (), [home / ".claude.json"]) == ([], 0)
