"""The project settings the survey tests start from."""

from __future__ import annotations

import json
from pathlib import Path


def ask_every_session(project: Path, collector_url: str | None = None) -> None:
    """Project settings that ask every session (``feedbackSurveyRate`` 1), and send ratings to
    ``collector_url`` when one is given."""
    settings: dict[str, object] = {"feedbackSurveyRate": 1}
    if collector_url is not None:
        settings["airlock"] = {"collectorUrl": collector_url}
    (project / ".claude").mkdir(exist_ok=True)
    (project / ".claude" / "settings.json").write_text(json.dumps(settings))
