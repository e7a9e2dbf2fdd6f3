"""``airlock run`` refuses, with exit status 125 and a reason, what would otherwise be taken
without a word and do nothing: an --inspect pattern or a value that is no host name (in
settings too), an empty --audit-log or --report-json, an --audit-log in a folder that is not
there (none is made). Its help says what its exit status means."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import airlock


def _run(*options: str) -> tuple[int, str]:
    done = airlock("run", *options, "--", "true", timeout=180)
    return done.returncode, done.stderr


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("*.localhost", "a pattern"),
        ("*", "a pattern"),
        ("a b", "expected a host name"),
        ("x..example", "expected a host name"),
    ],
)
def test_an_inspect_value_that_names_no_host_is_refused(
    tmp_path: Path, value: str, words: str
) -> None:
    code, err = _run("--audit-log", str(tmp_path / "a.jsonl"), "--inspect", value)
    assert code == 125, err
    assert f"--inspect {value!r}: {words}" in err


def test_an_inspect_pattern_in_settings_is_refused(tmp_path: Path, project: Path) -> None:
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps({"airlock": {"inspect": ["*.example.com"]}}))
    code, err = _run("--audit-log", str(tmp_path / "a.jsonl"))
    assert code == 125, err
    where = f"airlock.inspect in project settings {settings}"  # the file that says so
    assert f"{where} '*.example.com': a pattern" in err


@pytest.mark.parametrize("option", ["--audit-log", "--report-json"])
def test_an_empty_file_option_is_refused(option: str) -> None:
    code, err = _run(option, "")
    assert code == 125, err
    assert f"argument {option}: an empty path" in err


def test_an_audit_log_in_a_folder_that_is_not_there_is_refused(tmp_path: Path) -> None:
    """As --report-json: the folders of a mistyped path are not made."""
    code, err = _run("--audit-log", str(tmp_path / "nope" / "a" / "b" / "audit.jsonl"))
    assert code == 125, err
    assert f"there is no folder {tmp_path / 'nope' / 'a' / 'b'}" in err
    assert not (tmp_path / "nope").exists()


def test_the_help_says_what_the_exit_status_means() -> None:
    done = airlock("run", "--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for words in (
        "the command's own",
        "126 the command could not be run",
        "127 the command was not found",
        "128+N the command was killed by signal N",
        "125 airlock itself failed",
    ):
        assert words in text


def test_a_command_past_bubblewraps_bound_is_refused_in_its_own_words(
    tmp_path: Path, home: Path
) -> None:
    """bubblewrap takes at most 9,000 arguments, the command's included: past that airlock
    said to check the --rw and --ro paths; it says what is wrong, leaves no list of
    placeholders behind, and the next run has none to remove."""
    log = str(tmp_path / "a.jsonl")
    done = airlock("run", "--audit-log", log, "--", "true", *["x"] * 9000, timeout=180)
    assert done.returncode == 125
    assert "the command has 9,001 arguments" in done.stderr
    assert "xargs" in done.stderr and "--rw" not in done.stderr
    ledgers = home / ".claude" / "airlock" / "placeholders"
    assert not ledgers.is_dir() or not list(ledgers.glob("*.json"))
    again = airlock("run", "--audit-log", log, "--", "true", timeout=180)
    assert again.returncode == 0, again.stderr
    assert "removed the empty placeholders" not in again.stderr
