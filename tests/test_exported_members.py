"""The public API is what ``__all__`` says: pinned for ``airlock``, consistent in every package."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

import airlock

# fmt: off
PUBLIC = [
    "AirlockError", "BusyError", "CollectorSettings", "Decision", "Decisions",
    "DestinationRefused", "FlowId", "FlowRefused", "HostError", "Loaded", "Problem", "Provider",
    "RedactionSettings", "RefusedError", "SettingsError", "State", "UnsafePathError",
    "UsageError", "__version__", "decide", "load_settings",
]
# fmt: on
"""The public API of ``airlock``: a change here is a change of the library's contract."""


def test_the_public_api_is_pinned() -> None:
    """airlock.__all__ is exactly the pinned list, in order."""
    assert airlock.__all__ == PUBLIC


def test_every_public_member_is_exported() -> None:
    """Every public name the package defines is in __all__, and every name there exists."""
    members = {
        name
        for name, value in vars(airlock).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert members | {"__version__"} == set(airlock.__all__)
    for name in airlock.__all__:
        assert hasattr(airlock, name), name


def _packages() -> list[str]:
    return sorted(
        info.name for info in pkgutil.walk_packages(airlock.__path__, "airlock.") if info.ispkg
    )


@pytest.mark.parametrize("package", _packages())
def test_each_package_exports_what_it_has(package: str) -> None:
    """A package's __all__ names only members that exist, each once, none private."""
    module = importlib.import_module(package)
    exported = getattr(module, "__all__", [])
    assert len(exported) == len(set(exported)), package
    for name in exported:
        assert hasattr(module, name), f"{package}.{name}"
        assert not name.startswith("_") or name == "__version__", f"{package}.{name}"
