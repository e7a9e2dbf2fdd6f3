"""Every ``airlock`` command as the README's walkthrough uses it: ``--settings`` given twice, a
reader that goes away (``| head -1``), ``flows --explain`` on a narrow terminal, a mistyped
option."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airlock.egress.audit import AuditLog, heads_path
from tests.cli import airlock


@pytest.mark.parametrize("command", [("flows", "--json"), ("run", "--", "touch", "ran")])
def test_settings_given_twice_is_refused(project: Path, command: tuple[str, ...]) -> None:
    """``--settings s1.json --settings s2.json`` read only s2.json without a word: refused,
    naming both (the same file twice is that file); a run does not start."""
    for name in ("s1.json", "s2.json"):
        (project / name).write_text("{}")
    name, *rest = command
    twice = ("--settings", "s1.json", "--settings", "s2.json")
    done = airlock(name, *twice, *rest, cwd=project)
    assert done.returncode == (125 if name == "run" else 2), done.stderr
    assert "--settings given twice, s1.json and s2.json: give it once" in done.stderr
    assert f"usage: airlock {name}" in done.stderr
    assert not (project / "ran").exists()
    if name == "flows":
        same = airlock(name, "--settings", "s1.json", "--settings", "s1.json", *rest, cwd=project)
        assert same.returncode == 0, same.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("sessions", "--settings", "s1.json", "list", "--settings", "s2.json"),
        ("sessions", "--settings", "s1.json", "prune", "--dry-run", "--settings=s2.json"),
    ],
    ids=["list", "prune"],
)
def test_settings_given_to_a_command_and_its_subcommand_is_refused(
    project: Path, command: tuple[str, ...]
) -> None:
    """``sessions --settings s1.json list --settings s2.json`` read only s2.json without a
    word (argparse copies the subcommand's values over the command's): refused by the
    subcommand, naming both; the same file at both levels is that file."""
    for name in ("s1.json", "s2.json"):
        (project / name).write_text("{}")
    done = airlock(*command, cwd=project)
    assert done.returncode == 2, done.stderr
    assert "--settings given twice, s1.json and s2.json: give it once" in done.stderr
    assert f"usage: airlock sessions {command[3]}" in done.stderr
    same = [c.replace("s2.json", "s1.json") for c in command]
    again = airlock(*same, cwd=project)
    assert again.returncode == 0, again.stderr


def test_settings_given_before_a_subcommand_of_its_own_is_kept(project: Path) -> None:
    """``airlock sessions --settings F list``: F is read (list's own --settings, not given,
    replaced it with nothing before): a file that is not there is said so."""
    done = airlock("sessions", "--settings", "missing.json", "list", cwd=project)
    assert done.returncode == 2, done.stderr
    assert "--settings 'missing.json': no such file" in done.stderr


def _audit_log(config_dir: Path, records: int) -> Path:
    """An intact log of ``records`` requests, its heads file where ``airlock audit`` looks."""
    log = config_dir / "airlock" / "audit.jsonl"
    audit = AuditLog(log, heads_path(log, config_dir), "r1", flush_interval=3600)
    audit.open()
    for _ in range(records):
        audit.append({"type": "request", "time": time.time(), "run": "r1", "host": "a.test"})
    audit.close()
    return log


@pytest.mark.parametrize(
    "command",
    [
        pytest.param(("flows",), id="flows_table"),
        pytest.param(("flows", "--json"), id="flows_json"),
        pytest.param(("flows", "--explain", "metrics"), id="flows_explain"),
        pytest.param(("audit",), id="audit_listing"),
        pytest.param(("audit", "--json"), id="audit_json"),
        pytest.param(("audit", "verify"), id="audit_verify"),
    ],
)
def test_a_reader_gone_ends_every_command_quietly_with_141(
    config_dir: Path, command: tuple[str, ...]
) -> None:
    """``airlock audit | head -1`` said "output closed before everything was written" and
    exited 2, ``airlock flows | head -1`` exited 1 without a word: every command now ends
    quietly with 141 (128 + SIGPIPE, as a shell shows for ``yes | head``)."""
    _audit_log(config_dir, 200)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before airlock writes a byte
    try:
        child = subprocess.run(
            [sys.executable, "-m", "airlock", *command],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "COLUMNS": "80"},
            timeout=120,
            check=False,
        )
    finally:
        os.close(write)
    assert (child.returncode, child.stderr) == (141, "")


def _explain_lines(output: str) -> list[str]:
    lines = output.replace("\r\n", "\n").splitlines()
    assert lines[0].startswith("metrics: ")
    return lines[1:]


def test_explain_keeps_its_indent_on_a_narrow_output(project: Path) -> None:
    """``flows --explain metrics`` at 80 columns: what leaves and how long it is kept wrap
    under their own start, not back to column 0."""
    done = airlock("flows", "--explain", "metrics", env={"COLUMNS": "80"}, cwd=project)
    assert done.returncode == 0, done.stderr
    lines = _explain_lines(done.stdout)
    assert len(lines) > 8
    value_start = lines[0].index("Anthropic")  # the provider's value: where every value starts
    for line in lines:
        assert line.startswith("  "), line
        assert len(line.rstrip()) <= 80, line
    what = next(n for n, line in enumerate(lines) if line.startswith("  what "))
    assert lines[what + 1][:value_start].strip() == "", lines[what + 1]


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
def test_explain_keeps_its_indent_on_a_terminal(project: Path) -> None:
    """The same on a terminal 80 columns wide."""
    shown = subprocess.run(
        ["script", "-qc", f"{sys.executable} -m airlock flows --explain metrics", "/dev/null"],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"},
        cwd=project,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    for line in _explain_lines(shown.stdout):
        assert line.startswith("  "), line


@pytest.mark.parametrize(
    ("command", "said", "code"),
    [
        (("run", "--alow", "x.com", "--", "true"), "airlock run: error", 125),
        (("audit", "--jsn"), "airlock audit: error", 2),
        (("sessions", "list", "--jsn"), "airlock sessions list: error", 2),
    ],
)
def test_a_mistyped_option_is_refused_by_its_command_with_a_suggestion(
    project: Path, command: tuple[str, ...], said: str, code: int
) -> None:
    """``airlock run --alow x.com`` printed the top-level usage and ``airlock: error``: the
    command it was given to refuses it, with its usage and the option it may have meant."""
    done = airlock(*command, cwd=project)
    assert done.returncode == code, done.stderr
    typo = command[-1] if command[0] != "run" else "--alow"
    meant = {"--alow": "--allow", "--jsn": "--json"}[typo]
    assert f"{said}: unrecognized arguments: {typo} (did you mean {meant}?)" in done.stderr
    usage = " ".join(word for word in command[:2] if not word.startswith("-"))
    assert f"usage: airlock {usage}" in done.stderr
