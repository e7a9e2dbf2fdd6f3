"""Feedback bundle benchmark: build, archive and upload a large session, beside plain tar.

Runs on loopback only, bounded in size (``--mb``, default 40) and time. Prints, in one run:
- airlock: dry run (redact + hash), local archive (redact + tar.gz + fsync + link), upload
  (redact + tar.gz + streamed POST to a loopback collector), in MB/s of session data;
- the peer: ``tar -czf`` of the same files unredacted (what people attach to bug reports today),
  and ``gzip`` alone: the limit for the packing step.

    .venv/bin/python benchmarks/feedback.py [--mb 40]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.feedback.servers import collector

from airlock.feedback import Retry, deliver, request_feedback
from airlock.policy import decide
from airlock.redact import Redactor
from airlock.sessions import SessionStore
from airlock.settings import load

SID = "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d"


def make_transcript(config_dir: Path, megabytes: int) -> Path:
    folder = config_dir / "projects" / "-bench"
    folder.mkdir(parents=True)
    path = folder / f"{SID}.jsonl"
    line = {
        "type": "assistant",
        "sessionId": SID,
        "message": {
            "content": "Here is the diff you asked for:\n" + "def f(x):\n    return x * 2\n" * 40
        },
    }
    secret_line = {
        "type": "user",
        "sessionId": SID,
        "message": {"content": "token ghp_" + "R7q2Xw9LmN4bV8cZ1kJ6hT3yP0sD5fG2aE7u"},
    }
    text = json.dumps(line) + "\n"
    with path.open("w") as handle:
        written, n = 0, 0
        while written < megabytes * 1_000_000:
            chosen = json.dumps(secret_line) + "\n" if n % 100 == 0 else text
            handle.write(chosen)
            written += len(chosen)
            n += 1
    return path


def timed(label: str, size: int, action) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    action()
    seconds = time.perf_counter() - start
    print(f"  {label:<46} {seconds:7.2f} s  {size / seconds / 1e6:8.1f} MB/s")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        home = Path(temp) / "home"
        config_dir = home / ".claude"
        transcript = make_transcript(config_dir, args.mb)
        size = transcript.stat().st_size
        loaded = load(Path(temp), {"HOME": str(home)})
        decisions = decide(loaded.context)
        session = SessionStore(config_dir).get(SID)
        redactor = Redactor.from_loaded(loaded)
        now = datetime.now(UTC)

        def run(dry_run: bool, local: bool, url: str | None = None) -> None:
            request = request_feedback(decisions, session, dry_run=dry_run, keep_local=local)
            deliver(
                request,
                redactor,
                config_dir=config_dir,
                collector=url,
                now=now,
                version="bench",
                sleep=time.sleep,
                retry=Retry(attempts=2, timeout=120),
            )

        print(f"feedback bundle of one {size / 1e6:.0f} MB session (one run, this machine)")
        print("airlock:")
        timed("dry run (redact + hash, nothing written)", size, lambda: run(True, False))
        timed("local archive (redact + tar.gz + fsync)", size, lambda: run(False, True))
        with collector() as server:
            timed(
                "upload to loopback collector (streamed POST)",
                size,
                lambda: run(False, False, server.url),
            )
        print("peers (no redaction at all):")
        out = Path(temp) / "plain.tar.gz"
        timed(
            "tar -czf of the raw files",
            size,
            lambda: subprocess.run(
                ["tar", "-czf", str(out), "-C", str(config_dir), "projects"], check=True
            ),
        )
        timed(
            "gzip -c of the transcript (packing limit)",
            size,
            lambda: subprocess.run(
                ["gzip", "-c", str(transcript)], stdout=subprocess.DEVNULL, check=True
            ),
        )


if __name__ == "__main__":
    main()
