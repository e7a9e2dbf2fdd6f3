"""``airlock run`` and ``airlock audit`` on real logs: a symbolic link at the log's path is
refused (never written through) and flagged by verify; a killed run, a removed log and bad
options are named."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from tests.cli import airlock


def _run(log: Path | None, workspace: Path, *command: str) -> subprocess.CompletedProcess[str]:
    """``airlock run [--audit-log LOG] -- COMMAND`` in ``workspace``."""
    given = ("--audit-log", str(log)) if log is not None else ()
    return airlock("run", *given, "--", *(command or ("true",)), cwd=workspace, timeout=120)


@pytest.mark.parametrize("target", ["dangling", "existing"])
def test_run_refuses_a_link_at_its_audit_log(tmp_path: Path, project: Path, target: str) -> None:
    """A link planted in the workspace at the --audit-log path (to a shell start-up file) is
    refused with 125 before the command runs: nothing is created or appended where it points;
    the log is still said to be in the workspace (judged as given, not by where it points)."""
    aliases = tmp_path / "home" / ".bash_aliases"
    if target == "existing":
        aliases.write_text("alias ll='ls -l'\n")
    log = project / "audit.jsonl"
    log.symlink_to(aliases)
    done = _run(log, project, "touch", "ran")
    assert done.returncode == 125, done.stderr
    assert f"--audit-log {log} is a symbolic link (to {aliases})" in done.stderr
    assert f"the audit log {log} is in the workspace" in done.stderr
    assert not (project / "ran").exists()
    if target == "existing":
        assert aliases.read_text() == "alias ll='ls -l'\n"
    else:
        assert not aliases.exists()


def test_run_refuses_a_link_at_the_default_log(project: Path, config_dir: Path) -> None:
    """The default log swapped for a link (here to a file beside it) is refused too."""
    state = config_dir / "airlock"
    state.mkdir()
    (state / "audit.jsonl").symlink_to("other.jsonl")
    done = _run(None, project, "touch", "ran")
    assert done.returncode == 125, done.stderr
    assert f"audit log {state / 'audit.jsonl'} is a symbolic link (to other.jsonl)" in done.stderr
    assert not (state / "other.jsonl").exists()
    assert not (project / "ran").exists()


def test_verify_flags_a_log_swapped_for_a_link_to_another_intact_log(
    project: Path, config_dir: Path
) -> None:
    """A command hides a log kept in the workspace behind a link to the (intact) default log:
    verify of the path says so (exit 1), and the next run naming it refuses it."""
    log = project / "a.jsonl"
    for _ in range(2):
        assert _run(log, project).returncode == 0
    assert _run(None, project).returncode == 0
    default = config_dir / "airlock" / "audit.jsonl"
    log.rename(project / ".a.hidden")
    log.symlink_to(default)
    done = airlock("audit", "verify", str(log))
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert f"{log}: NOT intact: the log path {log} is a symbolic link (to {default})" in done.stderr
    assert _run(log, project).returncode == 125


def test_verify_notes_a_run_killed_before_its_end(tmp_path: Path, project: Path) -> None:
    """airlock killed (-9) while its command runs: the log is intact, and verify names the
    run that has no end record."""
    log = tmp_path / "k.jsonl"
    child = subprocess.Popen(
        [sys.executable, "-m", "airlock", "run", "--audit-log", str(log), "--", "sleep", "60"],
        cwd=project,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_bytes().endswith(b"\n")):
            assert time.monotonic() < deadline and child.poll() is None
            time.sleep(0.05)
    finally:
        os.killpg(child.pid, signal.SIGKILL)  # airlock and its sandbox
        child.wait(30)
    run = orjson.loads(log.read_bytes().splitlines()[0])["run"]
    done = airlock("audit", "verify", str(log))
    assert done.returncode == 0, done.stderr
    assert (
        f"note: run {run} has no end record: it was killed or is still running; connections "
        "open then are not recorded"
    ) in done.stdout


def test_verify_says_a_removed_log_was_removed(tmp_path: Path, project: Path) -> None:
    """The log removed, its heads file kept: verify exits 1 saying so, not "pass the file"."""
    log = tmp_path / "a.jsonl"
    assert _run(log, project).returncode == 0
    log.unlink()
    done = airlock("audit", "verify", str(log))
    assert done.returncode == 1, done.stderr
    assert f"{log}: NOT intact: the log was removed: its heads file " in done.stderr
    assert "holds checkpoints of 2 records" in done.stderr


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("setpriv") is None, reason="root reads any file"
)
def test_json_listing_of_an_unreadable_log_prints_nothing(tmp_path: Path) -> None:
    """An unreadable log: the error alone, no lone "[" on stdout."""
    log = tmp_path / "a.jsonl"
    log.write_text('{"type": "start", "run": "r", "seq": 0}\n')
    log.chmod(0)
    drop = "-dac_override,-dac_read_search"
    prefix = ["setpriv", "--bounding-set", drop, "--inh-caps", drop] if os.geteuid() == 0 else []
    done = subprocess.run(
        [*prefix, sys.executable, "-m", "airlock", "audit", "--json", "--audit-log", str(log)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "Permission denied" in done.stderr, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        pytest.param(
            ("--since", ""),
            "--since is empty: give what to select, or leave it out",
            id="empty_since_is_refused",
        ),
        pytest.param(
            ("verify", "LOG", "--audit-log", "OTHER"),
            "verify LOG --audit-log OTHER: which log?",
            id="verify_file_and_audit_log_are_ambiguous",
        ),
        pytest.param(
            ("rotate", "--to", "MISSING/x.jsonl"),
            "its folder MISSING is not there",
            id="rotate_to_a_missing_folder_names_it",
        ),
    ],
)
def test_bad_options_are_refused_naming_them(
    tmp_path: Path, project: Path, arguments: tuple[str, ...], said: str
) -> None:
    """Each exits 2 naming what is wrong, and leaves the log as it was."""
    log = tmp_path / "a.jsonl"
    assert _run(log, project).returncode == 0
    before = log.read_bytes()
    names = {"LOG": str(log), "OTHER": str(tmp_path / "b.jsonl"), "MISSING": str(tmp_path / "no")}
    for name, value in names.items():
        arguments = tuple(argument.replace(name, value) for argument in arguments)
        said = said.replace(name, value)
    rest = () if "verify" in arguments else ("--audit-log", str(log))
    done = airlock("audit", *arguments, *rest)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert said in done.stderr
    assert log.read_bytes() == before
