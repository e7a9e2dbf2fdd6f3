"""What the survey asks and what can be answered."""

from __future__ import annotations

from enum import StrEnum

QUESTION = "How is Claude doing this session?"
SHARE_QUESTION = (
    "Can we look at this session's transcript to improve? Known secrets are redacted first."
)


class Rating(StrEnum):
    """An answer to the rating question."""

    GOOD = "good"
    FINE = "fine"
    BAD = "bad"
    DISMISS = "dismiss"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class ShareAnswer(StrEnum):
    """An answer to the transcript-share follow-up."""

    YES = "yes"
    NO = "no"
    NEVER = "never"
    """Don't ask again: remembered in the config directory."""

    @property
    def label(self) -> str:
        return "Don't ask again" if self is ShareAnswer.NEVER else self.value.capitalize()
