"""Build engine contexts directly, without files, for table tests."""

from __future__ import annotations

from typing import Any

from airlock.policy import Context, Decisions, Origin, Setting, Source, Var, decide

USER_FILE = Origin(Source.USER, "/home/u/.claude/settings.json")


def context(environ: dict[str, str] | None = None, **settings: Any) -> Context:
    """A context with ``environ`` as the process environment and ``settings`` from a user file."""
    env = {
        name: Var(name, ((value, Origin(Source.ENVIRONMENT)),))
        for name, value in (environ or {}).items()
    }
    fields = {key: Setting(value, USER_FILE) for key, value in settings.items()}
    return Context(env=env, **fields)


def states(environ: dict[str, str] | None = None, **settings: Any) -> dict[str, str]:
    """Flow id -> state, for a quick look in table tests."""
    decisions: Decisions = decide(context(environ, **settings))
    return {str(d.id): str(d.state) for d in decisions}
