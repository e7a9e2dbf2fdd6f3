"""Settings of the wrong shape where restrictions go, and a --settings file with nothing in it:
each is a problem naming the file and its key; ``airlock run`` takes none of them for no
restriction (:func:`airlock.settings.sandbox.restrictions_not_taken`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airlock.settings import load, validate
from airlock.settings.layers import command_line_layer
from airlock.settings.sandbox import restrictions_not_taken
from tests.conftest import write_json


def _not_taken(project: Path, home: Path, data: dict[str, Any]) -> list[str]:
    write_json(project / ".claude" / "settings.json", data)
    loaded = load(project, {"HOME": str(home)})
    return [str(problem) for problem in restrictions_not_taken(loaded)]


@pytest.mark.parametrize(
    ("data", "key", "holds"),
    [
        ({"sandbox": "x"}, "sandbox", "sandbox.filesystem.denyRead or"),
        ({"sandbox": [{"network": {"deniedDomains": ["e.example"]}}]}, "sandbox", "denyWrite"),
        ({"sandbox": {"network": []}}, "sandbox.network", "sandbox.network.deniedDomains"),
        ({"sandbox": {"filesystem": None}}, "sandbox.filesystem", "filesystem.denyRead"),
        ({"permissions": ["Bash"]}, "permissions", "permissions.deny"),
    ],
)
def test_a_block_on_the_way_to_a_restriction_that_is_no_object_is_not_taken(
    project: Path, home: Path, data: dict[str, Any], key: str, holds: str
) -> None:
    found = _not_taken(project, home, data)
    assert len(found) == 1, found  # said once, for the block
    settings = project / ".claude" / "settings.json"
    assert found[0].startswith(f"{settings}: {key}: expected an object: it may hold")
    assert holds in found[0]


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sandbox": {"network": {"deniedDomains": ["e.example", ""]}}}, "deniedDomains"),
        ({"sandbox": {"filesystem": {"denyRead": "  "}}}, "denyRead"),
        ({"sandbox": {"filesystem": {"denyWrite": [""]}}}, "denyWrite"),
        ({"permissions": {"deny": [""]}}, "permissions.deny"),
    ],
)
def test_an_empty_restriction_is_not_taken(
    project: Path, home: Path, data: dict[str, Any], key: str
) -> None:
    found = _not_taken(project, home, data)
    assert len(found) == 1, found
    assert key in found[0]
    assert "an empty entry names nothing" in found[0]


@pytest.mark.parametrize("name", ["allowedDomains", "deniedDomains"])
def test_an_empty_domain_entry_is_a_problem(name: str) -> None:
    """As ``--allow ''`` and ``--deny ''`` are refused."""
    problems = validate({"sandbox": {"network": {name: ["a.example", " "]}}}, "s.json")
    assert [str(problem) for problem in problems] == [
        f"s.json: sandbox.network.{name}: entry ' ': expected a host such as example.com or "
        f'*.example.com (got ["a.example", " "])'
    ]


def test_an_empty_settings_file_given_is_said_to_be_empty(tmp_path: Path) -> None:
    """It was said not to exist."""
    empty = tmp_path / "empty.json"
    empty.write_text("")
    layer = command_line_layer(str(empty))
    assert [str(problem) for problem in layer.problems] == [
        f"{empty}: --settings file is empty: no settings in it"
    ]
    missing = command_line_layer(str(tmp_path / "missing.json"))
    assert [problem.expected for problem in missing.problems] == ["--settings file does not exist"]


@pytest.mark.parametrize(
    ("entries", "said"),
    [
        ([1, 2], "entry 1 is a number"),
        (["a.example", None], "entry 2 is null"),
        (["a.example", {"host": "b"}], "entry 2 is an object"),
        ("a.example b", None),  # a lone string: said elsewhere, as taken
        ({"a": 1}, "but received object"),
    ],
)
def test_a_list_of_strings_with_another_entry_names_the_entry(
    entries: object, said: str | None
) -> None:
    """It said "expected a list of strings, but received array" of a list."""
    problems = [str(p) for p in validate({"permissions": {"allow": entries}}, "s.json")]
    if said is None:
        assert not any("received array" in problem for problem in problems)
        return
    assert len(problems) == 1 and said in problems[0], problems
    assert "received array" not in problems[0]
