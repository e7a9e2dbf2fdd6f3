"""The run's ``start`` record says what a walkthrough could not tell from the log: the git
gateway's repositories as given (``:ro`` kept) and its code host (inspection's hosts and
``--secrets``: tests/integration/test_run_walkthrough_inspect_refusals.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli import airlock
from tests.egress.codehost import TOKEN


def _start(tmp_path: Path, project: Path, *options: str) -> dict[str, object]:
    log = tmp_path / "audit.jsonl"
    project.mkdir(exist_ok=True)
    done = airlock(
        "run", "--audit-log", str(log), *options, "--", "true",
        env={"GH_TOKEN": TOKEN}, cwd=project, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [start] = [r for r in map(json.loads, log.read_text().splitlines()) if r["type"] == "start"]
    assert isinstance(start, dict)
    return start


def test_the_start_record_names_the_repositories_and_the_code_host(
    tmp_path: Path, project: Path
) -> None:
    start = _start(
        tmp_path, project,
        "--repo", "octo/app", "--repo", "octo/docs:ro", "--git-upstream", "http://127.0.0.1:9",
    )  # fmt: skip
    assert start["repos"] == ["octo/app", "octo/docs:ro"]
    assert start["git_upstream"] == "http://127.0.0.1:9"
    assert (start["inspect"], start["secrets"]) == ([], None)
    assert TOKEN not in json.dumps(start)


def test_without_a_repository_there_is_no_code_host(tmp_path: Path, project: Path) -> None:
    start = _start(tmp_path, project)
    assert (start["repos"], start["git_upstream"]) == ([], None)
