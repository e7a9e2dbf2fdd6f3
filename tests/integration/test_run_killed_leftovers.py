"""``airlock run`` killed with SIGKILL: what it left in the temporary folder with --inspect (the
CA bundle's folder) and --repo (the git gateway socket's), and the placeholders of a run whose
process id another process took over, are removed by the next run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.cli import airlock
from tests.integration.started import start_run

TOKEN = "ghp_" + "LeftOverTokenAbcdefghijklmnopqrstuvwx"


def _killed_run(tmp_path: Path, *options: str, env: dict[str, str] | None = None) -> None:
    """``airlock run OPTIONS`` (its temporary folder ``tmp_path``), killed with SIGKILL while
    its command runs."""
    process = subprocess.Popen(
        [
            sys.executable, "-m", "airlock", "run", "--audit-log", str(tmp_path / "a.jsonl"),
            *options, "--", "sh", "-c", "echo started; exec sleep 60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TMPDIR": str(tmp_path), **(env or {})},
    )  # fmt: skip
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "started"
    process.kill()
    process.wait()
    process.stdout.close()
    time.sleep(0.5)  # bubblewrap dies with airlock; its pid must be gone for the sweep


def _next_run(tmp_path: Path) -> None:
    done = airlock(
        "run", "--audit-log", str(tmp_path / "b.jsonl"), "--", "true",
        env={"TMPDIR": str(tmp_path)}, timeout=180,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("options", "env", "folder", "entry"),
    [
        pytest.param(("--inspect", "example.com"), {}, "airlock-ca-", "ca-bundle.pem", id="ca"),
        pytest.param(
            ("--repo", "octo/widgets"),
            {"GH_TOKEN": TOKEN},
            "airlock-git-gateway-",
            "gateway.sock",
            id="gateway",
        ),
    ],
)
def test_the_next_run_removes_a_killed_runs_folders(
    tmp_path: Path,
    project: Path,
    home: Path,
    options: tuple[str, ...],
    env: dict[str, str],
    folder: str,
    entry: str,
) -> None:
    """The CA bundle's folder (--inspect) and the gateway socket's (--repo) a killed run left
    in the temporary folder are gone after the next run, their ledgers too."""
    _killed_run(tmp_path, *options, env=env)
    [left] = tmp_path.glob(f"{folder}*")
    assert (left / entry).exists()
    _next_run(tmp_path)
    assert not left.exists()
    assert not list(tmp_path.glob("airlock-run-*"))
    ledgers = home / ".claude" / "airlock" / "placeholders"
    assert not list(ledgers.glob("*.json"))


def test_a_folder_like_a_runs_with_more_in_it_is_left(tmp_path: Path, home: Path) -> None:
    """A ledger naming a folder so named but holding what no run's does removes nothing."""
    ledgers = home / ".claude" / "airlock" / "placeholders"
    ledgers.mkdir(parents=True)
    own = tmp_path / "airlock-ca-mine"
    own.mkdir()
    (own / "notes.txt").write_text("mine")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    ledger = ledgers / "forged.json"
    ledger.write_text(json.dumps({"pid": int(gone.stdout), "paths": [], "scratch": str(own)}))
    _next_run(tmp_path)
    assert (own / "notes.txt").read_text() == "mine"
    assert not ledger.exists()


def test_placeholders_of_a_run_whose_process_id_was_taken_over_are_removed(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """The killed run's id now names another process (reuse, a reboot): the next run removes
    its empty .git/commondir, and git works again."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    process = start_run(tmp_path, "echo started; exec sleep 60")
    process.kill()
    process.wait()
    process.stdout.close()  # type: ignore[union-attr]
    time.sleep(0.5)
    commondir = project / ".git" / "commondir"
    assert commondir.exists() and commondir.stat().st_size == 0
    [ledger] = (home / ".claude" / "airlock" / "placeholders").glob("*.json")
    other = subprocess.Popen(["sleep", "60"])
    try:
        data = json.loads(ledger.read_text())
        data["pid"] = other.pid  # the id taken over by a process that runs on
        ledger.write_text(json.dumps(data))
        _next_run(tmp_path)
    finally:
        other.kill()
        other.wait()
    assert not commondir.exists()
    assert not ledger.exists()
    fixed = subprocess.run(["git", "status"], cwd=project, capture_output=True, text=True)
    assert fixed.returncode == 0, fixed.stderr
