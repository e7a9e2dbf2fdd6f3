"""Settings files whose JSON is ambiguous: a key written twice in one object, ``NaN`` and
``Infinity``, half of a UTF-16 surrogate pair alone. Each is a problem naming the file and the
key, and the file cannot be read (none of it is in effect): ``airlock run`` refuses to start
(125, nothing run) as for any settings file it cannot read, since what the file would take
away cannot be told; ``airlock flows`` says so, and a managed one fails closed."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from airlock.settings import load
from tests.cli import airlock

TWICE = "written more than once in one object"


def _run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, timeout=60)


def _project_file(project: Path, text: str) -> Path:
    path = project / ".claude" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_a_key_written_twice_stops_the_run(tmp_path: Path, home: Path, project: Path) -> None:
    """The second ``sandbox`` would replace the first, and its denyRead with it: the secret
    it names would be read inside. Nothing runs; the file and the key are named."""
    (home / "sec").mkdir()
    (home / "sec" / "s.txt").write_text("the-secret-value\n")
    settings = _project_file(
        project,
        '{"sandbox": {"filesystem": {"denyRead": ["~/sec"]}}, "sandbox": {"enabled": true}}',
    )
    refused = _run(tmp_path, "--", "sh", "-c", "cat ~/sec/s.txt; touch ran")
    assert refused.returncode == 125, refused.stderr
    assert "the-secret-value" not in refused.stdout
    assert not (project / "ran").exists()
    assert f"{settings}: sandbox: {TWICE}" in refused.stderr
    assert "nothing ran" in refused.stderr


def test_flows_names_a_key_written_twice(config_dir: Path) -> None:
    """The opt-out of the first ``env`` would be lost without a word: it is a problem of the
    file, on stderr and in ``--json``."""
    settings = config_dir / "settings.json"
    settings.write_text('{"env": {"DISABLE_TELEMETRY": "1"}, "env": {}}')
    shown = airlock("flows", "--json")
    assert shown.returncode == 0, shown.stderr
    assert f"{settings}: env: {TWICE}" in shown.stderr
    assert "could not be read: none of it is in effect" in shown.stderr
    [problem] = json.loads(shown.stdout)["settings_problems"]
    assert (problem["path"], problem["key"]) == (str(settings), "env")


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ('{"permissions": {"deny": ["Bash(rm:*)"], "deny": []}}', ["permissions.deny"]),
        (  # the same key, spelt with an escape
            '{"sandbox": {"network": {"deniedDomains": ["e.example"]}}, "sandb\\u006fx": {}}',
            ["sandbox"],
        ),
        (  # deep in a list, and twice with the same value: one value is still dropped
            '{"hooks": {"PreToolUse": [{"matcher": "A", "matcher": "B"}]}, "a": 1, "a": 1}',
            ["a", "hooks.PreToolUse[0].matcher"],
        ),
    ],
    ids=["restriction", "escaped_spelling", "in_a_list_and_same_value"],
)
def test_every_key_written_twice_is_named_and_the_file_is_not_read(
    project: Path, text: str, keys: list[str]
) -> None:
    settings = _project_file(project, text)
    loaded = load(project, dict(os.environ))
    [layer] = loaded.layers
    assert not layer.readable and layer.data == {}
    assert [(p.path, p.key) for p in loaded.problems] == [(str(settings), key) for key in keys]
    assert all(p.expected.startswith(TWICE) for p in loaded.problems)


def test_keys_that_differ_in_case_or_unicode_form_are_not_written_twice(project: Path) -> None:
    """As the agent reads them: ``Sandbox`` is not ``sandbox``, ``é`` composed is not ``é``
    decomposed. Only the key written twice is named; the others are not merged."""
    settings = _project_file(
        project, '{"Sandbox": {}, "sandbox": {}, "\\u00e9": 1, "e\\u0301": 2, "env": {}, "env": {}}'
    )
    loaded = load(project, dict(os.environ))
    assert [(p.path, p.key) for p in loaded.problems] == [(str(settings), "env")]


def test_managed_settings_with_a_key_written_twice_fail_closed(managed_dir: Path) -> None:
    drop_in = managed_dir / "managed-settings.d" / "10-net.json"
    drop_in.parent.mkdir(parents=True)
    drop_in.write_text('{"env": {"DISABLE_TELEMETRY": "1"}, "env": {}}')
    loaded = load(Path.cwd(), dict(os.environ))
    assert loaded.managed_invalid
    assert [(p.path, p.key) for p in loaded.problems] == [(str(drop_in), "env")]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(project: Path, literal: str) -> None:
    """Python's reader takes them, the agent's does not: the file is not read, and the place
    is named (a string holding the word before it is no match)."""
    settings = _project_file(
        project, f'{{\n  "theme": "NaN -Infinity",\n  "feedbackSurveyRate": {literal}\n}}'
    )
    loaded = load(project, dict(os.environ))
    assert not loaded.layers[0].readable
    [problem] = map(str, loaded.problems)
    assert problem == (
        f"{settings}: not valid JSON (line 3 column 25: {literal} is not JSON: write a number, "
        "or a string)"
    )


def test_half_a_surrogate_pair_in_flows_is_a_problem_not_a_crash(project: Path) -> None:
    """``"\\ud800"`` is no character: it was shown in a problem that ``--json`` could not
    write (a traceback). Now the file is not read, and the key is named with the escape."""
    settings = _project_file(project, '{"cleanupPeriodDays": "\\ud800", "env": {"\\udcff": "1"}}')
    shown = airlock("flows", "--json")
    assert shown.returncode == 0, shown.stderr
    problems = json.loads(shown.stdout)["settings_problems"]
    assert [(p["path"], p["key"]) for p in problems] == [
        (str(settings), "cleanupPeriodDays"),
        (str(settings), "env.\\udcff"),
    ]
    assert "half of a UTF-16 surrogate pair" in problems[0]["expected"]


def test_only_a_half_alone_is_named(project: Path) -> None:
    """Whole pairs (one character each, in either case) and an escaped backslash before
    ``ud800`` (text) are read; the halves alone are named, each where it is."""
    settings = _project_file(
        project,
        '{"a": "\\ud83d\\ude00", "b": ["\\uD83D\\uDE00", "C:\\\\ud800"],'
        ' "c": ["\\\\ud83d\\ude00"], "d": "\\ude00\\ud83d"}',
    )
    loaded = load(project, dict(os.environ))
    assert [(p.path, p.key) for p in loaded.problems] == [
        (str(settings), "d"),
        (str(settings), "c[0]"),
    ]


def test_half_a_surrogate_pair_in_a_deny_read_stops_the_run(tmp_path: Path, project: Path) -> None:
    """A ``denyRead`` of ``~/\\ud800`` names no path: it was skipped without a word."""
    settings = _project_file(project, '{"sandbox": {"filesystem": {"denyRead": ["~/\\ud800"]}}}')
    refused = _run(tmp_path, "--", "touch", "ran")
    assert refused.returncode == 125, refused.stderr
    assert not (project / "ran").exists()
    assert f"{settings}: sandbox.filesystem.denyRead[0]: the string holds half" in refused.stderr


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"a": 1 // why\n}', "line 1 column 9: Expecting ',' delimiter: comments are not JSON"),
        ('{"a": [1,\n ]}', "line 2 column 2: Expecting value: a comma before a closing bracket"),
    ],
    ids=["comment", "trailing_comma"],
)
def test_a_comment_or_a_trailing_comma_is_said_so(project: Path, text: str, said: str) -> None:
    settings = _project_file(project, text)
    [problem] = map(str, load(project, dict(os.environ)).problems)
    assert problem.startswith(f"{settings}: not valid JSON ({said}"), problem


def test_an_integer_too_long_is_said_without_python_advice(project: Path) -> None:
    """A number of 5,000 digits: named with its length, without telling the user to call
    ``sys.set_int_max_str_digits()``, which is not theirs to call."""
    settings = _project_file(project, '{"cleanupPeriodDays": ' + "1" * 5000 + "}")
    [problem] = map(str, load(project, dict(os.environ)).problems)
    assert problem == (
        f"{settings}: not valid JSON (Exceeds the limit (4300 digits) for integer string "
        "conversion: value has 5000 digits)"
    )
