"""``airlock redact`` as a real subprocess: stdout, --output, --report, --json, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli import airlock

GITHUB = "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"


def test_a_file_with_a_secret_exits_1_with_the_marker_on_stdout(tmp_path: Path) -> None:
    """The redacted content goes to stdout and the exit code says something was found."""
    source = tmp_path / "t.jsonl"
    source.write_text(json.dumps({"text": f"token {GITHUB}"}) + "\n")
    result = airlock("redact", str(source), text=False)
    assert result.returncode == 1
    assert json.loads(result.stdout) == {"text": "token [REDACTED:github_token]"}
    assert GITHUB.encode() not in result.stdout + result.stderr


def test_clean_input_exits_0_and_is_copied_unchanged() -> None:
    """Nothing found: exit 0 and the bytes come back as they went in."""
    result = airlock("redact", "-", stdin=b"nothing to see\n\xff\xfe binary too\n", text=False)
    assert result.returncode == 0
    assert result.stdout == b"nothing to see\n\xff\xfe binary too\n"


def test_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    """An unreadable input is an error (exit 2) that names the file."""
    result = airlock("redact", str(tmp_path / "absent.jsonl"), text=False)
    assert result.returncode == 2
    assert b"absent.jsonl" in result.stderr


def test_output_file_and_report_by_kind_and_line(tmp_path: Path) -> None:
    """--output writes the file; --report lists kind and line on stderr, never the secret."""
    target = tmp_path / "out.txt"
    result = airlock(
        "redact",
        "-",
        "--output",
        str(target),
        "--report",
        stdin=f"a\nb {GITHUB}\n".encode(),
        text=False,
    )
    assert result.returncode == 1
    assert result.stdout == b""
    assert target.read_text() == "a\nb [REDACTED:github_token]\n"
    assert b"line 2: github_token" in result.stderr
    assert GITHUB.encode() not in result.stderr


def test_output_in_place_keeps_the_file_mode(tmp_path: Path) -> None:
    """--output may name the source: it is replaced whole, keeping its mode; nothing else is left."""
    source = tmp_path / "notes.txt"
    source.write_text(f"b {GITHUB}\n")
    source.chmod(0o640)
    result = airlock("redact", str(source), "--output", str(source), text=False)
    assert result.returncode == 1
    assert source.read_text() == "b [REDACTED:github_token]\n"
    assert source.stat().st_mode & 0o777 == 0o640
    assert [path.name for path in tmp_path.iterdir() if path.name.startswith(".")] == []


def test_a_new_output_file_is_private(tmp_path: Path) -> None:
    """A new --output file is readable by its owner only."""
    target = tmp_path / "new.txt"
    result = airlock("redact", "-", "--output", str(target), stdin=b"plain\n", text=False)
    assert result.returncode == 0
    assert target.read_bytes() == b"plain\n"
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_output_folder_that_cannot_be_written_exits_2_naming_it(tmp_path: Path) -> None:
    """An --output in a missing folder is an error (exit 2) naming the folder."""
    result = airlock(
        "redact", "-", "--output", str(tmp_path / "missing" / "out.txt"), stdin=b"x\n", text=False
    )
    assert result.returncode == 2
    assert b"cannot write to" in result.stderr
    assert b"missing" in result.stderr


def test_json_report_on_stderr(tmp_path: Path) -> None:
    """--json prints counts and findings as JSON on stderr."""
    result = airlock(
        "redact",
        "-",
        "--json",
        stdin=f"PASSWORD=UufgJ4UUE8d458y55x\n{GITHUB}\n".encode(),
        text=False,
    )
    report = json.loads(result.stderr)
    assert report["counts"] == {"generic_password": 1, "github_token": 1}
    assert [f["line"] for f in report["findings"]] == [1, 2]


def test_settings_add_rules_and_allow_values(project: Path) -> None:
    """Rules and allow-listed values under airlock.redaction in project settings are used."""
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text(
        json.dumps(
            {
                "airlock": {
                    "redaction": {
                        "rules": [{"kind": "acme", "pattern": "acme-[0-9]{6}", "keyword": "acme-"}],
                        "allow": [GITHUB],
                    }
                }
            }
        )
    )
    result = airlock("redact", "-", stdin=f"acme-123456 {GITHUB}".encode(), cwd=project, text=False)
    assert result.stdout == f"[REDACTED:acme] {GITHUB}".encode()
    assert result.returncode == 1


def test_a_reader_that_goes_away_gives_exit_141_and_the_report_still_on_stderr(
    tmp_path: Path,
) -> None:
    """`airlock redact big --report | head -c 10`: exit 141, as every command on a closed
    pipe, and what was found so far on stderr."""
    source = tmp_path / "big.txt"
    source.write_bytes((b"x" * 100 + f" {GITHUB}\n".encode()) * 100_000)
    child = subprocess.Popen(
        [sys.executable, "-m", "airlock", "redact", str(source), "--report"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    assert len(child.stdout.read(10)) == 10
    child.stdout.close()
    stderr = child.stderr.read()
    child.stderr.close()
    assert child.wait(timeout=60) == 141
    assert b"found so far" in stderr
    assert b"line 1: github_token" in stderr
    assert GITHUB.encode() not in stderr


@pytest.mark.parametrize(
    ("redirect", "message"),
    [
        ("<&-", b"standard input is closed"),
        (">&-", b"standard output is closed"),
    ],
)
def test_a_closed_standard_stream_gives_exit_2_and_a_message(redirect: str, message: bytes) -> None:
    """A closed stdin (read from `-`) or closed stdout is a clean error, never a traceback."""
    result = subprocess.run(
        ["sh", "-c", f'exec "$0" -m airlock redact - --report {redirect}', sys.executable],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE if redirect == "<&-" else None,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr
    assert b"Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_an_output_that_is_no_regular_file_is_refused_and_left_as_it_is(
    tmp_path: Path, kind: str
) -> None:
    """--output naming a FIFO, a symbolic link or a folder (as /dev/null is a device) exits 2
    naming what it is, and it stays what it was: the output is a file renamed into place,
    which would have put a regular file where it stood (as root, ``-o /dev/null`` replaced
    the machine's /dev/null)."""
    import os
    import stat

    here = tmp_path / "here"
    here.mkdir()
    target = here / "out"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "link":
        (here / "real.txt").write_text("kept\n")
        target.symlink_to(here / "real.txt")
    else:
        target.mkdir()
    before = target.lstat()
    result = airlock(
        "redact", "-", "--output", str(target), stdin=f"{GITHUB}\n".encode(), text=False
    )
    assert result.returncode == 2
    words = {"fifo": b"a FIFO", "link": b"a symbolic link", "folder": b"a folder"}[kind]
    assert words in result.stderr and b"not a regular file" in result.stderr
    after = target.lstat()
    assert (stat.S_IFMT(after.st_mode), after.st_ino) == (
        stat.S_IFMT(before.st_mode),
        before.st_ino,
    )
    if kind == "link":
        assert (here / "real.txt").read_text() == "kept\n"
    assert sorted(p.name for p in here.iterdir()) == sorted(
        ["out", *(["real.txt"] if kind == "link" else [])]
    )
