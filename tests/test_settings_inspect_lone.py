"""``airlock.inspect`` written as one string, as a walkthrough wrote it: taken as the list of
that one host (``airlock run`` inspects it, as it takes ``denyRead``), and the problem and its
heading say what of the file is in effect."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airlock.cli._common import report_problems
from airlock.settings import load
from tests.conftest import write_json


def test_a_lone_string_is_one_host_and_the_problem_says_it_is_taken(
    project: Path, config_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_json(project / ".claude" / "settings.json", {"airlock": {"inspect": "api.example"}})
    loaded = load(project, dict(os.environ))
    assert loaded.inspect_hosts == ("api.example",)
    [problem] = loaded.problems
    assert problem.key == "airlock.inspect"
    assert problem.expected == (
        "expected a list of strings, but received string: taken as a list of that one entry, "
        "as it can only restrict"
    )
    report_problems(loaded)
    heading = capsys.readouterr().err.splitlines()[0]
    assert heading == (
        "airlock: settings problems (nothing in such a file is in effect except its opt-outs, "
        "its deny/ask rules, its sandbox deny lists and airlock.inspect):"
    )
