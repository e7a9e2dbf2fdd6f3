"""A real pseudo-terminal standing for the user's, for the tests of the command's own terminal
(:mod:`airlock.sandbox.terminal`): programs run on it as in a login's session, the test types
into it and reads what it shows."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import airlock.sandbox
from tests.sandbox.helpers import TIMEOUT

SOURCE = Path(airlock.sandbox.__file__).parents[2]
"""The tree airlock is imported from, for the programs started (``PYTHONPATH``)."""

LOGIN = (
    "import fcntl, os, sys, termios; fcntl.ioctl(1, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
"""Makes the terminal the controlling one of its session, then runs the program."""


def python(code: str) -> list[str]:
    """A command running ``code`` (indented as in a test: dedented) with this Python."""
    return [sys.executable, "-c", textwrap.dedent(code)]


def window_probe(fd: int, seconds: float) -> list[str]:
    """A command that prints the size of its terminal on ``fd`` (``start ROWS COLUMNS``), then
    the new size at its first ``SIGWINCH`` (``winch ROWS COLUMNS``; ``winch none`` after
    ``seconds`` without one)."""
    return python(f"""
        import fcntl, signal, struct, termios, time
        def size():
            return struct.unpack("HHHH", fcntl.ioctl({fd}, termios.TIOCGWINSZ, b"\\0" * 8))[:2]
        changed = []
        signal.signal(signal.SIGWINCH, lambda *_: changed.append(size()))
        print("start", *size(), flush=True)
        deadline = time.monotonic() + {seconds}
        while not changed and time.monotonic() < deadline:
            time.sleep(0.02)
        print("winch", *(changed[0] if changed else ["none"]))
    """)


def set_size(fd: int, rows: int, columns: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))


class UserTerminal:
    """A pty standing for the user's terminal: ``main`` is the terminal emulator's side,
    ``side`` what the programs in it hold."""

    def __init__(self) -> None:
        self.main, self.side = os.openpty()
        set_size(self.side, 30, 100)
        self.shown = b""

    def start(self, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        """``argv`` as the leader of a session whose controlling terminal this is, as a
        login's shell."""
        return subprocess.Popen(
            [sys.executable, "-c", LOGIN, *argv],
            stdin=self.side,
            stdout=self.side,
            stderr=self.side,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(SOURCE), **(env or {})},
        )

    def type(self, text: str) -> None:
        os.write(self.main, text.encode())

    def wait_for(self, wanted: str, seconds: float = TIMEOUT, times: int = 1) -> str:
        """All the terminal has shown, once it holds ``wanted`` (``times`` times)."""
        deadline = time.monotonic() + seconds
        while self.shown.count(wanted.encode()) < times:
            self._more(deadline, f"{wanted!r} not shown")
        return self.shown.decode(errors="replace")

    def line(self, start: str, seconds: float = TIMEOUT) -> str:
        """The first whole line the terminal has shown that begins with ``start``."""
        deadline = time.monotonic() + seconds
        while True:
            for line in self.shown.decode(errors="replace").splitlines(keepends=True):
                if line.startswith(start) and line.endswith("\n"):
                    return line.strip()
            self._more(deadline, f"no whole line starting {start!r}")

    def _more(self, deadline: float, missing: str) -> None:
        """What the terminal shows next, added to :attr:`shown`."""
        left = deadline - time.monotonic()
        assert left > 0, f"{missing}; the terminal shows {self.shown!r}"
        if select.select([self.main], [], [], left)[0]:
            with contextlib.suppress(OSError):
                self.shown += os.read(self.main, 65536)

    def modes(self) -> list[object]:
        return termios.tcgetattr(self.side)

    def close(self) -> None:
        os.close(self.main)
        os.close(self.side)


@contextlib.contextmanager
def user_terminal() -> Iterator[UserTerminal]:
    """A :class:`UserTerminal`, closed at the end."""
    user = UserTerminal()
    try:
        yield user
    finally:
        user.close()
