"""The interactive survey in a real terminal (a pseudo-terminal driving ``airlock survey``)."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path

from tests.feedback.servers import collector
from tests.feedback.sessionfiles import make_session
from tests.survey.settings import ask_every_session

SID = "6d5c4b3a-2918-4a7b-8c6d-5e4f3a2b1c0d"


def read_until(fd: int, wanted: str, deadline: float) -> str:
    seen = ""
    while wanted not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {wanted!r}; saw {seen!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk.decode(errors="replace")
    return seen


def test_rating_and_dont_ask_again_typed_at_the_prompt(config_dir: Path, project: Path) -> None:
    """Typed keys answer the two questions; "Don't ask again" ends up in state.json."""
    make_session(config_dir, SID)
    with collector() as server:
        ask_every_session(project, server.url)
        leader, follower = pty.openpty()
        child = subprocess.Popen(
            [sys.executable, "-m", "airlock", "survey", SID],
            stdin=follower,
            stdout=follower,
            stderr=follower,
            env={**os.environ, "NO_COLOR": "1", "TERM": "dumb"},
        )
        os.close(follower)
        try:
            deadline = time.monotonic() + 60
            read_until(leader, "How is Claude doing this session?", deadline)
            os.write(leader, b"1\n")  # 1: Bad
            read_until(leader, "transcript", deadline)
            os.write(leader, b"3\n")  # 3: Don't ask again
            rest = read_until(leader, "remembered", deadline)
            assert child.wait(timeout=30) == 0, rest
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(timeout=10)
            os.close(leader)
    (rating,) = server.stored.values()
    assert json.loads(rating)["rating"] == "bad"
    state = json.loads((config_dir / "airlock" / "state.json").read_text())
    assert state == {"transcriptShareDeclined": True}
