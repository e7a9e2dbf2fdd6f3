"""Answers remembered across sessions, in ``<config dir>/airlock/state.json``.

``settings.load`` reads the key ``transcriptShareDeclined`` back into the engine's context,
which then turns ``transcript_share`` off with a reason naming this file. Other keys in the
file are kept as they are. The file is replaced atomically (``airlock._atomic.replace_file``)
and readable by its owner only.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from airlock._atomic import replace_file
from airlock.errors import AirlockError
from airlock.settings import STATE_FILE

DECLINED_KEY = "transcriptShareDeclined"


def state_path(config_dir: Path) -> Path:
    """Where the remembered answers live."""
    return config_dir / STATE_FILE


def read_state(config_dir: Path) -> dict[str, Any]:
    """The remembered answers; empty when the file is missing or not a JSON object."""
    try:
        data = json.loads(state_path(config_dir).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_declined(config_dir: Path) -> Path:
    """Record "Don't ask again" for the transcript-share follow-up.

    Args:
        config_dir: The config directory (``$CLAUDE_CONFIG_DIR`` or ``~/.claude``).

    Returns:
        The state file written.

    Raises:
        AirlockError: The file could not be written.
    """
    path = state_path(config_dir)
    state = read_state(config_dir)
    state[DECLINED_KEY] = True
    text = json.dumps(state, indent=2, sort_keys=True) + "\n"
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        replace_file(path, text.encode("utf-8"), mode=0o600)
    except OSError as error:
        raise AirlockError(f"cannot remember the answer in {path}: {error.strerror}") from error
    return path
