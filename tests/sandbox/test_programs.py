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
