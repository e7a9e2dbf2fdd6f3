"""The ``airlock`` command: parses arguments, runs one command group, maps errors to exit codes.

Each command group is a module ``airlock.cli.<name>`` with ``register(subparsers, common)``
and ``run(args) -> int``. Registering only builds argparse parsers; a group's heavy imports
happen inside its ``run``, so ``airlock flows --json`` starts fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from airlock.cli._common import CHOSEN, Arguments, Once, mark_chosen
from airlock.errors import AirlockError

TYPE_CHECKING = False  # typing stays unimported at run time (start-up time)
if TYPE_CHECKING:
    from typing import Any

COMMANDS = (
    "flows",
    "sessions",
    "redact",
    "feedback",
    "survey",
    "fetch",
    "serve",
    "audit",
    "run",
)
"""Command groups, in the order ``--help`` lists them."""

EXIT_AT_ONCE = frozenset({"run"})
"""Command groups whose process :func:`console` may end at once when they are done (see
there): each closes, flushes and joins all it opens before it returns."""

EXIT_WORK_MODULES = ("multiprocessing", "opentelemetry", "sentry_sdk")
"""Modules that leave work for the interpreter's exit (their exporters' last flush, child
processes to reap): with one of them loaded, :func:`console` leaves the usual way."""

DESCRIPTION = """\
airlock decides, enforces and proves what an AI coding agent sends off the machine,
what it keeps, and for how long. It reads the same settings files and variables as
Claude Code (managed settings, --settings, .claude/settings.local.json,
.claude/settings.json, ~/.claude/settings.json, DISABLE_TELEMETRY, ...).
"""

EPILOG = """\
exit codes: 0 ok; 1 something was found (redact) or a check failed; 2 bad input or error;
3 refused by policy; 141 the reader of the output went away (airlock ... | head). Run
'airlock COMMAND --help' for each command.
"""

CLOSED_PIPE_EXIT_CODE = 141
"""Exit status of every command whose standard output was closed by its reader before all was
written (``airlock audit | head -1``): 128 + SIGPIPE, what a shell shows for a program that
signal ended (``yes | head`` under ``set -o pipefail``). Nothing is said: the reader stopped
reading on purpose, and a script under ``pipefail`` still sees that the output was cut."""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without importing ``shutil`` (a few ms of every start-up);
    descriptions kept as written but filled to the terminal (:func:`refill`)."""

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size().columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=max(columns - 2, 40))

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        return refill(text, width, indent)


def refill(text: str, width: int, indent: str = "") -> str:
    """``text`` (a description as written) filled to ``width``: each paragraph, and each
    ``- `` or ``1. `` item with the lines under it indented as far as its text, joined and
    wrapped again; blank lines kept; any other line that starts with a space (an example, a
    table) kept as it is."""
    import re
    import textwrap

    item_start = re.compile(r"(?:- |\d{1,2}\. )(?=\S)")  # a list's item: "- " or "1. "
    out: list[str] = []
    words: list[str] = []
    lead = ""

    def flush() -> None:
        if words:
            out.extend(
                textwrap.wrap(
                    " ".join(words),
                    width,
                    initial_indent=indent + lead,
                    subsequent_indent=indent + " " * len(lead),
                    break_on_hyphens=False,
                    break_long_words=False,
                )
            )
            words.clear()

    for line in text.splitlines():
        item = item_start.match(line)
        if item:
            flush()
            lead = item[0]
            words.append(line[len(lead) :].strip())
        elif words and lead and line.startswith(" " * len(lead)) and line[len(lead)] != " ":
            words.append(line.strip())  # an item's next line
        elif not line.strip() or line.startswith(" "):
            flush()
            lead = ""
            out.append(indent + line if line.strip() else "")
        else:
            if lead:
                flush()
                lead = ""
            words.append(line.strip())
    flush()
    return "\n".join(out)


class _Parser(argparse.ArgumentParser):
    """Every parser of ours keeps descriptions as written, uses :class:`_Formatter`, is
    named in the arguments when parsing chose it (:func:`mark_chosen`), and parses into
    :class:`Arguments` (a subcommand's too: a :class:`Once` option given to it and to its
    own subcommand is compared there)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["formatter_class"] = _Formatter
        super().__init__(*args, **kwargs)
        mark_chosen(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        return super().parse_known_args(args, Arguments() if namespace is None else namespace)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only the group ``only`` (faster: one parser to build)."""
    common = _Parser(add_help=False)
    common.add_argument(
        "--settings",
        action=Once,  # given twice with two files, neither is silently dropped
        # not given, not set: 'sessions --settings F list' keeps F, where the default of
        # list's own --settings (None) would replace it (read with getattr(args, ..., None))
        default=argparse.SUPPRESS,
        metavar="FILE",
        help="an extra settings file (or inline JSON), above the project and user settings",
    )
    parser = _Parser(
        prog="airlock",
        description=DESCRIPTION,
        epilog=EPILOG,
    )
    parser.add_argument("--version", action="version", version=f"airlock {_version()}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in COMMANDS if only is None else (only,):
        module = importlib.import_module(f"airlock.cli.{name}")
        module.register(subparsers, common)
    return parser


def _version() -> str:
    from airlock import __version__

    return __version__


class _ClosedStream:
    """Stands in for a standard stream the caller closed, so using it fails with a message."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getattr__(self, attribute: str) -> object:
        raise OSError(f"standard {self.name} is closed")


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if sys.stdin is None:
        sys.stdin = _ClosedStream("input")
    if sys.stderr is None:  # closed by the caller: airlock's words go nowhere, as it asked
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115, PTH123 - lives until the process exits
    if sys.stdout is None:
        if given[:1] != ["run"]:
            print("airlock: standard output is closed: nowhere to write", file=sys.stderr)
            return 2
        # airlock run writes nothing there: the command gets the closed descriptor, as from
        # a shell, and airlock's own prints (none) go nowhere
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115, PTH123 - lives until the process exits
    parser = build_parser(given[0] if given and given[0] in COMMANDS else None)
    try:
        args = _parse(parser, given)
    except SystemExit as stop:  # a usage error; a command may have its own code for it
        if stop.code == 2 and given and given[0] in COMMANDS:
            module = importlib.import_module(f"airlock.cli.{given[0]}")
            raise SystemExit(getattr(module, "USAGE_EXIT_CODE", 2)) from None
        raise
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(f"airlock.cli.{args.command}")
    try:
        code: int = module.run(args)
        sys.stdout.flush()
    except AirlockError as error:
        print(f"airlock {args.command}: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"airlock {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        print(f"airlock {args.command}: {error.strerror or error}{where}", file=sys.stderr)
        return 2
    return code


def _reader_gone() -> int:
    """The reader of standard output went away (``airlock audit | head -1``): end quietly
    with :data:`CLOSED_PIPE_EXIT_CODE`, as every command does. Standard output is pointed at
    ``/dev/null`` first, as Python's documentation of SIGPIPE advises: what is still buffered
    is flushed there at exit, not into the closed pipe again (a second error, a traceback)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no descriptor behind it: replace the object
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115, PTH123 - lives until the process exits
    return CLOSED_PIPE_EXIT_CODE


def _parse(parser: argparse.ArgumentParser, given: list[str]) -> argparse.Namespace:
    """``given`` parsed; an argument no parser knows refused by the (sub)command it was given
    to, with that command's usage and the option it may have meant (``airlock run --alow``:
    ``airlock run: error: unrecognized arguments: --alow (did you mean --allow?)``), where
    argparse would refuse it with the top-level usage, naming no command."""
    args, unknown = parser.parse_known_args(given)
    innermost: argparse.ArgumentParser = getattr(args, CHOSEN, parser)  # the deepest chosen
    if (
        getattr(args, "conflict", None) is not None
    ):  # an option given to a command and to its subcommand
        innermost.error(args.conflict)
    if not unknown:
        return args
    innermost.error(
        f"unrecognized arguments: {' '.join(unknown)}{_did_you_mean(innermost, unknown)}"
    )


def _did_you_mean(parser: argparse.ArgumentParser, unknown: list[str]) -> str:
    """`` (did you mean --allow?)`` for the first unknown option close to one ``parser``
    takes (as its help lists them); empty when none is close (or the unknown argument is no
    option)."""
    import difflib
    import re

    options = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", parser.format_help())))
    for argument in unknown:
        if not argument.startswith("-"):
            continue
        close = difflib.get_close_matches(argument.split("=", 1)[0], options, n=1)
        if close:
            return f" (did you mean {close[0]}?)"
    return ""


def console() -> None:
    """The installed ``airlock`` command and ``python -m airlock``: :func:`main`, then exit.

    After a command of :data:`EXIT_AT_ONCE` the process ends with ``os._exit`` once its output
    is flushed, instead of tearing the interpreter down: that frees every object the imports
    made one by one and collects them once more, about 20 ms of each ``airlock run`` (see
    ``benchmarks/README.md``, sandbox start-up), a sixth of what it adds to a sandbox's start.
    It leaves the usual way after any other command, an error, a flush that fails, while a
    thread that is not a daemon runs (Python would wait for it), or with one of
    :data:`EXIT_WORK_MODULES` loaded. ``logging``'s own exit work (flushing its handlers) is
    done here first. Ctrl-C before a command's own handling of it (while the CLI loads, the
    first tens of milliseconds) ends it as the commands do, with 130 and no traceback.
    """
    try:
        code = main()
    except KeyboardInterrupt:
        print("airlock: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
    command = sys.argv[1] if len(sys.argv) > 1 else None
    if command in EXIT_AT_ONCE and _nothing_left_for_exit():
        try:
            if "logging" in sys.modules:
                sys.modules["logging"].shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:
            raise SystemExit(code) from None  # Python's own exit says what could not be written
        os._exit(code)
    raise SystemExit(code)


def _nothing_left_for_exit() -> bool:
    """No thread but daemons runs and no module that works at exit is loaded."""
    if any(name in sys.modules for name in EXIT_WORK_MODULES):
        return False
    import threading

    main_thread = threading.main_thread()
    return all(thread.daemon for thread in threading.enumerate() if thread is not main_thread)
