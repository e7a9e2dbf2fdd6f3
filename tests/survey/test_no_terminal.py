"""``airlock survey`` and ``airlock feedback`` with stdin closed, empty or an idle pipe: never wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.feedback.servers import collector
from tests.feedback.sessionfiles import make_session
from tests.feedback.test_cli import SID
from tests.survey.settings import ask_every_session

STDINS = ["closed", "devnull", "idle_pipe"]


def run_without_terminal(args: list[str], stdin: str) -> subprocess.CompletedProcess[str]:
    """Run ``airlock ARGS`` with the given stdin; fail the test if it waits more than 60 s."""
    command = [sys.executable, "-m", "airlock", *args]
    writer = None
    if stdin == "closed":
        command = ["sh", "-c", 'exec "$@" <&-', "sh", *command]
        source: int | None = None
    elif stdin == "devnull":
        source = subprocess.DEVNULL
    else:  # a pipe kept open and never written: reading it would wait for ever
        source, writer = os.pipe()
    try:
        child = subprocess.Popen(
            command, stdin=source, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            out, err = child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate(timeout=10)
            pytest.fail(f"airlock {' '.join(args)} waited on stdin ({stdin})")
    finally:
        if writer is not None:
            os.close(writer)
            os.close(source)  # type: ignore[arg-type]
    return subprocess.CompletedProcess(command, child.returncode, out, err)


@pytest.mark.parametrize("stdin", STDINS)
def test_survey_without_rating_exits_at_once(config_dir: Path, project: Path, stdin: str) -> None:
    """No terminal and no --rating: exit 2 telling how to answer, nothing sent."""
    make_session(config_dir, SID)
    with collector() as server:
        ask_every_session(project, server.url)
        result = run_without_terminal(["survey", SID], stdin)
    assert result.returncode == 2, result.stderr
    assert "--rating" in result.stderr and "Traceback" not in result.stderr
    assert server.attempts == []


@pytest.mark.parametrize("stdin", STDINS)
def test_survey_with_rating_asks_no_follow_up(config_dir: Path, project: Path, stdin: str) -> None:
    """No terminal, --rating only: the rating is sent and the follow-up is not waited for."""
    make_session(config_dir, SID)
    with collector() as server:
        ask_every_session(project, server.url)
        result = run_without_terminal(["survey", SID, "--rating", "fine", "--json"], stdin)
    assert result.returncode == 0, result.stderr
    assert "share" not in json.loads(result.stdout)
    assert len(server.stored) == 1


@pytest.mark.parametrize("stdin", STDINS)
def test_feedback_never_reads_stdin(config_dir: Path, stdin: str) -> None:
    """airlock feedback runs to the end with any stdin."""
    make_session(config_dir, SID)
    result = run_without_terminal(["feedback", SID, "--local", "--json"], stdin)
    assert result.returncode == 0, result.stderr
    assert Path(json.loads(result.stdout)["delivered"]["path"]).is_file()
