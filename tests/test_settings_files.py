"""Settings files that cannot be read (not JSON, too large, too deep, not a regular file): each
is a problem naming the file and why, none of it is in effect, and none is waited on."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from airlock.cli._common import report_problems
from airlock.settings import MAX_SETTINGS_BYTES, load
from tests.conftest import write_json


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _link_to_fifo(path: Path) -> None:
    os.mkfifo(path.with_name("fifo"))
    path.symlink_to(path.with_name("fifo"))


def _link_to_zero(path: Path) -> None:
    path.symlink_to("/dev/zero")


def _folder_with_a_file(path: Path) -> None:
    path.mkdir()
    (path / "x").write_text("{}")


def _trailing_comma(path: Path) -> None:
    path.write_text('{"sandbox": {"filesystem": {"denyRead": ["~/secret"],}}}')


def _too_large(path: Path) -> None:
    path.write_bytes(b" " * MAX_SETTINGS_BYTES + b"{}")


def _nested_beyond_the_parser(path: Path) -> None:
    path.write_text("[" * 100_000 + "]" * 100_000)


def _nested_within_the_parser(path: Path) -> None:
    path.write_text('{"permissions": {"deny": ' + "[" * 900 + "]" * 900 + "}}")


def _integer_too_long(path: Path) -> None:
    path.write_text('{"cleanupPeriodDays": ' + "1" * 5000 + "}")


def _not_an_object(path: Path) -> None:
    path.write_text('["Bash"]')


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "make, why",
    [
        (_fifo, "cannot be read: not a regular file (a FIFO)"),
        (_link_to_fifo, "cannot be read: not a regular file (a FIFO)"),
        (_link_to_zero, "cannot be read: not a regular file (a character device)"),
        (_folder_with_a_file, "cannot be read: not a regular file (a folder)"),
        (_trailing_comma, "not valid JSON (line 1 column 54: Expecting property name"),
        (_too_large, f"file larger than {MAX_SETTINGS_BYTES} bytes: refused"),
        (_nested_beyond_the_parser, "nested too deeply (more than 100 levels"),
        (_nested_within_the_parser, "nested too deeply (more than 100 levels"),
        (_integer_too_long, "not valid JSON (Exceeds the limit"),
        (_not_an_object, "expected a JSON object at the top level"),
    ],
    ids=[
        "fifo_is_not_waited_on",
        "link_to_a_fifo_is_not_waited_on",
        "link_to_a_device_is_not_read",
        "folder_is_not_read",
        "trailing_comma_is_not_json",
        "file_over_the_bound_is_refused",
        "nesting_beyond_the_parser_is_refused",
        "nesting_within_the_parser_is_refused",
        "integer_too_long_is_not_json",
        "top_level_list_is_not_read",
    ],
)
def test_a_file_that_cannot_be_read_is_a_problem_and_none_of_it_counts(
    project: Path, make: Callable[[Path], None], why: str
) -> None:
    """It is named with why it cannot be read; nothing in it is in effect."""
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    make(path)
    loaded = load(project, dict(os.environ))
    [layer] = loaded.layers
    assert not layer.readable
    assert layer.data == {}
    [problem] = loaded.problems
    assert problem.path == str(path)
    assert str(problem).startswith(f"{path}: {why}"), str(problem)


@pytest.mark.timeout(20)
def test_a_link_to_stdin_is_not_read(project: Path) -> None:
    """``.claude/settings.json`` linked to ``/dev/stdin`` does not read airlock's input."""
    path = project / ".claude" / "settings.json"
    path.parent.mkdir()
    path.symlink_to("/dev/stdin")
    read, write = os.pipe()
    os.write(write, b'{"permissions": {"allow": ["Bash"]}}')
    os.close(write)
    saved = os.dup(0)
    os.dup2(read, 0)
    try:
        loaded = load(project, dict(os.environ))
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        os.close(read)
    assert [str(p) for p in loaded.problems] == [
        f"{path}: cannot be read: not a regular file (a FIFO)"
    ]
    assert loaded.context.permissions.allow == ()


@pytest.mark.timeout(20)
def test_a_fifo_for_the_remembered_answers_is_not_waited_on(
    project: Path, config_dir: Path
) -> None:
    """A FIFO at ``~/.claude/airlock/state.json`` reads as no answer remembered."""
    (config_dir / "airlock").mkdir()
    os.mkfifo(config_dir / "airlock" / "state.json")
    assert load(project, dict(os.environ)).context.transcript_share_declined.value is False


def test_an_empty_folder_is_no_file(project: Path) -> None:
    """An empty folder (``airlock run``'s placeholder at a missing file) is no settings file."""
    (project / ".claude" / "settings.json").mkdir(parents=True)
    loaded = load(project, dict(os.environ))
    assert loaded.layers == () and loaded.problems == ()


def test_deep_nesting_within_the_bound_is_read(project: Path) -> None:
    """A file nested as deep as the bound allows is read as any other."""
    value: object = "x"
    for _ in range(99):
        value = [value]
    write_json(project / ".claude" / "settings.json", {"unknown": value})
    [layer] = load(project, dict(os.environ)).layers
    assert layer.readable and layer.valid


def test_the_report_says_what_of_each_file_is_in_effect(
    project: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file that could not be read is reported under a head saying none of it is in effect;
    one with a wrong value under the head saying its opt-outs and deny/ask rules are."""
    broken = config_dir / "settings.json"
    broken.write_text('{"sandbox": {"filesystem": {"denyRead": ["~/secret"],}}}')
    wrong = write_json(project / ".claude" / "settings.json", {"cleanupPeriodDays": "x"})
    report_problems(load(project, dict(os.environ)))
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == (
        "airlock: settings problems (each file below could not be read: none of it is in effect):"
    )
    assert lines[1].startswith(f"  {broken}: not valid JSON")
    assert lines[2] == (
        "airlock: settings problems (nothing in such a file is in effect except its opt-outs, "
        "its deny/ask rules, its sandbox deny lists and airlock.inspect):"
    )
    assert lines[3].startswith(f"  {wrong}: cleanupPeriodDays:")
    assert len(lines) == 4
