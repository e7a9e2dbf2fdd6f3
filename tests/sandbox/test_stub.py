"""The first program inside the sandbox (``airlock/sandbox/_stub.py``), run on its own."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import airlock.sandbox
from airlock.sandbox.launcher import writes_limited

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


LIMITED = """
import os, sys
sys.path.insert(0, sys.argv[1])
import _stub
allowed, outside = sys.argv[2], sys.argv[3]
read_end, _ = os.pipe()
for _ in range(int(sys.argv[4])):  # each call stacks one more Landlock layer
    _stub._restrict_writes([f"/proc/self/fd/{read_end}", allowed])
for folder in (allowed, outside):
    try:
        with open(os.path.join(folder, "written"), "w") as file:
            file.write("x")
        print(folder == allowed and "allowed-written" or "outside-written")
    except PermissionError:
        print(folder == allowed and "allowed-refused" or "outside-refused")
"""


def _limited(tmp_path: Path, layers: int) -> subprocess.CompletedProcess[str]:
    """The stub's Landlock rules made ``layers`` times in a process of their own (a pipe's
    folder among them, which Landlock takes no rule for), then a write in the folder allowed
    and one outside it."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    return subprocess.run(
        [sys.executable, "-I", "-S", "-c", LIMITED, str(STUB.parent), str(allowed),
         str(outside), str(layers)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip


def test_a_folder_whose_rule_cannot_be_made_is_said_and_the_rest_limited(
    tmp_path: Path,
) -> None:
    """Where the kernel has Landlock and one folder's rule cannot be made, the stub says
    which, and the others are still the only ones written: one failure never drops the whole
    limit."""
    done = _limited(tmp_path, 1)
    assert done.returncode == 0, done.stderr
    if not writes_limited():  # nothing limited, nothing said
        assert (done.stderr, done.stdout.split()) == ("", ["allowed-written", "outside-written"])
        return
    assert "cannot be written inside" in done.stderr and "/proc/self/fd/" in done.stderr
    assert done.stdout.split() == ["allowed-written", "outside-refused"]


def test_rules_that_cannot_be_applied_are_said(tmp_path: Path) -> None:
    """Landlock takes at most 16 layers of rules: the seventeenth cannot be applied, and the
    stub says that writes are not limited by it, where it went on quietly."""
    done = _limited(tmp_path, 17)
    assert done.returncode == 0, done.stderr
    if not writes_limited():  # nothing to apply, nothing said
        assert done.stderr == ""
        return
    assert done.stderr.count("cannot be written inside") == 17
    assert done.stderr.count("files could not be limited") == 1
    assert done.stdout.split() == ["allowed-written", "outside-refused"]
