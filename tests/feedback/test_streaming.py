"""Bundles are streamed: memory stays flat however big the session is (measured, not assumed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.feedback.servers import collector
from tests.feedback.sessionfiles import make_session

SID = "3c2b1a09-8f7e-4d6c-9b5a-493827161504"

CLIENT = """
import json, sys, time, tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from airlock.feedback import Retry, deliver, request_feedback
from airlock.policy import decide
from airlock.redact import Redactor
from airlock.sessions import SessionStore
from airlock.settings import load

home, url, sid = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
import os
loaded = load(home, {**os.environ, "HOME": str(home)})
decisions = decide(loaded.context)
session = SessionStore(home / ".claude").get(sid)
redactor = Redactor.from_loaded(loaded)
tracemalloc.start()
outcome = deliver(request_feedback(decisions, session), redactor, config_dir=home / ".claude",
                  collector=url, now=datetime.now(UTC), version="t", sleep=time.sleep,
                  retry=Retry(attempts=2, timeout=60))
peak = tracemalloc.get_traced_memory()[1]
print(json.dumps({"peak": peak, "size": outcome.manifest.size}))
"""


def test_upload_of_large_session_keeps_memory_flat(config_dir: Path, home: Path) -> None:
    """A 24 MB session is redacted, packed and uploaded with under 12 MB of Python memory at peak."""
    files = make_session(config_dir, SID)
    line = json.dumps({"type": "assistant", "message": {"content": "x = 1\n" * 2000}}) + "\n"
    with files.transcript.open("a") as handle:
        for _ in range(24_000_000 // len(line)):
            handle.write(line)
    with collector() as server:
        result = subprocess.run(
            [sys.executable, "-c", CLIENT, str(home), server.url, SID],
            capture_output=True,
            text=True,
            timeout=240,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        stored = sum(len(body) for body in server.stored.values())
    figures = json.loads(result.stdout)
    assert figures["size"] > 23_000_000
    assert stored > 0
    assert figures["peak"] < 12_000_000, figures
