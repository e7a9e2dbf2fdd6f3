"""Generated config dirs shaped like the reference agent's, for tests and the benchmark."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def line(kind: str, session_id: str, moment: datetime, cwd: str, message: Any, **extra: Any) -> str:
    """One transcript line with the fields the reference writes."""
    data = {
        "parentUuid": None,
        "isSidechain": False,
        "userType": "external",
        "cwd": cwd,
        "sessionId": session_id,
        "version": "2.1.328",
        "gitBranch": "main",
        "type": kind,
        "message": message,
        "uuid": str(uuid.uuid4()),
        "timestamp": iso(moment),
    }
    data.update(extra)
    return json.dumps(data)


def conversation(
    session_id: str, start: datetime, end: datetime, cwd: str, prompt: str
) -> list[str]:
    """A short conversation: a prompt, a tool call and its result, an answer."""
    middle = start + (end - start) / 2
    return [
        line("user", session_id, start, cwd, {"role": "user", "content": prompt}),
        line(
            "assistant",
            session_id,
            middle,
            cwd,
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me look."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "Bash",
                        "input": {"command": "ls"},
                    },
                ],
            },
        ),
        line(
            "user",
            session_id,
            middle,
            cwd,
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "README.md"}
                ],
            },
        ),
        line(
            "assistant",
            session_id,
            end,
            cwd,
            {"role": "assistant", "content": [{"type": "text", "text": "Done."}]},
        ),
    ]


@dataclass(frozen=True)
class Made:
    id: str
    project: str
    paths: tuple[Path, ...]


def make_session(
    config_dir: Path,
    *,
    cwd: str = "/home/user/project",
    age: timedelta = timedelta(days=1),
    mtime_age: timedelta | None = None,
    now: datetime = NOW,
    session_id: str | None = None,
    prompt: str = "fix the tests",
    subagents: int = 1,
    extras: bool = True,
    lines: list[str] | None = None,
) -> Made:
    """Write one session: its transcript, subagents, tool results and per-session stores.

    ``age`` sets the timestamps inside; ``mtime_age`` the files' modification times (default:
    the same as ``age``).
    """
    session_id = session_id or str(uuid.uuid4())
    project = "".join(c if c.isalnum() else "-" for c in cwd)
    end = now - age
    start = end - timedelta(minutes=5)
    folder = config_dir / "projects" / project
    folder.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []

    def write(path: Path, text: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        paths.append(path)

    body = lines if lines is not None else conversation(session_id, start, end, cwd, prompt)
    write(folder / f"{session_id}.jsonl", "\n".join(body) + "\n")
    for number in range(subagents):
        agent = f"a{number:03d}"
        sub = conversation(session_id, start, end, cwd, f"subtask {number}")
        write(folder / session_id / "subagents" / f"agent-{agent}.jsonl", "\n".join(sub) + "\n")
        write(
            folder / session_id / "subagents" / f"agent-{agent}.meta.json",
            json.dumps({"agentType": "Explore", "description": f"subtask {number}"}),
        )
    if extras:
        write(folder / session_id / "tool-results" / "toolu_1.txt", "big output\n" * 10)
        write(config_dir / "file-history" / session_id / "abc@v1", "old contents")
        write(config_dir / "todos" / f"{session_id}-agent-{session_id}.json", "[]")
        write(config_dir / "debug" / f"{session_id}.txt", "debug log\n")
        write(config_dir / "session-env" / session_id / "env.sh", "export A=1\n")
    stamp = (now - (mtime_age if mtime_age is not None else age)).timestamp()
    for path in paths:
        os.utime(path, (stamp, stamp))
    return Made(session_id, project, tuple(paths))


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Every path under ``root`` with its contents (files) or link target (links)."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            key = str(path.relative_to(root))
            if path.is_symlink():
                found[key] = "-> " + str(path.readlink())
            elif path.is_file():
                found[key] = path.read_bytes()
            else:
                found[key] = "dir"
    return found
