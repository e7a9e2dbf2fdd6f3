"""The web fetch guard's and the collector's public names are what their ``__all__`` say."""

from __future__ import annotations

import pytest

import airlock.collector
import airlock.webfetch


@pytest.mark.parametrize("module", [airlock.webfetch, airlock.collector], ids=lambda m: m.__name__)
def test_every_exported_name_exists(module: object) -> None:
    """Each name in __all__ can be imported from the package."""
    for name in module.__all__:  # type: ignore[attr-defined]
        assert hasattr(module, name), name
