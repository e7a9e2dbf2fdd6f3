"""Words for messages that several parts of airlock build alike."""

from __future__ import annotations


def with_article(noun: str) -> str:
    """``noun`` after its indefinite article, told by its first letter: ``a loopback``, ``an
    object``, ``an own`` (the nouns these messages use say nothing harder)."""
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"
