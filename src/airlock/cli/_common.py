"""What every command shares: reading the settings in force and saying what is wrong with them."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping

# ``typing`` is not imported at run time: it costs ``airlock flows`` start-up time and the
# annotations are strings anyway. mypy reads the block below as if TYPE_CHECKING were true.
# Nor is ``airlock.settings`` (tens of milliseconds): every command's parser is built with
# :class:`Once` from here, and only the commands that read settings load them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any

    from rich.console import Console
    from rich.text import Text

    from airlock.settings import Loaded


class Once(argparse.Action):
    """An option that takes one value: given again with another, it is refused, where
    ``argparse`` would keep the last one without a word (``--secrets block --secrets
    report`` would run with ``report``; ``--settings a.json --settings b.json`` would read
    only ``b.json``). The same value twice is that value. Given to a command and again to
    its subcommand (``sessions --settings a.json list --settings b.json``), the two are
    compared by :class:`Arguments`, where the subcommand's values are copied."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        given: dict[str, tuple[str, object]] = namespace.__dict__.setdefault(GIVEN_ONCE, {})
        if self.dest in given and given[self.dest][1] != values:
            parser.error(twice(given[self.dest], (option_string or self.dest, values)))
        given[self.dest] = (option_string or self.dest, values)
        setattr(namespace, self.dest, values)


GIVEN_ONCE = "_given_once"
"""Where :class:`Once` keeps each option's first spelling and value, by destination."""


def twice(first: tuple[str, object], then: tuple[str, object]) -> str:
    """The refusal of a :class:`Once` option given two values."""
    shown = (f"{v:g}" if isinstance(v, float) else str(v) for _, v in (first, then))
    return f"{then[0]} given twice, {next(shown)} and {next(shown)}: give it once"


class Arguments(argparse.Namespace):
    """The parsed arguments of the whole command line. ``argparse`` parses a subcommand's
    arguments into a namespace of their own and copies them here one by one, so a
    :class:`Once` option given to both levels would silently keep the subcommand's value:
    the copy of :data:`GIVEN_ONCE` is compared with what the command took, and a difference
    kept in :attr:`conflict` for the subcommand's parser to refuse."""

    conflict: str | None = None

    def __setattr__(self, name: str, value: object) -> None:
        earlier = self.__dict__.get(GIVEN_ONCE)
        if name == GIVEN_ONCE and isinstance(value, dict) and isinstance(earlier, dict):
            for dest, (spelling, given) in value.items():
                if dest in earlier and earlier[dest][1] != given and self.conflict is None:
                    self.conflict = twice(earlier[dest], (spelling, given))
            value = {**earlier, **value}
        super().__setattr__(name, value)


CHOSEN = "_chosen_parser"
"""Where the parsed arguments name the deepest (sub)command's parser (:func:`mark_chosen`)."""


def mark_chosen(parser: argparse.ArgumentParser) -> None:
    """Have ``parser`` name itself in the arguments it parses (at :data:`CHOSEN`): a
    subcommand's defaults are set after its parent's, so the deepest one chosen (``sessions
    list``, ``serve keys create``) is named there, for an argument none of them took to be
    refused by it, with its usage."""
    parser.set_defaults(**{CHOSEN: parser})


def plain(text: object, style: str = "") -> Text:
    """``text`` for rich to print as it is: no markup read in it (a host named ``[/bold]x``
    is that host, not a tag) and its control characters shown as escapes
    (:func:`airlock._visible.visible`). Everything shown that came from outside airlock (a
    run's hosts and reasons, a log's records, a settings file's values, a transcript) goes
    through it."""
    from rich.text import Text

    from airlock._visible import visible

    return Text(visible(text), style=style)


def stderr_console() -> Console:
    return _console(stderr=True)


def stdout_console() -> Console:
    return _console(stderr=False)


def _console(stderr: bool) -> Console:
    """A rich console whose broken pipe is a :class:`BrokenPipeError` again: rich's own
    handling exits 1 on its own, where every command ends the same way on a closed pipe
    (:func:`airlock.cli.main.main`)."""
    from rich.console import Console

    class _Console(Console):
        def on_broken_pipe(self) -> None:
            self.quiet = True  # nothing more is written to a reader that went away
            raise BrokenPipeError

    return _Console(stderr=stderr, highlight=False)


def load_reported(
    args: argparse.Namespace,
    project: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Loaded:
    """Load the settings in force and report every problem on stderr, loudly when managed.

    ``project``: the folder whose ``.claude/`` settings count (the current one when ``None``);
    ``airlock run`` gives the one its command runs in. A ``--settings`` path is the caller's.
    ``environ``: with ``project``, the environment read (this process's when ``None``);
    ``airlock run`` gives the one its command will have, where the agent reads its variables.
    """
    from airlock.settings import load, load_here

    settings = getattr(args, "settings", None)
    if settings is not None and not settings.lstrip().startswith("{"):
        _check_settings_file(settings)
    if project is None:
        loaded = load_here(settings)
    else:
        loaded = load(project, os.environ if environ is None else environ, settings)
    report_problems(loaded)
    return loaded


def _check_settings_file(text: str) -> None:
    """A ``--settings`` value that is not inline JSON: a settings file that can be read.

    Raises:
        UsageError: saying what is there instead (nothing, a folder, a FIFO, a link that
            leads nowhere, inline JSON that is no object).
    """
    import json
    from pathlib import Path

    from airlock._visible import visible
    from airlock.errors import UsageError
    from airlock.settings.layers import settings_bytes

    given = f"--settings {visible(repr(text))}"
    path = Path(text)
    _, why = settings_bytes(path)  # a FIFO is not waited on, a device not opened
    if why:
        raise UsageError(f"{given}: {why} (give a JSON file or inline JSON)")
    if path.is_file():
        return
    if path.is_dir():  # an empty one: no settings file either
        raise UsageError(f"{given}: a folder, not a settings file (give a JSON file)")
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        raise UsageError(f"{given}: no such file (give a JSON file or inline JSON)") from None
    raise UsageError(f"{given}: inline settings must be a JSON object ({{...}})")


MANAGED_HEAD = (
    "MANAGED SETTINGS ARE INVALID: failing closed. Every optional flow is off until the "
    "organisation's settings are fixed."
)
SET_ASIDE_HEAD = (
    "MANAGED SETTINGS NOT READ: the machine's own are set aside (the agent applies them):"
)
UNREADABLE_HEAD = "settings problems (each file below could not be read: none of it is in effect):"
INVALID_HEAD = (
    "settings problems (nothing in such a file is in effect except its opt-outs, its deny/ask "
    "rules, its sandbox deny lists and airlock.inspect):"
)


def report_problems(loaded: Loaded) -> None:
    """Print every settings problem (path, key, value, what was expected) on stderr, under a
    head that says what of such a file is in effect: managed settings first, then the files
    that could not be read at all, then those holding a wrong value."""
    if not loaded.problems:
        return
    from airlock._visible import visible
    from airlock.policy.model import Source

    groups: dict[str, list[str]] = {
        MANAGED_HEAD: [],
        SET_ASIDE_HEAD: [],
        UNREADABLE_HEAD: [],
        INVALID_HEAD: [],
    }
    if loaded.managed_set_aside is not None:
        groups[SET_ASIDE_HEAD].append(f"  {visible(loaded.managed_set_aside)}")
    for layer in loaded.layers:
        if layer.origin.source is Source.MANAGED:
            head = MANAGED_HEAD  # managed settings with a problem make loaded.managed_invalid
        else:
            head = INVALID_HEAD if layer.readable else UNREADABLE_HEAD
        groups[head] += [f"  {visible(problem)}" for problem in layer.problems]
    if not sys.stderr.isatty() or "NO_COLOR" in os.environ:
        for head, lines in groups.items():
            if lines:
                print(f"airlock: {head}", file=sys.stderr)
                print("\n".join(lines), file=sys.stderr)
        return
    console = stderr_console()
    for head, lines in groups.items():
        if lines:
            loud = head in (MANAGED_HEAD, SET_ASIDE_HEAD)
            style = "bold white on red" if loud else "bold yellow"
            console.print(f"airlock: {head}", style=style)
            for line in lines:
                console.print(line, style="yellow", markup=False)


def json_encoder() -> Callable[[Any], str]:
    """A function giving one JSON value as one line of text.

    orjson encodes the JSON-ready data of a listing or a report about ten times faster than
    the standard library, to the same JSON value; what it refuses (a string holding lone
    surrogates, as a file name that is not UTF-8 decodes to; an integer beyond 64 bits; a key
    that is not a string) is encoded by the standard library, with everything beyond ASCII
    escaped: a lone surrogate written as itself would reach standard output as bytes that are
    not UTF-8, which no JSON reader takes. One difference: a float that is not finite comes
    out as ``null`` (the standard library writes ``NaN``, which is not JSON).
    """
    import json

    import orjson

    plain = json.JSONEncoder().encode  # ASCII only (see above)
    fast, refused = orjson.dumps, orjson.JSONEncodeError

    def encode(value: Any) -> str:
        try:
            return fast(value).decode()
        except refused:
            return plain(value)

    return encode


def dump_json(data: Any) -> None:
    """Print ``data`` as JSON on stdout, one document."""
    import json

    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def with_json_refusals(run: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command; when the engine refuses and ``--json`` was asked, also print the refusal
    as JSON on stdout (the message still goes to stderr)."""
    from airlock.feedback import FlowRefused

    try:
        return run(args)
    except FlowRefused as refusal:
        if args.json:
            dump_json(refusal.to_json())
        raise
