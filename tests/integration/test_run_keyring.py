"""``airlock run``: the caller's kernel keyrings (where Kerberos and other tools keep tickets
and tokens) cannot be read inside."""

from __future__ import annotations

import ctypes
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.sandbox.seccomp import KEYRING_CALLS
from tests.cli import run_script

USER_KEYRING = -4  # KEY_SPEC_USER_KEYRING
KEYCTL_SEARCH, KEYCTL_READ, KEYCTL_INVALIDATE = 10, 11, 21
PAYLOAD = b"KRB5-TICKET-3c9e"

PROBE = """
import ctypes, sys
libc = ctypes.CDLL(None, use_errno=True)
add_key, request_key, keyctl = {numbers}
found = libc.syscall(keyctl, 10, -4, b"user", b"airlock-test-key", 0)
if found < 0:
    print("refused errno", ctypes.get_errno())
else:
    buffer = ctypes.create_string_buffer(64)
    size = libc.syscall(keyctl, 11, found, buffer, 64)
    print("read", buffer.raw[: max(size, 0)])
print("ran")
"""


def _numbers() -> tuple[int, int, int]:
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(platform.machine(), platform.machine())
    for name, _arch, numbers in KEYRING_CALLS:
        if name == machine:
            return numbers[0], numbers[1], numbers[2]
    pytest.fail(f"no keyring call numbers for {machine}")


@pytest.fixture
def key_in_the_users_keyring() -> Iterator[int]:
    libc = ctypes.CDLL(None, use_errno=True)
    add_key, _, keyctl = _numbers()
    key = libc.syscall(add_key, b"user", b"airlock-test-key", PAYLOAD, len(PAYLOAD), USER_KEYRING)
    assert key > 0, os.strerror(ctypes.get_errno())
    yield key
    libc.syscall(keyctl, KEYCTL_INVALIDATE, key)


def test_a_key_in_the_callers_keyring_is_out_of_reach(
    tmp_path: Path, key_in_the_users_keyring: int
) -> None:
    probe = tmp_path / "project" / "probe.py"
    probe.write_text(PROBE.format(numbers=_numbers()))
    direct = subprocess.run([sys.executable, str(probe)], capture_output=True, text=True)
    assert PAYLOAD.decode() in direct.stdout  # the control: the probe reads it outside
    done = run_script(tmp_path, f"{sys.executable} {probe}")
    assert done.returncode == 0, done.stderr
    assert "ran" in done.stdout
    assert PAYLOAD.decode() not in done.stdout
    assert "refused errno 1" in done.stdout
