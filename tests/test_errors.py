"""The error hierarchy: every error class airlock defines lives in ``airlock.errors`` and is
drawn in its docstring where it really sits."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import airlock
from airlock import errors


def _modules() -> list[str]:
    return sorted(
        info.name
        for info in pkgutil.walk_packages(airlock.__path__, "airlock.")
        if not info.name.endswith("__main__")  # running it is the command line
        and info.name != errors.__name__
    )


def _drawn() -> dict[str, str]:
    """Class name -> parent name, read from the tree in the module docstring."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in (errors.__doc__ or "").splitlines():
        found = re.match(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Z]\w+)", line)
        if found is None or not found["name"].endswith(("Error", "Refused")):
            continue
        depth = len(found["indent"])
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[found["name"]] = stack[-1][1]
        stack.append((depth, found["name"]))
    return parents


DEFINED = {
    name: value
    for name, value in vars(errors).items()
    if inspect.isclass(value)
    and issubclass(value, BaseException)
    and value.__module__ == errors.__name__
}


@pytest.mark.parametrize("module", _modules())
def test_errors_are_defined_in_the_errors_module(module: str) -> None:
    """A module defines no AirlockError of its own (it may re-export one); an exception that
    is only control flow inside a module, caught there, is not an AirlockError."""
    imported = importlib.import_module(module)
    own = [
        name
        for name, value in vars(imported).items()
        if inspect.isclass(value)
        and issubclass(value, errors.AirlockError)
        and value.__module__ == module
    ]
    assert own == [], f"{module} defines {own}: move them to airlock.errors and draw them there"


def test_the_tree_in_the_docstring_is_the_real_one() -> None:
    """Each class is drawn under its real base, and every class is drawn."""
    drawn = _drawn()
    assert set(drawn) | {"AirlockError"} == set(DEFINED)
    for name, parent in drawn.items():
        assert DEFINED[name].__bases__[0].__name__ == parent, name


def test_every_error_is_an_airlock_error_with_an_exit_code() -> None:
    """Every class derives from AirlockError; refusals exit 3, the rest 2."""
    for name, cls in DEFINED.items():
        assert issubclass(cls, errors.AirlockError), name
        expected = 3 if issubclass(cls, errors.RefusedError) else 2
        assert cls.exit_code == expected, name


@pytest.mark.parametrize(
    ("where", "name"),
    [
        ("airlock.feedback", "FlowRefused"),
        ("airlock.feedback.refusal", "FlowRefused"),
        ("airlock.sessions", "BusyError"),
        ("airlock.policy.hosts", "HostError"),
    ],
)
def test_moved_errors_keep_their_import_paths(where: str, name: str) -> None:
    """An error that moved into airlock.errors is still importable where it was."""
    assert getattr(importlib.import_module(where), name) is getattr(errors, name)
