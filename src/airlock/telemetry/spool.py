"""Failed telemetry sends, kept on disk to be retried, bounded in size.

Each payload is one file (0600, in a 0700 folder), named by time so the oldest go first; when
the folder would pass ``max_bytes`` the oldest payloads are dropped to make room.

A payload may be kept with its idempotency key (the ``Idempotency-Key`` it was first sent
with), so that its retry carries the same key and a collector that did store the first send
(its answer lost on the way back) stores nothing twice. The key is part of the file's name:
``TIME-PID-KIND.payload`` without one, ``TIME-PID-KIND.KEY.payload`` with one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path

MAX_BYTES = 8 * 1024 * 1024
SUFFIX = ".payload"
_NAME = re.compile(r"[A-Za-z0-9_-]{1,150}")
"""What a kind or a key may be: it is part of a file name (and no ``.``, which separates them)."""


def _checked(what: str, value: str) -> str:
    if not _NAME.fullmatch(value):
        raise ValueError(f"spool {what} {value!r}: expected 1 to 150 of A-Z a-z 0-9 _ -")
    return value


def _parts(path: Path) -> tuple[str, str | None]:
    """The ``TIME-PID-KIND`` of a kept payload's file name, and its key (``None``: none kept)."""
    stem, _, key = path.name.removesuffix(SUFFIX).partition(".")
    return stem, key or None


class Spool:
    """A bounded folder of payloads waiting to be sent again."""

    def __init__(self, folder: Path, max_bytes: int = MAX_BYTES) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)

    def files(self) -> list[Path]:
        """The kept payloads, oldest first (not the hidden ones still being written)."""
        return sorted(
            path
            for path in self.folder.iterdir()
            if path.name.endswith(SUFFIX) and not path.name.startswith(".")
        )

    def size(self) -> int:
        return sum(path.stat().st_size for path in self.files())

    def keep(self, kind: str, payload: bytes, key: str | None = None) -> None:
        """Keep ``payload`` (with its idempotency ``key``, if any) to send later; drop the
        oldest kept ones while over the bound.

        Raises:
            ValueError: ``kind`` or ``key`` is not 1 to 150 of ``A-Z a-z 0-9 _ -``.
        """
        name = f"{time.time_ns():020d}-{os.getpid()}-{_checked('kind', kind)}"
        if key is not None:
            name += "." + _checked("key", key)
        name += SUFFIX
        if len(payload) > self.max_bytes:
            return
        files = self.files()
        total = sum(path.stat().st_size for path in files)
        while files and total + len(payload) > self.max_bytes:
            oldest = files.pop(0)
            total -= oldest.stat().st_size
            oldest.unlink(missing_ok=True)
        temp = self.folder / f".{name}"
        descriptor = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(payload)
        temp.replace(self.folder / name)

    def retry(self, kind: str, send: Callable[[bytes], bool]) -> int:
        """Send the kept payloads of ``kind``, oldest first, until one fails; returns how many went."""
        return self.retry_with_keys(kind, lambda payload, _key: send(payload))

    def retry_with_keys(self, kind: str, send: Callable[[bytes, str | None], bool]) -> int:
        """:meth:`retry`, giving ``send`` each payload's idempotency key too (``None``: none)."""
        sent = 0
        for path in self.files():
            stem, key = _parts(path)
            if not stem.endswith(f"-{kind}"):
                continue
            try:
                payload = path.read_bytes()
            except FileNotFoundError:  # sent meanwhile by another process sharing the spool
                continue
            if not send(payload, key):
                break
            path.unlink(missing_ok=True)
            sent += 1
        return sent
