"""Answers remembered by the text they were given for, in bounded memory.

Transcripts repeat themselves (a tool's output is stored in the message and again in the tool
result, a key file is pasted twice), and hostile input repeats one candidate many times; the
scan's questions about a span of text (which rule matches it, whether its value is a secret,
which tokens a rejected assignment holds) are answered once and looked up after. The keys hold
the text itself, so a memo counts the bytes it keeps and forgets everything when it holds too
many answers or too many bytes: its memory stays bounded whatever the input.
"""

from __future__ import annotations

from typing import TypeVar

ANSWERS = 4096
"""Answers a memo holds at most."""
HELD = 1 << 20
"""Bytes of text a memo's keys hold at most."""
LONGEST_TEXT = 1 << 16
"""The longest text remembered (longer: asked again each time)."""

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V]):
    """A dictionary of answers (look them up with ``get``) that forgets everything past
    ``answers`` entries or ``held`` bytes of keys (``put`` is told each key's size)."""

    __slots__ = ("_held", "_limit", "_most")

    def __init__(self, answers: int = ANSWERS, held: int = HELD) -> None:
        super().__init__()
        self._held = 0
        self._most = answers
        self._limit = held

    def put(self, key: K, size: int, answer: V) -> None:
        """Remember ``answer`` for ``key``, whose text is ``size`` bytes (past ``LONGEST_TEXT``, not
        remembered)."""
        if size > LONGEST_TEXT:
            return
        if len(self) >= self._most or self._held + size > self._limit:
            self.clear()
            self._held = 0
        self[key] = answer
        self._held += size

    @property
    def held(self) -> int:
        """Bytes of text the keys hold."""
        return self._held
