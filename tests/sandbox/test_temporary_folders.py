"""The caller's temporary and runtime folders inside the sandbox, whose /tmp, /var/tmp and /run
are private and empty: a TMPDIR that will not be there is /tmp inside, an XDG_RUNTIME_DIR that
will not be there is left out; nothing is made outside."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.sandbox import scrub
from tests.sandbox.helpers import run_sandboxed

PROXY = "http://127.0.0.1:3128"
OUTSIDE_TMP = "/usr"
"""A folder that is there, outside the sandbox's private folders: seen inside as it is (not
this file's: a clone may be under /tmp)."""


@pytest.fixture
def in_tmp() -> Iterator[Path]:
    """A folder under the host's /tmp (pam_tmpdir's /tmp/user/UID), wherever pytest's are."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        yield Path(folder)


@pytest.mark.parametrize("name", ["TMPDIR", "TMP", "TEMP"])
def test_a_temporary_folder_that_will_not_be_there_is_tmp_inside(in_tmp: Path, name: str) -> None:
    """Under the private /tmp, or missing outside: /tmp inside; nothing made outside."""
    missing = in_tmp / "user" / "1000"
    for value in (str(in_tmp), str(missing), "/nonexistent/airlock-tmp"):
        assert scrub({name: value}, {}, PROXY).environ[name] == "/tmp"
    assert not missing.exists() and not Path("/nonexistent").exists()
    assert scrub({name: OUTSIDE_TMP}, {}, PROXY).environ[name] == OUTSIDE_TMP


def test_a_temporary_folder_set_with_env_is_the_users(in_tmp: Path) -> None:
    """--env TMPDIR=… is passed as given (the command may make it in its /tmp)."""
    given = str(in_tmp / "made-inside")
    assert scrub({"TMPDIR": str(in_tmp)}, {"TMPDIR": given}, PROXY).environ["TMPDIR"] == given


def test_a_runtime_folder_that_will_not_be_there_is_left_out(in_tmp: Path) -> None:
    """/run/user/UID (under the private /run) and a missing one: left out; one there is kept."""
    for value in (f"/run/user/{os.getuid()}", str(in_tmp), "/nonexistent/runtime"):
        assert "XDG_RUNTIME_DIR" not in scrub({"XDG_RUNTIME_DIR": value}, {}, PROXY).environ
    kept = scrub({"XDG_RUNTIME_DIR": OUTSIDE_TMP}, {}, PROXY).environ
    assert kept["XDG_RUNTIME_DIR"] == OUTSIDE_TMP


def test_mktemp_works_inside_with_a_tmpdir_under_the_hosts_tmp(
    tmp_path: Path, project: Path, home: Path, in_tmp: Path
) -> None:
    """In a real sandbox: mktemp makes its file in /tmp inside, not in a folder that is not
    there; XDG_RUNTIME_DIR under /run is unset."""
    ran = run_sandboxed(
        'echo "TMPDIR=$TMPDIR"; echo "XDG=${XDG_RUNTIME_DIR-unset}"; mktemp',
        project,
        home,
        environ={"TMPDIR": str(in_tmp / "user"), "XDG_RUNTIME_DIR": f"/run/user/{os.getuid()}"},
    )
    assert ran.code == 0, ran.err
    lines = ran.out.splitlines()
    assert lines[:2] == ["TMPDIR=/tmp", "XDG=unset"]
    assert lines[2].startswith("/tmp/tmp.")
    assert not (in_tmp / "user").exists()
