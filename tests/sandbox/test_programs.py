"""The programs the agent's settings and a project's .mcp.json name."""

from __future__ import annotations

import json
from pathlib import Path

from airlock.sandbox.paths import Kind
from airlock.sandbox.programs import commands, named_paths, program_rules, server_commands


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
