"""Failed telemetry sends, kept on disk to be retried, bounded in size.

Each payload is one file (0600, in a 0700 folder), named by time so the oldest go first; when
the folder would pass ``max_bytes`` the oldest payloads are dropped to make room.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024


class Spool:
    """A bounded folder of payloads waiting to be sent again."""

    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)

    def files(self) -> list[Path]:
        return sorted(path for path in self.folder.iterdir() if path.suffix == ".payload")

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files())

    def keep(self, kind: str, payload: bytes) -> None:
        """Keep ``payload`` to send later; drop the oldest kept ones while over the bound."""
        if len(payload) > self.max_bytes:
            return
        files = self.files()
        total = sum(path.stat().st_size for path in files)
        while files and total + len(payload) > self.max_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{kind}.payload"
        temp = self.folder / f".{name}"
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(payload)
        temp.replace(self.folder / name)

    def retry(self, kind: str, send: Callable[[bytes], bool]) -> int:
        """Send the kept payloads of ``kind``, oldest first, until one fails; returns how many went."""
        sent = 0
        for path in self.files():
            if not path.stem.endswith(f"-{kind}"):
                continue
            if not send(path.read_bytes()):
                break
            path.unlink(missing_ok=True)
            sent += 1
        return sent
