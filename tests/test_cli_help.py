"""Every command's ``--help`` fits the terminal: its prose and lists are filled to the width,
what is laid out by hand (a table, an example) kept as written."""

from __future__ import annotations

import pytest

from airlock.cli.main import refill
from tests.cli import airlock

COMMANDS = ["run", "audit", "flows", "sessions", "feedback", "survey", "fetch", "redact", "serve"]


@pytest.mark.parametrize("command", COMMANDS)
def test_help_prose_fits_an_80_column_terminal(command: str) -> None:
    done = airlock(command, "--help", env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    long = [line for line in done.stdout.splitlines() if len(line) > 80]
    # only lines laid out by hand (indented: a table's rows, an example) may be wider
    assert all(line.startswith("  ") for line in long), long


def test_refill_joins_and_wraps_paragraphs_and_items_and_keeps_the_rest() -> None:
    text = (
        "A paragraph written\nover two lines.\n\n"
        "- an item that goes\n  on here;\n"
        "2. a numbered one\n   going on\n\n"
        "  airlock run -- claude     # an example, kept\n"
    )
    assert refill(text, 30).splitlines() == [
        "A paragraph written over two",
        "lines.",
        "",
        "- an item that goes on here;",
        "2. a numbered one going on",
        "",
        "  airlock run -- claude     # an example, kept",
    ]
