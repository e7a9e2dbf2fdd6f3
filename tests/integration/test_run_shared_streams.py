"""A standard stream the sandbox shares with airlock and its caller (a pipe, in CI) is left as
it was: code inside that makes it non-blocking cannot make airlock's report (and its final
hash) vanish, nor leave the caller's pipe broken for what writes to it next."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

FILL_AND_LEAVE = """
import os
os.set_blocking(1, False)
os.set_blocking(2, False)
try:
    while True:
        os.write(2, b"x" * 4096)
except BlockingIOError:
    pass
open("filled", "w").close()
"""
"""Leaves standard output and error non-blocking, the pipe of standard error full."""


def test_a_stream_left_non_blocking_inside_is_put_back(tmp_path: Path, project: Path) -> None:
    """The command fills standard error's pipe and leaves it non-blocking, as Node's libuv
    leaves its pipes: airlock's report still arrives whole once the reader catches up, and
    the caller's end of the pipe is blocking again when airlock ends."""
    read_end, write_end = os.pipe()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "airlock",
            "run",
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
            "--",
            sys.executable,
            "-c",
            FILL_AND_LEAVE,
        ],
        stdin=subprocess.DEVNULL,
        stdout=write_end,
        stderr=write_end,
        cwd=project,
    )
    received = bytearray()

    def drain() -> None:
        while chunk := os.read(read_end, 1 << 16):
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    started = False
    try:
        deadline = time.monotonic() + 60
        while not (project / "filled").exists() and process.poll() is None:
            assert time.monotonic() < deadline, "the command did not fill the pipe"
            time.sleep(0.02)
        # airlock writes its report now, into the full pipe: it waits for the reader, or,
        # left non-blocking, meets EAGAIN and loses it
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(2)
        reader.start()
        started = True
        code = process.wait(60)
        left_non_blocking = not os.get_blocking(write_end)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(write_end)
        if not started:
            reader.start()
        reader.join(10)
        os.close(read_end)
    report = bytes(received).replace(b"x", b"").decode(errors="replace")
    assert code == 0, report
    assert "final hash" in report, report
    assert not left_non_blocking
