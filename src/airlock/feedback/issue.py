"""A GitHub issue for the user to open: title and body redacted, as a link or as text.

The body says what the user wrote and what the bundle holds (its id, files, sizes, what was
redacted by kind: in the files, in the description, in all, the same counts as the manifest); it
never holds the transcript. The link is cut to fit :data:`MAX_URL_LENGTH`
(GitHub refuses longer ``issues/new`` URLs): the body is shortened, with a note, never the title.
"""

from __future__ import annotations

from collections.abc import Mapping
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
        f"- {len(manifest.files)} file(s), {manifest.size} bytes",
        *redaction_lines(manifest),
    ]
    return Issue(title, "\n".join(lines))


def counted(counts: Mapping[str, int]) -> str:
    """``kind ×n, …`` for redaction counts by kind, or ``nothing`` when there are none."""
    return ", ".join(f"{kind} ×{n}" for kind, n in sorted(counts.items())) or "nothing"


def redaction_lines(manifest: Manifest) -> list[str]:
    """What was redacted before leaving, by kind: in the files, in the description, in all.

    The same three counts as the manifest's ``file_redactions``, ``description_redactions``
    and ``redactions`` (the sum of the other two).
    """
    return [
        "- redacted before leaving, by kind:",
        f"  - in the bundle's {len(manifest.files)} file(s): {counted(manifest.file_redactions)}",
        f"  - in the description: {counted(manifest.description_redactions)}",
        f"  - in all (files and description): {counted(manifest.redactions)}",
    ]


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
