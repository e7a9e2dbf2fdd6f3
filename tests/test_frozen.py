"""``@frozen`` value classes: every field set from its own argument, and the decorator's guards."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import airlock
from airlock._frozen import FrozenInstanceError, frozen


def _frozen_classes() -> list[type]:
    found: dict[str, type] = {}
    for module_info in pkgutil.walk_packages(airlock.__path__, "airlock."):
        if module_info.name.endswith("__main__"):
            continue  # running it is the command line
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            if inspect.isclass(value) and "_frozen_names" in value.__dict__:
                found[f"{value.__module__}.{value.__qualname__}"] = value
    return [found[name] for name in sorted(found)]


CLASSES = _frozen_classes()


def test_the_value_classes_are_found() -> None:
    """Every class the source decorates with ``@frozen`` is among the classes checked."""
    import re

    source = Path(airlock.__file__).parent
    written = {
        name
        for path in source.rglob("*.py")
        for name in re.findall(r"^@frozen\nclass (\w+)", path.read_text(), re.MULTILINE)
    }
    assert {cls.__qualname__ for cls in CLASSES} == written


@pytest.mark.parametrize("cls", CLASSES, ids=lambda cls: f"{cls.__module__}.{cls.__qualname__}")
def test_each_field_takes_its_own_argument(cls: type) -> None:
    """By keyword and by position, every field holds exactly what was given for it; with
    defaults only, every field is set, and mutable defaults are not shared."""
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    names = [parameter.name for parameter in parameters]
    assert tuple(names) == cls.__match_args__  # type: ignore[attr-defined]
    given = {name: object() for name in names}
    for value in (cls(**given), cls(*given.values())):
        for name in names:
            assert getattr(value, name) is given[name], name
    required = {p.name: object() for p in parameters if p.default is inspect.Parameter.empty}
    first, second = cls(**required), cls(**required)
    for name in names:
        mine, theirs = getattr(first, name), getattr(second, name)
        if isinstance(mine, dict | list | set):
            assert mine is not theirs, f"{name}: a mutable default shared between values"
    with pytest.raises(FrozenInstanceError):
        first.__setattr__(names[0], None)


def test_an_init_that_forgets_a_field_is_refused() -> None:
    with pytest.raises(TypeError, match="__init__ must take the fields"):

        @frozen
        class Forgets:
            __slots__ = ("a", "b")
            a: int
            b: int

            def __init__(self, a: int) -> None:
                object.__setattr__(self, "a", a)


def test_a_class_of_its_own_equality_is_refused() -> None:
    with pytest.raises(TypeError, match="__eq__"):

        @frozen
        class OwnEquality:
            __slots__ = ("a",)
            a: int

            def __init__(self, a: int) -> None:
                object.__setattr__(self, "a", a)

            def __eq__(self, other: object) -> bool:
                return True


def test_a_value_holding_itself_has_a_repr() -> None:
    """A value whose field holds the value itself shows it as "..." rather than recursing."""

    @frozen
    class Holder:
        __slots__ = ("items",)
        items: dict[str, object]

        def __init__(self, items: dict[str, object]) -> None:
            object.__setattr__(self, "items", items)

    items: dict[str, object] = {}
    value = Holder(items)
    items["self"] = value
    assert "..." in repr(value)
