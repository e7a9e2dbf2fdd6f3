"""``airlock run``: VM sockets (``AF_VSOCK``), which the network namespace leaves out, cannot
be opened inside: they would reach the hypervisor's services and the host's vsock listeners
past the proxy."""

from __future__ import annotations

import errno
import platform
import socket
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.sandbox.seccomp import (
    ALLOW,
    BIG_ENDIAN,
    KEYRING_CALLS,
    NO_SUCH_CALL,
    NO_SUCH_FAMILY,
    SOCKET_CALLS,
    SOCKETCALL,
    call_filter,
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


URING_PROBE = """
import ctypes, errno, mmap, os, struct

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
params = ctypes.create_string_buffer(120)  # struct io_uring_params
ring_fd = libc.syscall(425, 4, params)  # io_uring_setup
if ring_fd < 0:
    print("setup refused", errno.errorcode[ctypes.get_errno()])
    raise SystemExit(0)
entries = struct.unpack_from("2I", params, 0)
sq = struct.unpack_from("8IQ", params, 40)  # head, tail, ring_mask, …, array
cq = struct.unpack_from("8IQ", params, 80)  # head, tail, ring_mask, …, cqes
size = max(sq[6] + entries[0] * 4, cq[5] + entries[1] * 16)
shared = mmap.MAP_SHARED
both = mmap.PROT_READ | mmap.PROT_WRITE
ring = mmap.mmap(ring_fd, size, shared, both, offset=0)
sqes = mmap.mmap(ring_fd, entries[0] * 64, shared, both, offset=0x10000000)
# IORING_OP_SOCKET (45): fd is the family (AF_VSOCK, 40), off the type, len the protocol
sqes[0:64] = struct.pack("<BBHiQQIIQHHiQQ", 45, 0, 0, 40, 1, 0, 0, 0, 7, 0, 0, 0, 0, 0)
tail, mask = struct.unpack_from("I", ring, sq[1])[0], struct.unpack_from("I", ring, sq[2])[0]
struct.pack_into("I", ring, sq[6] + (tail & mask) * 4, 0)
struct.pack_into("I", ring, sq[1], tail + 1)
if libc.syscall(426, ring_fd, 1, 1, 1, None, 0) < 0:  # io_uring_enter, waiting for it
    print("enter refused", errno.errorcode[ctypes.get_errno()])
    raise SystemExit(0)
head, mask = struct.unpack_from("I", ring, cq[0])[0], struct.unpack_from("I", ring, cq[2])[0]
result = struct.unpack_from("QiI", ring, cq[5] + (head & mask) * 16)[1]
print("opened" if result >= 0 else "socket refused " + errno.errorcode[-result])
"""


def test_a_vm_socket_cannot_be_opened_through_io_uring_inside(tmp_path: Path) -> None:
    """io_uring opens a socket without the ``socket`` call (``IORING_OP_SOCKET``), out of the
    filter's sight: inside, io_uring itself is refused (``EPERM``, as where it is turned
    off), so no VM socket opens that way either. The control: the same probe outside opens
    one, or is refused there by the machine itself."""
    probe = Path.cwd() / "uring_probe.py"
    probe.write_text(URING_PROBE)
    outside = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=30, check=False
    )
    assert outside.returncode == 0, outside.stderr
    done = run_script(tmp_path, f"{sys.executable} {probe}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:1] == ["setup refused EPERM"], (done.stdout, outside.stdout)


SOCKETCALL_PROBE = """
import ctypes, errno, mmap, struct

# socketcall(SYS_SOCKET, [AF_VSOCK, SOCK_STREAM, 0]) through int 0x80 from this 64-bit
# process: the i386 call, its arguments in memory below 4 GB (MAP_32BIT).
flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40
data = mmap.mmap(-1, 4096, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
both = mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC
code = mmap.mmap(-1, 4096, flags=flags, prot=both)
arguments = ctypes.addressof(ctypes.c_char.from_buffer(data))
data[0:12] = struct.pack("<3I", 40, 1, 0)
code[0:20] = (
    b"\\x53"  # push rbx
    + b"\\xb8\\x66\\x00\\x00\\x00"  # mov eax, 102 (socketcall)
    + b"\\xbb\\x01\\x00\\x00\\x00"  # mov ebx, 1 (SYS_SOCKET)
    + b"\\xb9" + struct.pack("<I", arguments)  # mov ecx, arguments
    + b"\\xcd\\x80"  # int 0x80
    + b"\\x5b\\xc3"  # pop rbx; ret
)
call = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(code)))
result = call()
print("opened" if result >= 0 else "refused " + errno.errorcode[-result])
"""


@pytest.mark.skipif(platform.machine() != "x86_64", reason="int 0x80 is x86-64's")
def test_a_vm_socket_cannot_be_opened_through_socketcall_inside(tmp_path: Path) -> None:
    """``socketcall`` passes the family in memory, out of the filter's sight, and a 64-bit
    program reaches it through ``int 0x80``: inside, its ``SYS_SOCKET`` fails with
    ``ENOSYS``. The control: the same probe outside opens one, or is refused there by the
    machine itself (no VM sockets: ``EAFNOSUPPORT``), never with ``ENOSYS``; on a kernel
    without 32-bit calls (``ia32_emulation=0``) ``int 0x80`` kills the probe outside, and
    inside it must not open one either."""
    probe = Path.cwd() / "socketcall_probe.py"
    probe.write_text(SOCKETCALL_PROBE)
    outside = subprocess.run(
        [sys.executable, str(probe)], capture_output=True, text=True, timeout=30, check=False
    )
    done = run_script(tmp_path, f"{sys.executable} {probe}")
    if outside.returncode < 0:  # killed by the kernel: no 32-bit entry on this machine
        assert "opened" not in done.stdout, done.stdout
        return
    assert outside.returncode == 0, outside.stderr
    assert outside.stdout.strip() in ("opened", "refused EAFNOSUPPORT"), outside.stdout
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "refused ENOSYS", done.stdout


@pytest.mark.parametrize("name", sorted(SOCKET_CALLS))
def test_socketcall_opening_a_socket_is_refused(name: str) -> None:
    """Where :data:`SOCKETCALL` names it, ``socketcall``'s ``SYS_SOCKET`` (1) fails with
    ``ENOSYS`` and its other calls (``connect``, ``sendmsg``, …) are allowed; on s390x,
    whose C libraries may open every socket with it, and where there is none, it is
    allowed."""
    program = call_filter()
    arch = next(arch for arch_name, arch, _ in KEYRING_CALLS if arch_name == name)
    big = name in BIG_ENDIAN
    number = SOCKETCALL.get(name, 102)
    refused = name in SOCKETCALL
    assert _run(program, number, arch, 1, big) == (NO_SUCH_CALL if refused else ALLOW)
    for call in (2, 3, 9, 16, 17, 1 << 32 | 3):  # bind, connect, send, sendmsg, recvmsg
        assert _run(program, number, arch, call, big) == ALLOW, (name, call)
    assert NO_SUCH_CALL & 0xFFFF == errno.ENOSYS


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
    program = call_filter()
    big = name in BIG_ENDIAN
    for number in SOCKET_CALLS[name]:
        assert _run(program, number, arch, 40, big) == NO_SUCH_FAMILY, name
        for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6, 16, 40 << 32):
            expected = NO_SUCH_FAMILY if family & 0xFFFFFFFF == 40 else ALLOW
            assert _run(program, number, arch, family, big) == expected, (name, family)
    assert NO_SUCH_FAMILY & 0xFFFF == errno.EAFNOSUPPORT
