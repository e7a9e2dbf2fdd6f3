"""The options of ``airlock run`` for inspection and the git gateway (prepared by
:func:`airlock.egress.options.prepare`). Only ``argparse`` (and :mod:`airlock.cli._common`,
as light) is imported: every command builds the parser."""

from __future__ import annotations

import argparse
from pathlib import Path

from airlock.cli._common import Once


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of inspection and the git gateway, for ``airlock run``."""
    group = parser.add_argument_group("inspection and the git gateway")
    group.add_argument(
        "--inspect",
        action="append",
        default=[],
        metavar="HOST",
        help="read TLS to HOST with a CA made for this run: each request's data flow is "
        "recorded and enforced (repeatable; also the settings key airlock.inspect)",
    )
    group.add_argument(
        "--upstream-ca",
        action=Once,
        type=_path_named,
        metavar="FILE",
        help="also trust these PEM CAs for inspected origins (besides the system's)",
    )
    group.add_argument(
        "--secrets",
        action=Once,
        choices=("report", "redact", "block"),
        default="report",
        help="a secret in a request body to an inspected host: report its kind (default), "
        "redact it before it leaves, or block the request",
    )
    group.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="OWNER/NAME[:ro]",
        help="let git inside clone, fetch and push this repository through the credential "
        "gateway (:ro for fetch only); the token stays outside (repeatable)",
    )
    group.add_argument(
        "--git-upstream",
        action=Once,
        default="https://github.com",
        metavar="URL",
        help="the code host the gateway talks to (default https://github.com)",
    )
    group.add_argument(
        "--git-token-file",
        action=Once,
        type=_path_named,
        metavar="FILE",
        help="the code host's token (default: GH_TOKEN or GITHUB_TOKEN in airlock's environment)",
    )


def _path_named(text: str) -> Path:
    """A file's path given to an option: not empty. ``''`` (from an unset variable) reads as
    the current folder: the workspace would be taken for the file (a token file's is then
    read-only inside)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give the file's path")
    return Path(text)
