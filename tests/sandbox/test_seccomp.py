"""The system-call filter's program, run by a small interpreter of the three instructions it
uses: each architecture's keyring and io_uring calls are refused, every other call is
allowed."""

from __future__ import annotations

import struct

import pytest

from airlock.sandbox.seccomp import ALLOW, IO_URING_CALLS, KEYRING_CALLS, REFUSE, call_filter


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


def test_another_architecture_is_allowed() -> None:
    assert _run(call_filter(), 250, 0x12345678) == ALLOW


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
