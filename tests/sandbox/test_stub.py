"""The first program inside the sandbox (``airlock/sandbox/_stub.py``), run on its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import airlock.sandbox

STUB = Path(airlock.sandbox.__file__).with_name("_stub.py")


def _stub(channel: socket.socket, port: int, *command: str) -> subprocess.CompletedProcess[str]:
    fd = channel.fileno()
    return subprocess.run(
        [sys.executable, "-I", "-S", str(STUB), str(fd), str(port), "0", "-", *command],
        pass_fds=[fd],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_a_channel_closed_by_airlock_ends_the_stub_quietly(tmp_path: Path) -> None:
    """airlock stopped before the hand-over (a bad rule found while the sandbox was being
    built): the stub runs nothing and says nothing, airlock gives the reason."""
    ours, theirs = socket.socketpair()
    ours.close()
    marker = tmp_path / "ran"
    with theirs:
        done = _stub(theirs, 0, "touch", str(marker))
    assert done.returncode == 125
    assert done.stderr == ""
    assert not marker.exists()


def test_a_port_that_cannot_be_opened_is_said(tmp_path: Path) -> None:
    """The proxy's port taken inside: the stub says so and runs nothing."""
    ours, theirs = socket.socketpair()
    with socket.socket() as taken, ours, theirs:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        marker = tmp_path / "ran"
        done = _stub(theirs, taken.getsockname()[1], "touch", str(marker))
    assert done.returncode == 125
    assert "cannot open the proxy port inside the sandbox" in done.stderr
    assert not marker.exists()


def test_go_runs_the_command_in_place_of_the_stub(tmp_path: Path) -> None:
    """Once airlock has the listening socket and says ``go``, the command runs."""
    ours, theirs = socket.socketpair()
    marker = tmp_path / "ran"
    with ours, theirs:
        fd = theirs.fileno()
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", str(STUB), str(fd), "0", "0", "-", "touch", str(marker)],
            pass_fds=[fd],
        )
        _, fds, _, _ = socket.recv_fds(ours, 64, 1)
        socket.socket(fileno=fds[0]).close()
        ours.sendall(b"go")
        assert child.wait(30) == 0
    assert marker.exists()
