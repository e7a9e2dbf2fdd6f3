"""The survey, step by step, as the engine allows it.

1. ``survey_rating`` off: nothing is asked, and nothing touches the network.
2. The session is asked only when its draw falls within the engine's rate (:mod:`.sampler`).
3. The rating is recorded alone: to the collector (state ``on``) with no session id and the day
   only, or (state ``otel_only``) as one OpenTelemetry log record to the user's own collector.
   With no collector configured the rating is not sent (:data:`NO_COLLECTOR` says so), and the
   survey goes on only when the follow-up can be kept locally (``local_archive``).
4. The transcript-share follow-up is offered only when ``transcript_share`` is not off and the
   rating was not dismissed; "Don't ask again" is remembered (:mod:`.state`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from airlock.errors import UsageError
from airlock.feedback.refusal import refuse_if_off
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
    refuse_if_off(decision, "the survey")
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


NO_COLLECTOR = (
    "rating not sent: no collector configured; set AIRLOCK_COLLECTOR_URL or airlock.collectorUrl"
)


def rating_has_destination(decisions: Decisions, collector: str | None) -> bool:
    """Whether the rating can go anywhere: ``otel_only`` (the user's endpoint) or a collector."""
    return decisions[FlowId.SURVEY_RATING].state is State.OTEL_ONLY or bool(collector)


def require_destination(decisions: Decisions, collector: str | None) -> None:
    """Raise before anyone is asked when neither the rating nor the follow-up can go anywhere.

    With no collector the rating is not sent, but the survey still goes on when the engine's
    ``transcript_share`` is ``local_archive``: that follow-up needs no collector.

    Raises:
        UsageError: No destination for the rating, and no local archive for the follow-up.
    """
    if rating_has_destination(decisions, collector):
        return
    if decisions[FlowId.TRANSCRIPT_SHARE].state is not State.LOCAL_ARCHIVE:
        raise UsageError(NO_COLLECTOR)


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
    refuse_if_off(decision, "the survey")
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
    if not collector:
        raise UsageError(NO_COLLECTOR)
    from airlock.feedback.upload import post_rating

    receipt = post_rating(
        rating_payload(rating, now=now, version=version),
        collector=collector or "",
        key=str(uuid.uuid4()),
        sleep=sleep,
    )
    return receipt.url
