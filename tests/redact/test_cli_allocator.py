"""``airlock redact`` tunes the allocator only for input that may span more than one chunk."""

from __future__ import annotations

import os
from pathlib import Path

from airlock.cli.redact import _may_span_chunks
from airlock.redact.engine import CHUNK


def test_stdin_a_pipe_and_a_large_file_may_span_chunks(tmp_path: Path) -> None:
    large = tmp_path / "large"
    large.write_bytes(b"x" * (CHUNK + 1))
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert _may_span_chunks("-")
    assert _may_span_chunks(str(large))
    assert _may_span_chunks(str(fifo))  # a pipe's size says nothing of what comes through


def test_a_small_file_or_a_missing_one_does_not(tmp_path: Path) -> None:
    small = tmp_path / "small"
    small.write_bytes(b"x" * CHUNK)
    assert not _may_span_chunks(str(small))
    assert not _may_span_chunks(str(tmp_path / "missing"))
