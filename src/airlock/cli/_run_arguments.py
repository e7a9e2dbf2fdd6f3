"""The options of ``airlock run``: the network, the sandbox, inspection and the git gateway,
the report. Only ``argparse`` is imported: every command builds the parser."""

from __future__ import annotations

import argparse

from airlock.cli._common import Once
from airlock.cli._egress_options import add_arguments as add_egress_arguments

EXIT_STATUS = """\
exit status: the command's own; 126 the command could not be run (not executable); 127 the
command was not found; 128+N the command was killed by signal N (130 Ctrl-C, 137 SIGKILL, 143
SIGTERM); 125 airlock itself failed (a bad option, a sandbox that could not be built, an audit
log that could not be written: the reason is on stderr).
"""
"""The end of ``airlock run --help``: what its exit status says."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Every option of ``airlock run``, and the command after ``--``; the exit status it ends
    with in its help."""
    parser.epilog = EXIT_STATUS
    network = parser.add_argument_group("network")
    network.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="P",
        help="allow host P (example.com, *.example.com, example.com:443, [2001:db8::1]:443); "
        "repeatable",
    )
    network.add_argument(
        "--deny",
        action="append",
        default=[],
        metavar="P",
        help="refuse host P; beats every allow; repeatable",
    )
    network.add_argument(
        "--allow-all",
        action="store_true",
        help="let every host through, still audited (audit-only runs)",
    )
    network.add_argument(
        "--upstream-proxy",
        action=Once,
        type=_url_named,
        metavar="URL",
        help="chain every connection through this proxy (default: airlock's own HTTPS_PROXY); "
        "hosts in airlock's own NO_PROXY are reached directly",
    )
    network.add_argument(
        "--max-upload-mb",
        action=Once,
        type=float,
        metavar="N",
        help="send at most N MiB out (bodies, heads, the names looked up): transfers under way "
        "are cut there, new connections refused",
    )
    network.add_argument(
        "--new-connections-per-second",
        action=Once,
        type=float,
        metavar="N",
        help="open at most N new connections a second to each host (bursts of N, at least "
        "one); past it a connection is answered 429 (default: no limit)",
    )
    network.add_argument(
        "--audit-log",
        action=Once,
        type=_file_in_a_folder,
        metavar="FILE",
        help="the audit log, in a folder that is there (default: <config dir>/airlock/audit.jsonl)",
    )
    files = parser.add_argument_group("sandbox")
    files.add_argument(
        "--workspace",
        action=Once,
        metavar="DIR",
        help="the writable workspace (default: the current folder)",
    )
    files.add_argument(
        "--rw", action="append", default=[], metavar="PATH", help="also writable; repeatable"
    )
    files.add_argument(
        "--ro",
        action="append",
        default=[],
        metavar="PATH",
        help="read-only, even inside a writable path; repeatable",
    )
    files.add_argument(
        "--hide",
        action="append",
        default=[],
        metavar="PATH",
        help="hidden (an empty, read-only placeholder stands there; the workspace, the agent's "
        "state and --rw paths under it are bound back); repeatable",
    )
    files.add_argument(
        "--allow-mounts",
        action="store_true",
        help="let the command mount file systems in namespaces of its own (bubblewrap, "
        "unshare -m, a container tool, the agent's own sandbox); files are then not kept from "
        "being opened for writing outside the writable paths, so a named pipe on a read-only "
        "host path can be written",
    )
    files.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME[=VALUE]",
        help="pass variable NAME in although it looks like a credential, or set it; repeatable",
    )
    add_egress_arguments(parser)
    parser.add_argument(
        "--report-json",
        action=Once,
        type=_file_named,
        metavar="FILE",
        help="also write the end-of-run report as JSON to FILE",
    )
    parser.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- COMMAND", help="what to run")


def _file_named(text: str) -> str:
    """A file's path given to an option: not empty (``''`` from an unset variable would be
    taken as not given, and the file the user meant never written)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give the file's path")
    return text


def _url_named(text: str) -> str:
    """A URL given to an option: not empty. ``''`` (from an unset variable) would be taken as
    not given, and the connections meant to go through that proxy would go elsewhere."""
    if not text:
        raise argparse.ArgumentTypeError("an empty URL; give the proxy's URL, or leave it out")
    return text


def _file_in_a_folder(text: str) -> str:
    """A file's path (:func:`_file_named`) whose folder is there: the folders of a mistyped
    path are not made (the default place, in airlock's own folder, is). One that is there but
    no folder is the run's to refuse, where the log is made.

    Its real path must be UTF-8: the log's checkpoints name it in JSON, and one that cannot
    be written there failed the log only once the command was running."""
    import os
    from pathlib import Path

    from airlock._visible import visible

    _file_named(text)
    path = Path(text).expanduser().absolute()  # as the run reads it
    folder = path.parent
    if not folder.exists():
        raise argparse.ArgumentTypeError(
            f"there is no folder {visible(folder)}; give a file in a folder that is there"
        )
    real = os.path.realpath(path)
    try:
        real.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8, as Python decodes them
        raise argparse.ArgumentTypeError(
            f"{visible(real)}: the path is not valid UTF-8, and the log's checkpoints name it "
            "in JSON; give a path of UTF-8 names"
        ) from None
    return text
