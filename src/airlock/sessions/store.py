"""The transcript store: the sessions of one config dir, found by id or by ``<project>/<id>``.

How a scan finds them: :mod:`airlock.sessions.scanner`; what it finds:
:mod:`airlock.sessions.model`; whether one is in use: :mod:`airlock.sessions.liveness`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from airlock.errors import UsageError
from airlock.sessions import layout, liveness, scanner
from airlock.sessions.journal import is_pending, read_pending
from airlock.sessions.model import Scan, Session


class SessionStore:
    """The sessions under one config dir (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``).

    Args:
        config_dir: the agent's config dir; nothing outside it is read or removed.
    """

    def __init__(self, config_dir: Path) -> None:
        self.config_dir = Path(config_dir)

    def list(self) -> builtins.list[Session]:
        """Every session, newest last activity first."""
        return list(self.scan().sessions)

    def get(self, name: str) -> Session:
        """The session ``name`` (an id, or ``<project>/<id>``) names.

        Raises:
            UsageError: it is not a session name, names no session, or is an id that more than
                one project holds.
        """
        return self.find([name])[name]

    def resolve(self, text: str) -> str:
        """The session ``text`` names: an id, ``<project>/<id>``, or a unique beginning of the
        id (in that project); an id is returned as it is given, or completed.

        Raises:
            UsageError: ``text`` is not a session name, or begins more than one id (listing them).
        """
        project, session_id = split_name(text)
        pending = read_pending(self.config_dir)
        ids = sorted(
            {
                item.id
                for item in scanner.transcripts(self.config_dir, [], {})
                if not is_pending(item.project, item.id, pending)
                and (project is None or item.project == project)
            }
        )
        if session_id in ids:
            return text
        matches = [found for found in ids if found.startswith(session_id)]
        if len(matches) == 1:
            return matches[0] if project is None else f"{project}/{matches[0]}"
        if matches:
            shown = ", ".join(matches[:10]) + (" …" if len(matches) > 10 else "")
            raise UsageError(
                f"session id prefix {session_id!r} is ambiguous: {len(matches)} sessions match "
                f"({shown}); give more of the id"
            )
        return text  # unknown: the caller's look-up names it

    def find(self, names: Iterable[str]) -> dict[str, Session]:
        """The sessions with these names (ids, or ``<project>/<id>``), in one scan.

        Raises:
            UsageError: naming every name that is malformed, unknown, or an id that more than
                one project holds (nothing is returned).
        """
        wanted = list(dict.fromkeys(names))
        _check_names(wanted)  # before any file is looked at
        ids = frozenset(split_name(name)[1] for name in wanted)
        return pick(self.scan(only=ids), wanted, self.config_dir)

    def scan(
        self,
        only: frozenset[str] | None = None,
        active_since: datetime | None = None,
        *,
        details: bool = True,
    ) -> Scan:
        """One pass over the config dir (:func:`airlock.sessions.scanner.scan`)."""
        return scanner.scan(self.config_dir, only, active_since, details=details)

    def in_use(
        self, session: Session, now: datetime, running: dict[str, int] | None = None
    ) -> str | None:
        """Why the session is being written right now, or ``None`` when it is not.

        Args:
            session: a session from this store.
            now: the current time.
            running: :meth:`running`, when the caller already has it.
        """
        agents = self.running() if running is None else running
        return liveness.in_use(session, now, agents, self.config_dir)

    def running(self) -> dict[str, int]:
        """Session ids of running agents, from their pid files, when the process is alive."""
        return liveness.running(self.config_dir)


def split_name(text: str) -> tuple[str | None, str]:
    """``(project, id)`` of ``<project>/<id>``, ``(None, id)`` of a bare id.

    Raises:
        UsageError: Not a session id, nor a project folder name and one.
    """
    if not _plain(text):
        raise UsageError(
            f"not a session id: {text!r} (expected letters, digits, '-' and '_', as in a "
            "transcript's file name, or PROJECT/ID with the project's folder under projects/)"
        )
    project, slash, session_id = text.rpartition("/")
    return (project if slash else None), session_id


def _plain(text: str) -> bool:
    project, slash, session_id = text.rpartition("/")
    plain_project = not slash or (project not in ("", ".", "..") and "/" not in project)
    return layout.is_session_id(session_id) and plain_project


def _check_names(names: builtins.list[str]) -> None:
    bad = [text for text in names if not _plain(text)]
    if bad:
        raise UsageError(
            f"not a session id: {', '.join(map(repr, bad))} (expected letters, digits, '-' "
            "and '_', as in a transcript's file name, or PROJECT/ID)"
        )


def pick(scan: Scan, names: Iterable[str], config_dir: Path) -> dict[str, Session]:
    """The sessions of ``scan`` that ``names`` (ids, or ``<project>/<id>``) name, by name.

    Raises:
        UsageError: naming every name that is malformed, unknown, pending removal, or an id
            more than one project holds.
    """
    wanted = list(dict.fromkeys(names))
    _check_names(wanted)
    found: dict[str, Session] = {}
    unknown, pending, ambiguous = [], [], []
    for text in wanted:
        project, session_id = split_name(text)
        matching = [
            s
            for s in scan.sessions
            if s.id == session_id and (project is None or s.project == project)
        ]
        if len(matching) == 1:
            found[text] = matching[0]
        elif matching:
            keys = ", ".join(sorted(s.key for s in matching))
            ambiguous.append(f"{text} (held by {len(matching)} projects: {keys})")
        elif any(
            key == text or (project is None and key.rpartition("/")[2] == session_id)
            for key in scan.pending
        ):
            pending.append(text)
        else:
            unknown.append(text)
    problems = []
    if unknown:
        problems.append(
            f"unknown session id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)} "
            f"(no transcript under {config_dir / layout.PROJECTS}; see 'airlock sessions list')"
        )
    if pending:
        problems.append(
            f"being removed by an unfinished removal: {', '.join(pending)} "
            "(run 'airlock sessions prune' or 'delete' again to finish it)"
        )
    if ambiguous:
        problems.append(
            f"ambiguous session id: {'; '.join(ambiguous)}; name one as PROJECT/ID "
            "(on a command line after '--', as a project folder's name starts with '-')"
        )
    if problems:
        raise UsageError("; ".join(problems))
    return found
