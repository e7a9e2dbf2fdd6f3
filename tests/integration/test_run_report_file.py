"""``airlock run --report-json FILE``: the file is often in the workspace, which the command
can write. Whatever the command leaves at its name (a link to a file of the user's, a FIFO, a
folder), the report never goes anywhere else and airlock never waits; a path that cannot be
written is refused before the command runs; a report that cannot be written after it is said,
after the report on stderr, with exit 125."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock, on_a_terminal


def _run(tmp_path: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    log = str(tmp_path / "audit.jsonl")
    return airlock("run", "--audit-log", log, *args, cwd=cwd, timeout=120)


def _report(path: Path) -> dict[str, object]:
    assert stat.S_ISREG(path.lstat().st_mode), path
    data = json.loads(path.read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("target", ["settings", "audit log"])
def test_a_link_the_command_leaves_at_the_report_is_replaced_not_followed(
    tmp_path: Path, project: Path, config_dir: Path, target: str
) -> None:
    """The command links ``report.json`` to the user's settings (read-only inside) or to
    airlock's own audit log: after the run both are as they were, and ``report.json`` is a
    file of its own holding the report."""
    settings = config_dir / "settings.json"
    settings.write_text('{"permissions": {"deny": ["Bash(rm:*)"]}}')
    victim = settings if target == "settings" else tmp_path / "audit.jsonl"
    done = _run(
        tmp_path, "--report-json", "report.json", "--", "ln", "-sf", str(victim), "report.json"
    )
    assert done.returncode == 0, done.stderr
    assert settings.read_text() == '{"permissions": {"deny": ["Bash(rm:*)"]}}'
    assert _report(project / "report.json")["exit_code"] == 0
    verified = airlock("audit", "verify", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_fifo_the_command_leaves_at_the_report_does_not_hold_airlock(
    tmp_path: Path, project: Path
) -> None:
    done = _run(  # the run's "not ended" report is there: replaced by a FIFO
        tmp_path,
        "--report-json",
        "report.json",
        "--",
        "sh",
        "-c",
        "rm report.json; mkfifo report.json",
    )
    assert done.returncode == 0, done.stderr
    assert _report(project / "report.json")["exit_code"] == 0


def test_a_folder_the_command_leaves_at_the_report_is_said_after_the_report(
    tmp_path: Path, project: Path
) -> None:
    """The report on stderr and what the run made safe are still shown; then why the file
    was not written, and exit 125 though the command exited 3."""
    done = _run(
        tmp_path,
        "--report-json",
        "report.json",
        "--",
        "sh",
        "-c",
        "rm report.json; mkdir -p report.json/x sub/.vscode; echo {} > sub/.vscode/settings.json;"
        " exit 3",
    )
    assert done.returncode == 125, done.stderr
    assert "nothing left the machine" in done.stderr
    assert "set aside" in done.stderr  # the .vscode settings made in the run
    said = done.stderr.splitlines()[-1]
    assert "--report-json report.json: not written" in said, done.stderr
    assert "the command exited 3, airlock exits 125" in said
    assert (project / "report.json" / "x").is_dir()
    assert [entry.name for entry in project.iterdir() if entry.name.endswith(".tmp")] == []


def test_a_folder_moved_away_in_the_run_is_still_the_one_written_in(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """The command moves the report's folder away and puts a link to the home in its place:
    the report goes into the folder chosen (now moved), not into the home."""
    (project / "out").mkdir()
    done = _run(
        tmp_path,
        "--report-json",
        "out/report.json",
        "--",
        "sh",
        "-c",
        f"mv out moved && ln -s {home} out",
    )
    assert done.returncode == 0, done.stderr
    assert not (home / "report.json").exists()
    assert _report(project / "moved" / "report.json")["exit_code"] == 0


def test_a_link_at_the_name_before_the_run_is_replaced_too(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """A link at the name before the run may be an earlier command's (to the agent's state,
    to the user's settings): it is replaced, never followed."""
    settings = home / "settings.json"
    settings.write_text("{}")
    (project / "report.json").symlink_to(settings)
    done = _run(tmp_path, "--report-json", "report.json", "--", "true")
    assert done.returncode == 0, done.stderr
    assert settings.read_text() == "{}"
    assert _report(project / "report.json")["exit_code"] == 0


@pytest.mark.parametrize(
    ("given", "said"),
    [
        ("missing/report.json", "there is no folder"),
        (".", "a folder"),
        ("out/", "a folder"),
        ("fifo", "not a regular file"),
        ("{log}", "in airlock's own state"),
        ("{state}/report.json", "in airlock's own state"),
        ("{home}/.claude/.claude.json", "the agent's state file"),
        ("{home}/.claude.json", "the agent's state file"),
    ],
)
def test_a_report_path_that_cannot_be_written_is_refused_before_the_command_runs(
    tmp_path: Path, project: Path, home: Path, given: str, said: str
) -> None:
    (project / "out").mkdir()
    os.mkfifo(project / "fifo")
    path = given.format(log=tmp_path / "audit.jsonl", state=home / ".claude" / "airlock", home=home)
    done = _run(tmp_path, "--report-json", path, "--", "touch", "ran")
    assert done.returncode == 125, done.stderr
    assert f"--report-json {path}: {said}" in done.stderr, done.stderr
    assert not (project / "ran").exists()


def test_the_report_file_says_what_was_made_safe_after_the_run(
    tmp_path: Path, project: Path
) -> None:
    """What airlock set aside after the command is in the report file (``after_run``), as on
    stderr: a script reading the file sees the run was not clean; a clean run has none."""
    made = _run(
        tmp_path,
        "--report-json",
        "made.json",
        "--",
        "sh",
        "-c",
        "mkdir -p sub/.vscode; echo {} > sub/.vscode/settings.json",
    )
    assert made.returncode == 0, made.stderr
    after_run = _report(project / "made.json")["after_run"]
    assert isinstance(after_run, list) and after_run
    assert any("set aside" in line and ".vscode" in line for line in after_run), after_run
    assert all(line in made.stderr for line in after_run)
    clean = _run(tmp_path, "--report-json", "clean.json", "--", "true")
    assert clean.returncode == 0, clean.stderr
    assert _report(project / "clean.json")["after_run"] == []


def test_on_a_terminal_the_report_sets_the_text_back_to_plain(
    tmp_path: Path, project: Path
) -> None:
    """The command leaves concealed text on (SGR 8): the report, on a terminal, begins with
    SGR 0, after the command's output, so it shows."""
    log = tmp_path / "audit.jsonl"
    shown = on_a_terminal(
        "run", "--audit-log", str(log), "--", "sh", "-c", 'printf "ok\\033[8m"',
        cwd=project, typescript=tmp_path / "typescript", env={"COLUMNS": "120"},
    )  # fmt: skip
    concealed = shown.index(b"\x1b[8m")
    assert b"\x1b[0m" in shown[concealed:]
    reset = shown.index(b"\x1b[0m", concealed)
    assert b"nothing left the machine" in shown[reset:]
