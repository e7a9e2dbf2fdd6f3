"""One session read in full, and rendered for a terminal: prompts, answers, tools, subagents."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airlock.sessions.model import Session
from airlock.sessions.transcript import Entry, open_no_follow, read_entries

if TYPE_CHECKING:
    from rich.console import Console

RESULT_LINES = 6
"""A tool result is shown cut to this many lines."""
INPUT_CHARS = 200
"""A tool call's input is shown cut to this many characters."""


@dataclass(frozen=True, slots=True)
class Subagent:
    """One subagent transcript with what its ``agent-*.meta.json`` says about it."""

    path: Path
    meta: dict[str, Any]
    entries: tuple[Entry, ...]


@dataclass(slots=True)
class Conversation:
    """A session's transcript and its subagents' transcripts, every line that parsed."""

    session: Session
    entries: list[Entry] = field(default_factory=list)
    subagents: list[Subagent] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "session": self.session.to_json(),
            "entries": [entry.data for entry in self.entries],
            "subagents": [
                {
                    "path": str(sub.path),
                    "meta": sub.meta,
                    "entries": [entry.data for entry in sub.entries],
                }
                for sub in self.subagents
            ],
            "problems": self.problems,
        }


def read_conversation(session: Session) -> Conversation:
    """Read every line of a session's transcripts; malformed lines go to ``problems``."""
    conversation = Conversation(session)
    conversation.entries = _read(session.transcript, conversation.problems)
    for path in session.subagent_transcripts:
        entries = tuple(_read(path, conversation.problems))
        conversation.subagents.append(Subagent(path, _meta(path), entries))
    return conversation


def _read(path: Path, problems: list[str]) -> list[Entry]:
    try:
        return list(read_entries(path, problems))
    except FileNotFoundError:
        return []
    except OSError as error:
        problems.append(f"{path}: cannot be read: {error.strerror}")
        return []


def _meta(transcript: Path) -> dict[str, Any]:
    path = transcript.with_name(transcript.name[: -len(".jsonl")] + ".meta.json")
    try:
        with open_no_follow(path) as handle:
            data = json.loads(handle.read(1024 * 1024))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- rendering


def render(conversation: Conversation, console: Console) -> None:
    """Print the conversation: who said what, when; tool calls and results; subagents. Names
    from the transcript are plain text (no markup read in them, control characters shown as
    escapes)."""
    from rich.rule import Rule
    from rich.text import Text

    from airlock._visible import visible

    session = conversation.session
    console.print(Rule(Text(visible(f"session {session.id}"))))
    console.print(Text(visible(f"project  {session.cwd or session.project}")))
    console.print(
        f"started  {_when(session.started)}    last activity {_when(session.last_activity)}"
    )
    console.print(f"files    {len(session.file_paths)}, {session.size} bytes")
    console.print()
    _render_entries(conversation.entries, console, "")
    for sub in conversation.subagents:
        title = sub.meta.get("description") or sub.path.stem
        kind = sub.meta.get("agentType")
        label = f"subagent {sub.path.stem}: {title}" + (f" ({kind})" if kind else "")
        console.print(Rule(Text(visible(label)), style="magenta"))
        _render_entries(list(sub.entries), console, "│ ")


def _render_entries(entries: list[Entry], console: Console, indent: str) -> None:
    """Each entry's lines; a transcript holds what tools read (a web page, a file): its
    control characters are shown as escapes, never sent to the terminal."""
    from airlock._visible import visible

    for entry in entries:
        mark = f"{indent}[subagent] " if entry.sidechain and not indent else indent
        for style, text in _lines_of(entry):
            shown = visible(f"{mark}{text}", keep="\n\t")
            console.print(shown, style=style, markup=False, highlight=False)


def _lines_of(entry: Entry) -> list[tuple[str, str]]:
    message = entry.data.get("message")
    when = entry.timestamp.strftime("%H:%M:%S") if entry.timestamp else "--:--:--"
    if entry.type not in ("user", "assistant") or not isinstance(message, dict):
        return [("dim", f"· {when} {entry.type}")]
    content = message.get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list):
        return [("dim", f"· {when} {entry.type} (no content)")]
    out: list[tuple[str, str]] = []
    who = "you" if entry.type == "user" else "assistant"
    for block in blocks:
        if not isinstance(block, dict):
            continue
        out += _block(block, who, when)
    return out


def _block(block: dict[str, Any], who: str, when: str) -> list[tuple[str, str]]:
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        style = "bold cyan" if who == "you" else "green"
        return [(style, f"{'▶' if who == 'you' else '◀'} {who} {when}: {block['text']}")]
    if kind == "tool_use":
        shown = json.dumps(block.get("input"), ensure_ascii=False)
        if len(shown) > INPUT_CHARS:
            shown = shown[: INPUT_CHARS - 1] + "…"
        return [("yellow", f"  ⚙ tool {block.get('name', '?')} {shown}")]
    if kind == "tool_result":
        text = _result_text(block.get("content"))
        lines = text.splitlines() or [""]
        more = f" … ({len(lines) - RESULT_LINES} more lines)" if len(lines) > RESULT_LINES else ""
        head = "\n      ".join(lines[:RESULT_LINES])
        error = " (error)" if block.get("is_error") else ""
        return [("dim", f"    ↳ result{error}: {head}{more}")]
    if kind in ("thinking", "redacted_thinking"):
        return [("dim italic", f"  ({kind.replace('_', ' ')} not shown)")]
    return [("dim", f"  · {kind}")]


def _result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", f"[{part.get('type')}]") for part in content if isinstance(part, dict)
        )
    return ""


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment is not None else "—"
