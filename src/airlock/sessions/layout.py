"""Where the reference agent keeps each session's files, relative to the config dir.

The layout (``<config dir>`` is ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``)::

    projects/<project>/<id>.jsonl              the transcript, one JSON object a line
    projects/<project>/<id>/subagents/agent-*.jsonl   subagent transcripts (+ agent-*.meta.json)
    projects/<project>/agent-*.jsonl           subagent transcripts, older layout (the lines
                                               carry the parent session's sessionId)
    projects/<project>/<id>/tool-results/      large tool outputs spilled to files
    projects/<project>/<id>/…                  other per-session files (workflows/, …)
    file-history/<id>/                         file snapshots taken before edits
    session-env/<id>/                          the session's environment files
    tasks/<id>/                                the session's task list
    todos/<id>-*.json                          todo lists of the session and its agents
    debug/<id>.txt                             the raw session (debug) log

``<project>`` is the session's working directory with every non-alphanumeric character
replaced by ``-``. ``projects/<project>/memory/``, ``sessions/`` (pid files of running
sessions) and ``history.jsonl`` belong to no session and are never removed.

Stores swept by age as a whole (their entries are not keyed by session): :data:`AGE_SWEPT`.
"""

from __future__ import annotations

import re

PROJECTS = "projects"
TRANSCRIPT_SUFFIX = ".jsonl"
SUBAGENTS = "subagents"
AGENT_PREFIX = "agent-"
"""Older layout: ``projects/<project>/agent-<agent>.jsonl``, a subagent transcript whose lines
carry the parent session's ``sessionId``; it belongs to that session."""
DEBUG = "debug"
DEBUG_SUFFIX = ".txt"
TODOS = "todos"
RUNNING = "sessions"
"""``<config dir>/sessions/<pid>.json``: one file per running agent, with its ``sessionId``."""

SESSION_DIR_STORES = ("file-history", "session-env", "tasks")
"""Stores holding one folder per session, named by the session id."""

INDEXED_STORES = (*SESSION_DIR_STORES, DEBUG, TODOS)
"""Stores whose entries a scan matches to sessions by id (the others are only swept by age)."""

AGE_SWEPT = (
    "file-history",
    "session-env",
    "tasks",
    "todos",
    "debug",
    "plans",
    "paste-cache",
    "image-cache",
    "shell-snapshots",
    "backups",
    "feedback-bundles",
    "usage-data",
)
"""Stores the reference's sweep covers: entries that belong to no listed session go by age."""

KEPT = ("memory", RUNNING, "history.jsonl")
"""Never removed by prune: the per-project memory, running-session pid files, prompt history."""

SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
"""What a session id may look like: no separators, no dots, so never a path."""


def is_session_id(text: str) -> bool:
    """Whether ``text`` can be a session id (and so never names a path outside its folder)."""
    return SESSION_ID.fullmatch(text) is not None


def todo_owner(name: str, ids: frozenset[str] | set[str]) -> str | None:
    """The session a ``todos/`` file belongs to (``<id>-agent-<agent>.json`` or ``<id>.json``)."""
    if not name.endswith(".json"):
        return None
    stem = name[: -len(".json")]
    if stem in ids:
        return stem
    head, sep, _ = stem.partition("-agent-")
    return head if sep and head in ids else None
