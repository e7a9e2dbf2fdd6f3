"""The survey, step by step, as the engine allows it.

1. ``survey_rating`` off: nothing is asked, and nothing touches the network.
2. The session is asked only when its draw falls within the engine's rate (:mod:`.sampler`).
3. The rating is recorded alone: to the collector (state ``on``) with no session id and the day
   only, or (state ``otel_only``) as one OpenTelemetry log record to the user's own collector.
4. The transcript-share follow-up is offered only when ``transcript_share`` is not off and the
   rating was not dismissed; "Don't ask again" is remembered (:mod:`.state`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from airlock.errors import RefusedError, UsageError
from airlock.policy.model import Decisions, FlowId, State
from airlock.survey.answers import Rating
from airlock.survey.sampler import draw, is_sampled


@dataclass(frozen=True, slots=True)
class Plan:
    """Whether a session is asked, and why."""

    session_id: str
    state: State
    rate: float
    draw: float
    asked: bool
    reasons: tuple[str, ...]

    def to_json(self) -> dict[str, object]:
        return {
            "session": self.session_id,
            "state": str(self.state),
            "rate": self.rate,
            "draw": round(self.draw, 6),
            "asked": self.asked,
            "reasons": list(self.reasons),
        }


def plan(decisions: Decisions, session_id: str) -> Plan:
    """Whether ``session_id`` is asked (:class:`RefusedError` when the survey is off)."""
    decision = decisions[FlowId.SURVEY_RATING]
    if decision.state is State.OFF:
        raise RefusedError("the survey is off (survey_rating): " + "; ".join(decision.reasons))
    rate = float(decision.parameters["rate"])
    return Plan(
        session_id,
        decision.state,
        rate,
        draw(session_id),
        is_sampled(session_id, rate),
        decision.reasons,
    )


def offers_share(decisions: Decisions, rating: Rating) -> bool:
    """Whether the transcript-share follow-up comes after ``rating``."""
    if rating is Rating.DISMISS:
        return False
    return decisions[FlowId.TRANSCRIPT_SHARE].state is not State.OFF


def require_destination(decisions: Decisions, collector: str | None) -> None:
    """Raise before anyone is asked when the rating would have nowhere to go.

    Raises:
        UsageError: State ``on`` and no collector configured.
    """
    if decisions[FlowId.SURVEY_RATING].state is State.ON and not collector:
        raise UsageError(
            "no collector is configured for the rating: set AIRLOCK_COLLECTOR_URL or the "
            "settings key airlock.collectorUrl"
        )


def rating_payload(rating: Rating, *, now: datetime, version: str) -> dict[str, str]:
    """What the collector receives: the rating, the day, the client. No session, no transcript."""
    return {"rating": str(rating), "day": now.date().isoformat(), "client": f"airlock/{version}"}


def record_rating(
    decisions: Decisions,
    rating: Rating,
    *,
    collector: str | None,
    now: datetime,
    version: str,
    sleep: Callable[[float], None],
    otel_headers: Mapping[str, str] | None = None,
) -> str:
    """Send the rating where the engine says, alone; return where it went, in words.

    Raises:
        RefusedError: The survey is off.
        UsageError: State ``on`` and no collector configured.
        AirlockError: The rating could not be delivered.
    """
    decision = decisions[FlowId.SURVEY_RATING]
    if decision.state is State.OFF:
        raise RefusedError("the survey is off (survey_rating): " + "; ".join(decision.reasons))
    if decision.state is State.OTEL_ONLY:
        from airlock.survey.otel import emit_rating, logs_endpoint

        endpoint = logs_endpoint(
            str(decision.parameters["otel_endpoint"]),
            str(decision.parameters["otel_endpoint_variable"]),
        )
        emit_rating(
            rating,
            endpoint,
            now_ns=int(now.timestamp() * 1_000_000_000),
            version=version,
            headers=otel_headers,
        )
        return f"your OpenTelemetry collector ({endpoint})"
    require_destination(decisions, collector)
    from airlock.feedback.upload import post_rating

    receipt = post_rating(
        rating_payload(rating, now=now, version=version),
        collector=collector or "",
        key=str(uuid.uuid4()),
        sleep=sleep,
    )
    return receipt.url
