"""Rendering a session for the terminal: who said what, tools, results, thinking, subagents."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from rich.console import Console

from airlock.sessions import SessionStore
from airlock.sessions.conversation import read_conversation, render
from tests.sessions.trees import NOW, line, make_session


def _rendered(config_dir: Path, session_id: str) -> str:
    console = Console(record=True, width=200, color_system=None)
    render(read_conversation(SessionStore(config_dir).get(session_id)), console)
    return console.export_text()


def test_render_marks_prompts_tools_results_and_thinking(config_dir: Path) -> None:
    """Prompts, answers, tool calls, failed results and hidden thinking are each marked."""
    sid = "aaaabbbb-0000-0000-0000-000000000001"
    at = NOW - timedelta(days=1)
    lines = [
        line("user", sid, at, "/p", {"role": "user", "content": "run the tests [bold]"}),
        line(
            "assistant",
            sid,
            at,
            "/p",
            {
                "content": [
                    {"type": "thinking", "thinking": "secret plan"},
                    {"type": "tool_use", "name": "Bash", "input": {"command": "pytest"}},
                ]
            },
        ),
        line(
            "user",
            sid,
            at,
            "/p",
            {
                "content": [
                    {
                        "type": "tool_result",
                        "is_error": True,
                        "content": "\n".join(f"line {n}" for n in range(10)),
                    }
                ]
            },
        ),
        line("queue-operation", sid, at, "/p", None),
    ]
    make_session(config_dir, session_id=sid, lines=lines, subagents=1, extras=False)
    text = _rendered(config_dir, sid)
    assert "▶ you" in text and "run the tests [bold]" in text
    assert "⚙ tool Bash" in text and "pytest" in text
    assert "↳ result (error)" in text and "(4 more lines)" in text
    assert "thinking not shown" in text and "secret plan" not in text
    assert "· " in text and "queue-operation" in text
    assert "subagent agent-a000: subtask 0 (Explore)" in text
