"""The sandbox's system-call filter: the kernel's key store and VM sockets are out of reach.

The kernel's keyrings are not namespaced the way files and the network are: a process inside
the sandbox still possesses the caller's session keyring and reaches its user keyring, where
Kerberos keeps tickets (``KRB5CCNAME=KEYRING:…``, the default on Fedora and RHEL) and tools
keep tokens. So ``add_key``, ``request_key`` and ``keyctl`` fail inside with ``EPERM``, as in
Docker's default profile. Nor are VM sockets (``AF_VSOCK``): the network namespace leaves
them out, so from inside they reach the hypervisor's services (CID 2), other VMs', and with
the loopback transport the host's own vsock listeners, past the proxy; ``socket(AF_VSOCK,
…)`` fails inside with ``EAFNOSUPPORT``, as on a machine without them (Docker's profile
refuses it too). Nor is io_uring: its ``IORING_OP_SOCKET`` opens a socket without the
``socket`` call, out of the filter's sight (an ``AF_VSOCK`` one included), so
``io_uring_setup``, ``io_uring_enter`` and ``io_uring_register`` fail inside with ``EPERM``,
as on a kernel with io_uring turned off (``kernel.io_uring_disabled``) and in Docker's
profile; programs that use it when they can (libuv, Node, liburing's users) fall back to
plain calls. Every other call is allowed.

The filter is a classic BPF program for ``seccomp(SECCOMP_SET_MODE_FILTER)``, which
bubblewrap loads (``--seccomp FD``) just before it runs the stub, so the command and all its
children inherit it. It knows each architecture's numbers for the seven calls (a 32-bit
program on a 64-bit kernel uses the 32-bit numbers, riscv32's and 31-bit s390's among them;
x32 programs theirs, with the x32 bit).
The older ``socketcall`` (i386, ppc, s390) passes a call's arguments in memory, out of a
filter's sight, and any program can make it: a 64-bit one on x86-64 through ``int 0x80``,
with the i386 numbers. On i386 and ppc its ``socket`` (``SYS_SOCKET``, in a register) fails
with ``ENOSYS`` whatever the family, and every other use of it is allowed: ppc's C
libraries call ``socket`` itself, and so do i386's built for Linux 4.3 and later, but most
32-bit x86 programs open no socket inside (Debian's and Ubuntu's i386 C library, built for
older kernels, and Go's 386 port open every socket through ``socketcall``). On
s390x (and 31-bit s390), whose C libraries may open every socket through it, it stays
allowed, and there a program that makes it could open a VM socket.
"""

from __future__ import annotations

import errno
import struct

# struct sock_filter instructions (linux/filter.h, linux/bpf_common.h)
LOAD_WORD = 0x20  # BPF_LD | BPF_W | BPF_ABS
JUMP_IF_EQUAL = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
RETURN = 0x06  # BPF_RET | BPF_K

# struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6]
NUMBER_OFFSET = 0
ARCH_OFFSET = 4
FIRST_ARGUMENT_OFFSET = 16
"""Where ``args[0]``'s low 32 bits are on a little-endian machine; a big-endian one (s390x)
has them 4 bytes further."""

ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
REFUSE = 0x00050000 | errno.EPERM  # SECCOMP_RET_ERRNO | EPERM
NO_SUCH_FAMILY = 0x00050000 | errno.EAFNOSUPPORT
KILL = 0x80000000  # SECCOMP_RET_KILL_PROCESS

AF_VSOCK = 40

X32_BIT = 0x40000000

KEYRING_CALLS: tuple[tuple[str, int, tuple[int, ...]], ...] = (
    ("x86_64", 0xC000003E, (248, 249, 250, X32_BIT | 248, X32_BIT | 249, X32_BIT | 250)),
    ("i386", 0x40000003, (286, 287, 288)),
    ("aarch64", 0xC00000B7, (217, 218, 219)),
    ("arm", 0x40000028, (309, 310, 311)),
    ("riscv64", 0xC00000F3, (217, 218, 219)),
    ("ppc64le", 0xC0000015, (269, 270, 271)),
    ("s390x", 0x80000016, (278, 279, 280)),
    ("riscv32", 0x400000F3, (217, 218, 219)),
    ("s390", 0x00000016, (278, 279, 280)),
)
"""(architecture, its ``AUDIT_ARCH_*`` value, its numbers of ``add_key``, ``request_key`` and
``keyctl``). The 32-bit ones are those a 64-bit kernel here runs besides its own (i386 on
x86-64, arm on aarch64, riscv32 on riscv64, 31-bit s390 on s390x, each with its own
``AUDIT_ARCH``): code inside may bring a program built for one. A program of an
architecture the table leaves out (32-bit ppc on a ppc64 kernel built to run it) is killed
at its first call (``SIGSYS``), never let through unfiltered, and a run on a machine whose
own architecture it leaves out is refused before anything starts (:func:`filter_fd`)."""

MACHINES = {
    "x86_64": "x86_64",
    "amd64": "x86_64",
    **{name: "i386" for name in ("i386", "i486", "i586", "i686")},
    "aarch64": "aarch64",
    "arm64": "aarch64",
    **{name: "arm" for name in ("armv6l", "armv7l", "armv8l")},
    "riscv64": "riscv64",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
}
"""The machine names ``uname`` gives (:func:`platform.machine`) of the architectures the
table knows as a machine's own."""

IO_URING_CALLS: dict[str, tuple[int, ...]] = {
    "x86_64": (425, 426, 427, X32_BIT | 425, X32_BIT | 426, X32_BIT | 427),
    **{
        name: (425, 426, 427)
        for name in ("i386", "aarch64", "arm", "riscv64", "ppc64le", "s390x", "riscv32", "s390")
    },
}
"""Each architecture's numbers of ``io_uring_setup``, ``io_uring_enter`` and
``io_uring_register`` (one numbering on every architecture here since Linux 5.1)."""

SOCKET_CALLS: dict[str, tuple[int, ...]] = {
    "x86_64": (41, X32_BIT | 41),
    "i386": (359,),
    "aarch64": (198,),
    "arm": (281,),
    "riscv64": (198,),
    "ppc64le": (326,),
    "s390x": (359,),
    "riscv32": (198,),
    "s390": (359,),
}
"""Each architecture's number of ``socket``, whose first argument (the family) is looked at."""

SOCKETCALL: dict[str, int] = {"i386": 102, "ppc64le": 102}
"""The architectures whose ``socketcall`` opening a socket is refused, and its number."""

SYS_SOCKET = 1
"""``socketcall``'s first argument for ``socket`` (linux/net.h)."""

NO_SUCH_CALL = 0x00050000 | errno.ENOSYS

BIG_ENDIAN = frozenset({"s390x", "s390"})


def _instruction(code: int, jump_true: int, jump_false: int, value: int) -> bytes:
    return struct.pack("=HBBI", code, jump_true, jump_false, value)


def call_filter() -> bytes:
    """The program: for each known architecture, refuse its keyring and io_uring calls, a
    ``socket`` of the family ``AF_VSOCK`` and a ``socketcall`` opening a socket (where
    :data:`SOCKETCALL` names it); allow the rest."""
    program = [_instruction(LOAD_WORD, 0, 0, ARCH_OFFSET)]
    for name, arch, keyring in KEYRING_CALLS:
        numbers = keyring + IO_URING_CALLS[name]
        sockets = SOCKET_CALLS[name]
        socketcall = SOCKETCALL.get(name)
        # the block: load the number; compare with each refused call's, then socket's, then
        # socketcall's; allow; refuse; for socket: load the family, refuse AF_VSOCK, allow
        # the rest; for socketcall: load its call, refuse SYS_SOCKET, allow the rest
        compares = len(numbers) + len(sockets) + (socketcall is not None)
        refuse, family = compares + 2, compares + 3  # after the load, the compares, allow
        called = family + 4
        block = [_instruction(LOAD_WORD, 0, 0, NUMBER_OFFSET)]
        for number in numbers:
            block.append(_instruction(JUMP_IF_EQUAL, refuse - len(block) - 1, 0, number))
        for number in sockets:
            block.append(_instruction(JUMP_IF_EQUAL, family - len(block) - 1, 0, number))
        if socketcall is not None:
            block.append(_instruction(JUMP_IF_EQUAL, called - len(block) - 1, 0, socketcall))
        offset = FIRST_ARGUMENT_OFFSET + (4 if name in BIG_ENDIAN else 0)
        block += [
            _instruction(RETURN, 0, 0, ALLOW),
            _instruction(RETURN, 0, 0, REFUSE),
            _instruction(LOAD_WORD, 0, 0, offset),
            _instruction(JUMP_IF_EQUAL, 0, 1, AF_VSOCK),
            _instruction(RETURN, 0, 0, NO_SUCH_FAMILY),
            _instruction(RETURN, 0, 0, ALLOW),
        ]
        if socketcall is not None:
            block += [
                _instruction(LOAD_WORD, 0, 0, offset),
                _instruction(JUMP_IF_EQUAL, 0, 1, SYS_SOCKET),
                _instruction(RETURN, 0, 0, NO_SUCH_CALL),
                _instruction(RETURN, 0, 0, ALLOW),
            ]
        program.append(_instruction(JUMP_IF_EQUAL, 0, len(block), arch))
        program += block
    program.append(_instruction(RETURN, 0, 0, KILL))  # an architecture not in the table
    return b"".join(program)


def filter_fd(machine: str | None = None) -> int:
    """A file descriptor holding :func:`call_filter`, at its start, for bubblewrap's
    ``--seccomp``; the caller closes it once bubblewrap has started. ``machine``: this
    machine's name as ``uname`` gives it (by default, read from it).

    Raises:
        SandboxError: the filter knows no numbers for ``machine`` (:data:`MACHINES`): the
            command would be killed at its first call, so nothing is started.
        OSError: it cannot be made.
    """
    import os
    import platform

    machine = platform.machine() if machine is None else machine
    if machine not in MACHINES:
        from airlock.errors import SandboxError

        known = ", ".join(sorted(set(MACHINES.values())))
        raise SandboxError(
            f"the sandbox's system-call filter knows no call numbers for this machine "
            f"({machine or 'no name given'}; it knows {known}): without it the kernel's "
            "keyrings, io_uring and VM sockets would be in reach inside, so nothing was run"
        )
    fd = os.memfd_create("airlock-seccomp", 0)
    try:
        os.write(fd, call_filter())
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd
