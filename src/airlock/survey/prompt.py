"""The interactive survey in a terminal (rich): one key per answer, nothing else."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from airlock.errors import UsageError
from airlock.survey.answers import QUESTION, SHARE_QUESTION, Rating, ShareAnswer

if TYPE_CHECKING:
    from rich.console import Console

A = TypeVar("A", Rating, ShareAnswer)

RATING_KEYS = {"1": Rating.BAD, "2": Rating.FINE, "3": Rating.GOOD, "0": Rating.DISMISS}
SHARE_KEYS = {"1": ShareAnswer.YES, "2": ShareAnswer.NO, "3": ShareAnswer.NEVER}


def ask_rating(console: Console) -> Rating:
    """Ask "How is Claude doing this session?" and return the answer."""
    return _ask(console, QUESTION, RATING_KEYS)


def ask_share(console: Console) -> ShareAnswer:
    """Ask the transcript-share follow-up and return the answer."""
    return _ask(console, SHARE_QUESTION, SHARE_KEYS)


def _ask(console: Console, question: str, keys: dict[str, A]) -> A:
    from rich.prompt import Prompt

    options = "   ".join(f"[bold]{key}[/]: {answer.label}" for key, answer in keys.items())
    console.print(f"[bold cyan]●[/] {question}")
    console.print(f"  {options}")
    by_name: dict[str, A] = {answer.value: answer for answer in keys.values()}
    choices = [*keys, *by_name]
    try:
        key = Prompt.ask("  ", console=console, choices=choices, show_choices=False)
    except EOFError:
        raise UsageError(
            "no answer: the terminal closed its input (answer with --rating and --share)"
        ) from None
    return keys.get(key) or by_name[key]
