"""Atomic writes: complete or absent, private by default, never replacing what create keeps."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import IO

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airlock._atomic import create_file, fsync_dir, replace_file


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """An empty folder of its own (the conftest puts other folders in ``tmp_path``)."""
    path = tmp_path / "atomic"
    path.mkdir()
    return path


def _write_then_fail(out: IO[bytes]) -> None:
    out.write(b"half")
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize("write", [replace_file, create_file], ids=["replace", "create"])
def test_content_and_mode(folder: Path, write: object) -> None:
    """The file holds exactly what was given, readable by its owner only, no leftovers."""
    target = folder / "f.json"
    write(target, b'{"a": 1}')  # type: ignore[operator]
    assert target.read_bytes() == b'{"a": 1}'
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in folder.iterdir()] == ["f.json"]


@pytest.mark.parametrize("write", [replace_file, create_file], ids=["replace", "create"])
def test_a_failed_write_leaves_what_was_there(folder: Path, write: object) -> None:
    """A fill that fails part way leaves the old file as it was and no temporary file."""
    target = folder / "f"
    target.write_bytes(b"old")
    with pytest.raises(OSError):  # FileExistsError for create, the fill's error for replace
        write(target, _write_then_fail)  # type: ignore[operator]
    assert target.read_bytes() == b"old"
    assert [p.name for p in folder.iterdir()] == ["f"]


def test_create_never_replaces(folder: Path) -> None:
    """create_file refuses an existing name and keeps its content."""
    target = folder / "bundle"
    create_file(target, b"first")
    with pytest.raises(FileExistsError):
        create_file(target, b"second")
    assert target.read_bytes() == b"first"


def test_replace_takes_a_function(folder: Path) -> None:
    """A fill function writes into the open file; the result replaces the old content."""
    target = folder / "state.json"
    target.write_bytes(b"old")
    replace_file(target, lambda out: out.write(b"new"), mode=0o644)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o644


def test_fsync_dir_refuses_a_file(folder: Path) -> None:
    """Syncing a folder that is not one is an error, not a silent no-op."""
    (folder / "x").write_text("x")
    fsync_dir(folder)
    with pytest.raises(NotADirectoryError):
        fsync_dir(folder / "x")


@settings(max_examples=40, deadline=None)
@given(st.lists(st.binary(max_size=2048), min_size=1, max_size=5))
def test_the_last_replace_wins(
    tmp_path_factory: pytest.TempPathFactory, contents: list[bytes]
) -> None:
    """Whatever is written in turn, the file holds the last content whole, and nothing else
    is left in the folder."""
    folder = tmp_path_factory.mktemp("r")
    for content in contents:
        replace_file(folder / "f", content)
    assert (folder / "f").read_bytes() == contents[-1]
    assert [p.name for p in folder.iterdir()] == ["f"]
