"""``airlock run``: VM sockets (``AF_VSOCK``), which the network namespace leaves out, cannot
be opened inside: they would reach the hypervisor's services and the host's vsock listeners
past the proxy."""

from __future__ import annotations

import errno
import socket
import struct
import sys
from pathlib import Path

import pytest

from airlock.sandbox.seccomp import (
    ALLOW,
    KEYRING_CALLS,
    NO_SUCH_FAMILY,
    SOCKET_CALLS,
    keyring_filter,
)
from tests.cli import run_script

PROBE = """
import errno, socket
try:
    socket.socket(40, socket.SOCK_STREAM)
    print("opened")
except OSError as error:
    print("refused", errno.errorcode[error.errno])
socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
print("others open")
"""


def test_a_vm_socket_cannot_be_opened_inside(tmp_path: Path) -> None:
    """Opening one fails as on a machine without them; TCP and Unix sockets still open."""
    done = run_script(tmp_path, f"{sys.executable} -c '{PROBE}'")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["refused EAFNOSUPPORT", "others open"], done.stdout


def _run(program: bytes, number: int, arch: int, first: int, big_endian: bool) -> int:
    """What the classic BPF ``program`` returns for a call ``number`` on ``arch`` whose first
    argument is ``first``, laid out as ``struct seccomp_data`` in the machine's byte order."""
    instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    order = ">" if big_endian else "<"  # the machine's own, as the kernel lays it out
    data = struct.pack(f"{order}iIQQ", number, arch, 0, first) + bytes(40)
    accumulator, pc = 0, 0
    while True:
        code, jump_true, jump_false, value = instructions[pc]
        if code == 0x20:
            accumulator = struct.unpack_from(f"{order}I", data, value)[0]
            pc += 1
        elif code == 0x15:
            pc += 1 + (jump_true if accumulator == value else jump_false)
        elif code == 0x06:
            return value
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")


@pytest.mark.parametrize(("name", "arch", "numbers"), KEYRING_CALLS, ids=lambda x: str(x))
def test_each_architectures_vsock_socket_is_refused(name: str, arch: int, numbers: object) -> None:
    """The filter run by a small interpreter of its instructions, as the kernel would run it
    on each architecture: ``socket`` of ``AF_VSOCK`` refused, of any other family allowed
    (the family's high bits are not read: the kernel takes it as an int)."""
    program = keyring_filter()
    big = name == "s390x"
    for number in SOCKET_CALLS[name]:
        assert _run(program, number, arch, 40, big) == NO_SUCH_FAMILY, name
        for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, 16, 40 << 32):
            expected = NO_SUCH_FAMILY if family & 0xFFFFFFFF == 40 else ALLOW
            assert _run(program, number, arch, family, big) == expected, (name, family)
    assert NO_SUCH_FAMILY & 0xFFFF == errno.EAFNOSUPPORT
