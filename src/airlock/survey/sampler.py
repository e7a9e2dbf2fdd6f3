"""Which sessions the survey asks: a draw reproducible per session. PURE: no I/O, no clock.

Each session id hashes (SHA-256) to a number in [0, 1); the session is asked when that number
is below the rate the engine gives (``decide(ctx)[FlowId.SURVEY_RATING].parameters["rate"]``).
The same session always gets the same answer, on any machine, and over many sessions the share
asked converges to the rate.
"""

from __future__ import annotations

import hashlib

SALT = b"airlock-survey-sample\x00"
"""Keeps this draw independent of any other use of a hash of the session id."""


def draw(session_id: str) -> float:
    """The session's fixed number in [0, 1)."""
    digest = hashlib.sha256(SALT + session_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_sampled(session_id: str, rate: float) -> bool:
    """Whether the survey asks ``session_id`` at ``rate`` (0 never, 1 always).

    Args:
        session_id: The session's id.
        rate: The chance a session is asked, from the engine's survey decision.

    Returns:
        ``True`` when the session falls within the rate.
    """
    if rate <= 0:
        return False
    return draw(session_id) < rate
