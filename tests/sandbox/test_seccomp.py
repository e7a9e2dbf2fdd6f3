"""The system-call filter's program, run by a small interpreter of the three instructions it
uses: each architecture's keyring and io_uring calls are refused, every other call is
allowed, and a program of an architecture the filter does not know is killed."""

from __future__ import annotations

import os
import struct

import pytest

from airlock.errors import SandboxError
from airlock.sandbox.seccomp import (
    ALLOW,
    IO_URING_CALLS,
    KEYRING_CALLS,
    KILL,
    MACHINES,
    REFUSE,
    call_filter,
    filter_fd,
)


def _run(program: bytes, number: int, arch: int) -> int:
    """What the program returns for a call (``struct seccomp_data``'s ``nr`` and ``arch``)."""
    instructions = [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]
    data = struct.pack("=iI", number, arch)
    accumulator, pc = 0, 0
    while True:
        code, jump_true, jump_false, value = instructions[pc]
        if code == 0x20:  # load a word of seccomp_data
            accumulator = struct.unpack_from("=I", data, value)[0]
            pc += 1
        elif code == 0x15:  # jump if equal
            pc += 1 + (jump_true if accumulator == value else jump_false)
        elif code == 0x06:  # return
            return value
        else:
            raise AssertionError(f"unexpected instruction {code:#x}")


@pytest.mark.parametrize(("name", "arch", "numbers"), KEYRING_CALLS, ids=lambda x: str(x))
def test_each_architectures_keyring_and_io_uring_calls_are_refused(
    name: str, arch: int, numbers: tuple[int, ...]
) -> None:
    program = call_filter()
    numbers = numbers + IO_URING_CALLS[name]
    assert {425, 426, 427} <= set(numbers)
    for number in numbers:
        assert _run(program, number, arch) == REFUSE, (name, number)
    for number in (0, 1, 59, 231, 216, 220, 251, 435):  # read, write, execve, exit_group, …
        if number not in numbers:
            assert _run(program, number, arch) == ALLOW, (name, number)


def test_another_architecture_is_killed() -> None:
    """A program of an architecture the table does not know is killed at its first call,
    whatever the call: never let through unfiltered."""
    for number in (0, 1, 60, 231, 250):
        assert _run(call_filter(), number, 0x12345678) == KILL


@pytest.mark.parametrize("machine", ["loongarch64", "mips64", "ppc64", "sparc64", ""])
def test_a_machine_the_filter_does_not_know_is_refused(machine: str) -> None:
    """On a machine whose own architecture the table leaves out, no filter is made and the
    run is refused, naming the machine: its command would be killed at its first call."""
    with pytest.raises(SandboxError, match="knows no call numbers") as raised:
        filter_fd(machine)
    assert (machine or "no name given") in str(raised.value)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_each_known_machine_has_its_architecture_in_the_table(machine: str) -> None:
    """Every machine name taken maps to an architecture the program filters, and its filter
    is made."""
    assert MACHINES[machine] in {name for name, _, _ in KEYRING_CALLS}
    fd = filter_fd(machine)
    try:
        assert os.read(fd, 1 << 16) == call_filter()
    finally:
        os.close(fd)


def test_the_program_fits_the_kernel() -> None:
    """At most 4096 instructions, jumps within one byte (the format's own limits)."""
    program = call_filter()
    assert len(program) % 8 == 0
    assert len(program) // 8 <= 4096


@pytest.mark.parametrize(
    ("arch", "keyctl"),
    [(0x400000F3, 219), (0x00000016, 280)],
    ids=["riscv32 on riscv64", "s390 (31-bit) on s390x"],
)
def test_a_32_bit_program_on_a_64_bit_kernel_is_filtered_too(arch: int, keyctl: int) -> None:
    """A 64-bit kernel runs 32-bit programs of its own family (riscv64's 32-bit ones, s390x's
    31-bit ones), with their own AUDIT_ARCH: code inside could bring one, so their calls are
    filtered as the 64-bit ones are, not allowed as an unknown architecture's."""
    program = call_filter()
    for number in (keyctl, 425, 426, 427):
        assert _run(program, number, arch) == REFUSE, number
    assert _run(program, 63, arch) == ALLOW
