"""The sampler: reproducible per session, and honouring the rate over many sessions."""

from __future__ import annotations

import math
import random
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.survey import draw, is_sampled


@given(st.text(min_size=1, max_size=64), st.floats(min_value=0, max_value=1))
def test_same_session_same_answer(session_id: str, rate: float) -> None:
    """A session gets the same draw and the same answer every time."""
    assert draw(session_id) == draw(session_id)
    assert is_sampled(session_id, rate) == is_sampled(session_id, rate)
    assert 0 <= draw(session_id) < 1


@given(st.text(min_size=1, max_size=64), st.floats(min_value=0, max_value=1))
def test_monotone_in_rate(session_id: str, rate: float) -> None:
    """A session asked at some rate is asked at every higher rate; 0 never, 1 always."""
    assert not is_sampled(session_id, 0)
    assert is_sampled(session_id, 1)
    if is_sampled(session_id, rate):
        assert is_sampled(session_id, min(1.0, rate + 0.1))


@pytest.mark.parametrize("rate", [0.005, 0.05, 0.3, 0.9], ids=lambda r: f"rate_{r}")
def test_rate_honoured_over_many_sessions(rate: float) -> None:
    """Over 40,000 sessions (fixed seed) the share asked is within 4.5 sigma of the rate."""
    generator = random.Random(20261123)
    sessions = [str(uuid.UUID(int=generator.getrandbits(128), version=4)) for _ in range(40_000)]
    asked = sum(is_sampled(session, rate) for session in sessions)
    sigma = math.sqrt(len(sessions) * rate * (1 - rate))
    assert abs(asked - len(sessions) * rate) < 4.5 * sigma
