"""The session survey: "How is Claude doing this session?", as the engine allows it.

    >>> from airlock.survey import plan, record_rating, Rating
    >>> plan(decisions, session_id).asked          # reproducible per session
    >>> record_rating(decisions, Rating.GOOD, collector=url, now=now, version=v, sleep=sleep)

The sampler is pure (:mod:`.sampler`); the prompt uses rich (:mod:`.prompt`); ``otel_only``
ratings go through OpenTelemetry's SDK (:mod:`.otel`); "Don't ask again" is kept in
``<config dir>/airlock/state.json`` (:mod:`.state`).
"""

from airlock.survey.answers import QUESTION, SHARE_QUESTION, Rating, ShareAnswer
from airlock.survey.flow import (
    NO_COLLECTOR,
    Plan,
    offers_share,
    plan,
    rating_has_destination,
    rating_payload,
    record_rating,
    require_destination,
)
from airlock.survey.sampler import draw, is_sampled
from airlock.survey.state import read_state, remember_declined, state_path

__all__ = [
    "NO_COLLECTOR",
    "QUESTION",
    "SHARE_QUESTION",
    "Plan",
    "Rating",
    "ShareAnswer",
    "draw",
    "is_sampled",
    "offers_share",
    "plan",
    "rating_has_destination",
    "rating_payload",
    "read_state",
    "record_rating",
    "remember_declined",
    "require_destination",
    "state_path",
]
