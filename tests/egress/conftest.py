"""The egress tests' origin: one per test that asks for ``site``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.egress.origin import _Site, origin


@pytest.fixture
def site() -> Iterator[_Site]:
    with origin() as served:
        yield served
