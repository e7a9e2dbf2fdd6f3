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
        help="read TLS to HOST (a host name, exactly: no pattern, scheme or port) with a CA "
        "made for this run, which clients inside trust through SSL_CERT_FILE, "
        "NODE_EXTRA_CA_CERTS, REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, GIT_SSL_CAINFO, "
        "AWS_CA_BUNDLE, PIP_CERT, DENO_CERT, CARGO_HTTP_CAINFO, NPM_CONFIG_CAFILE, "
        "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE, "
        "HTTPLIB2_CA_CERTS and NIX_SSL_CERT_FILE (set inside to a bundle of the system's CAs "
        "and the run's): each "
        "request is recorded with its data flow and the secrets found, and one whose flow is "
        "off is refused 403. It lets no host out: --allow HOST too if no rule does "
        "(repeatable; also the settings key airlock.inspect)",
    )
    group.add_argument(
        "--upstream-ca",
        action=Once,
        type=_path_named,
        metavar="FILE",
        help="also trust the PEM CA certificates in FILE, besides the system's, for the "
        "origins of inspected hosts and the git gateway's code host (a company's or a test "
        "CA); given without --inspect, airlock.inspect or --repo, the run is refused (125: "
        "nothing would be verified against it)",
    )
    group.add_argument(
        "--secrets",
        action=Once,
        choices=("report", "redact", "block"),
        default="report",
        help="a secret found in a request to an inspected host (its body, path, query or "
        "headers): report records its kind and count, never its value (default); redact "
        "replaces it before the request leaves (one in the path or query, or one that cannot "
        "be replaced where it stands, refuses the request); block refuses the request. "
        "Given without --inspect or airlock.inspect, the run is refused (125: nothing would be "
        "read); what git pushes through --repo is not read",
    )
    group.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="OWNER/NAME[:ro]",
        help="let git inside clone, fetch and push this repository of the code host "
        "(--git-upstream) through the credential gateway, which adds the token outside; "
        "git's URLs of that host are rewritten to the gateway; :ro for clone and fetch only; "
        "any other repository is refused (repeatable)",
    )
    group.add_argument(
        "--git-upstream",
        action=Once,
        default="https://github.com",
        metavar="URL",
        help="the code host the gateway talks to (default https://github.com): an https:// "
        "URL (http:// only on this machine's loopback), with no user or password; a path "
        "after the host is kept before OWNER/NAME",
    )
    group.add_argument(
        "--git-token-file",
        action=Once,
        type=_path_named,
        metavar="FILE",
        help="a file holding the code host's token alone (default: GH_TOKEN, else "
        "GITHUB_TOKEN, in airlock's environment); hidden inside the sandbox",
    )


def _path_named(text: str) -> Path:
    """A file's path given to an option: not empty. ``''`` (from an unset variable) reads as
    the current folder: the workspace would be taken for the file (a token file's is then
    read-only inside)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path; give the file's path")
    return Path(text)
