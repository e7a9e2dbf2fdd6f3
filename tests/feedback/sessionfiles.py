"""A session on disk laid out as the reference agent keeps it, with secrets planted in it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

GITHUB_TOKEN = "ghp_" + "R7q2Xw9LmN4bV8cZ1kJ6hT3yP0sD5fG2aE7u"
AWS_KEY = "AKIA" + "Z7QX4M2LN5PB8RTV"
PEM_HEAD = "-----BEGIN RSA PRIVATE KEY-----"


@dataclass(frozen=True)
class SessionFiles:
    session_id: str
    transcript: Path
    subagent: Path
    raw_log: Path
    secrets: tuple[str, ...]


def make_session(
    config_dir: Path, session_id: str, project: str = "-tmp-project", cwd: str = "/tmp/project"
) -> SessionFiles:
    """Write a transcript, one subagent transcript and a raw session log for ``session_id``."""
    folder = config_dir / "projects" / project
    folder.mkdir(parents=True, exist_ok=True)
    base = {"sessionId": session_id, "cwd": cwd, "version": "2.1.328"}
    lines = [
        {
            **base,
            "type": "user",
            "timestamp": "2026-11-23T10:00:00Z",
            "uuid": "u1",
            "message": {"role": "user", "content": f"my token is {GITHUB_TOKEN} please help"},
        },
        {
            **base,
            "type": "assistant",
            "timestamp": "2026-11-23T10:00:05Z",
            "uuid": "a1",
            "message": {"role": "assistant", "content": "Sure, let me look at the repository."},
        },
    ]
    transcript = folder / f"{session_id}.jsonl"
    transcript.write_text("".join(json.dumps(line) + "\n" for line in lines))
    subagents = folder / session_id / "subagents"
    subagents.mkdir(parents=True, exist_ok=True)
    subagent = subagents / "agent-a1b2c3.jsonl"
    sub_line = {
        **base,
        "type": "user",
        "timestamp": "2026-11-23T10:00:03Z",
        "isSidechain": True,
        "message": {"role": "user", "content": f"export AWS_ACCESS_KEY_ID={AWS_KEY}"},
    }
    subagent.write_text(json.dumps(sub_line) + "\n")
    debug = config_dir / "debug"
    debug.mkdir(exist_ok=True)
    raw_log = debug / f"{session_id}.txt"
    raw_log.write_text(f"2026-11-23T10:00:01Z [DEBUG] auth header token {GITHUB_TOKEN}\n")
    return SessionFiles(session_id, transcript, subagent, raw_log, (GITHUB_TOKEN, AWS_KEY))
