"""A GitHub issue for the user to open: title and body redacted, as a link or as text.

The body says what the user wrote and what the bundle holds (its id, files, sizes, what was
redacted by kind); it never holds the transcript. The link is cut to fit :data:`MAX_URL_LENGTH`
(GitHub refuses longer ``issues/new`` URLs): the body is shortened, with a note, never the title.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlencode

from airlock.feedback.manifest import Manifest

NEW_ISSUE_URL = "https://github.com/anthropics/claude-code/issues/new"
MAX_URL_LENGTH = 8000
MAX_TITLE = 80
CUT_NOTE = "\n\n… (shortened to fit a link; run `airlock feedback --issue text` for the whole text)"


@dataclass(frozen=True, slots=True)
class Issue:
    """A redacted issue: a title and a Markdown body."""

    title: str
    body: str

    def to_text(self) -> str:
        return f"{self.title}\n\n{self.body}\n"


def compose_issue(description: str, manifest: Manifest, *, delivered: str) -> Issue:
    """The issue for a bundle; ``description`` must already be redacted.

    Args:
        description: The user's words, redacted.
        manifest: The bundle's manifest.
        delivered: Where the bundle went, in words (a receipt or an archive path).

    Returns:
        The issue's title and body.
    """
    first = description.strip().splitlines()[0] if description.strip() else "Feedback"
    title = first if len(first) <= MAX_TITLE else first[: MAX_TITLE - 1] + "…"
    lines = [
        "## Description",
        "",
        description.strip() or "(none given)",
        "",
        "## Environment",
        "",
        f"- airlock {manifest.airlock_version}",
        f"- feedback bundle `{manifest.bundle_id}` ({delivered})",
        f"- {len(manifest.files)} file(s), {manifest.size} bytes, redacted before leaving: "
        + (", ".join(f"{kind} ×{n}" for kind, n in manifest.redactions.items()) or "nothing found"),
    ]
    return Issue(title, "\n".join(lines))


def issue_link(issue: Issue, *, base: str = NEW_ISSUE_URL, limit: int = MAX_URL_LENGTH) -> str:
    """The ``issues/new`` link prefilled with ``issue``, at most ``limit`` characters long."""

    def link(body: str) -> str:
        return f"{base}?{urlencode({'title': issue.title, 'body': body})}"

    whole = link(issue.body)
    if len(whole) <= limit:
        return whole
    low, high = 0, len(issue.body)
    while low < high:  # the longest prefix of the body that fits, found by bisection
        middle = (low + high + 1) // 2
        if len(link(issue.body[:middle] + CUT_NOTE)) <= limit:
            low = middle
        else:
            high = middle - 1
    return link(issue.body[:low] + CUT_NOTE)
