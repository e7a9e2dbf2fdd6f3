"""The survey with no collector configured: the rating is not sent, and says so; a local
follow-up (Bedrock, Vertex, Foundry) is still offered and kept on this machine."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.feedback.sessionfiles import make_session
from tests.feedback.test_cli import SID, airlock
from tests.survey.settings import ask_every_session
from tests.survey.test_terminal import read_until

NO_COLLECTOR = (
    "rating not sent: no collector configured; set AIRLOCK_COLLECTOR_URL or airlock.collectorUrl"
)
PROVIDERS = ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX", "CLAUDE_CODE_USE_FOUNDRY"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_rating_not_sent_and_follow_up_kept_locally(
    config_dir: Path, project: Path, provider: str
) -> None:
    """No collector: "rating not sent" said plainly, then Yes writes the local archive (exit 0)."""
    make_session(config_dir, SID)
    ask_every_session(project)
    result = airlock(
        "survey", SID, "--rating", "good", "--share", "yes", "--json", env={provider: "1"}
    )
    assert result.returncode == 0, result.stderr
    assert NO_COLLECTOR in result.stderr
    data = json.loads(result.stdout)
    assert data["rating_sent_to"] is None
    assert data["rating_not_sent"].startswith("no collector configured")
    assert data["bundle"]["kind"] == "shared_transcript"
    assert data["bundle"]["delivery"] == "local_archive"
    (bundle,) = (config_dir / "feedback-bundles").iterdir()
    assert str(bundle) in data["delivered"]


def test_rating_not_sent_is_said_in_plain_output(config_dir: Path, project: Path) -> None:
    """Without --json the sentence is printed with the rest of the answer, then the follow-up runs."""
    make_session(config_dir, SID)
    ask_every_session(project)
    result = airlock(
        "survey", SID, "--rating", "bad", "--share", "no", env={"CLAUDE_CODE_USE_BEDROCK": "1"}
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert NO_COLLECTOR in text and "share: no" in text
    assert not (config_dir / "feedback-bundles").exists()


def test_interactive_survey_on_bedrock_offers_the_follow_up(
    config_dir: Path, project: Path
) -> None:
    """In a terminal with no collector: asked, told the rating was not sent, then asked to share."""
    make_session(config_dir, SID)
    ask_every_session(project)
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [sys.executable, "-m", "airlock", "survey", SID],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**os.environ, "NO_COLOR": "1", "TERM": "dumb", "CLAUDE_CODE_USE_BEDROCK": "1"},
    )
    os.close(follower)
    try:
        deadline = time.monotonic() + 60
        read_until(leader, "How is Claude doing this session?", deadline)
        os.write(leader, b"3\n")  # 3: Good
        seen = read_until(leader, "transcript", deadline)
        assert "no collector configured" in " ".join(seen.split())
        os.write(leader, b"1\n")  # 1: Yes
        read_until(leader, "kept on this machine", deadline)
        assert child.wait(timeout=30) == 0
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        os.close(leader)
    (bundle,) = (config_dir / "feedback-bundles").iterdir()
    assert bundle.stat().st_mode & 0o777 == 0o600


def test_first_party_without_collector_still_stops_before_asking(
    config_dir: Path, project: Path
) -> None:
    """Uploads (first party) and no collector: nothing can go anywhere, so exit 2 with the sentence."""
    make_session(config_dir, SID)
    ask_every_session(project)
    result = airlock("survey", SID, "--rating", "good")
    assert result.returncode == 2
    assert NO_COLLECTOR in result.stderr
