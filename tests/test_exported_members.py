"""The public API is what ``airlock.__all__`` says, and nothing there is missing."""

import airlock


def test_every_exported_name_exists() -> None:
    """Each name in __all__ can be imported from the package."""
    for name in airlock.__all__:
        assert hasattr(airlock, name), name
