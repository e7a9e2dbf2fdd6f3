"""What a walkthrough of the README's inspection and git gateway found ``airlock run --help``
leaving a user to guess: that ``--inspect`` lets no host out, that ``--secrets`` reads nothing
without a host to inspect (and never what git pushes), that ``--upstream-ca`` is trusted for
the gateway's code host too, which token ``--repo`` takes first, and what ``--git-upstream``
accepts. Each was learnt by a run that surprised: a ``403`` for an inspected host, a secret
that left under ``--secrets block``, a ``502`` from the gateway."""

from __future__ import annotations

import pytest

from tests.cli import airlock


@pytest.fixture(scope="module")
def help_text() -> str:
    """``airlock run --help``, its white space folded (the words, as wrapped at any width)."""
    done = airlock("run", "--help", env={"COLUMNS": "80"})
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


@pytest.mark.parametrize(
    "words",
    [
        # --inspect: a host inspected is still refused unless a rule allows it
        "It lets no host out: --allow HOST too if no rule does",
        # --inspect: the variables through which clients inside trust the run's CA
        "trust through SSL_CERT_FILE, NODE_EXTRA_CA_CERTS,",
        # --secrets: given alone it reads nothing, and pushes through the gateway are not read
        "Without --inspect or airlock.inspect nothing is read",
        "what git pushes through --repo is not read",
        # --secrets: a secret in the path or query cannot be replaced: redact refuses it
        "one in the path or query, or one that cannot be replaced where it stands, refuses",
        # --upstream-ca: also the git gateway's code host (a 502 from the gateway otherwise)
        "the origins of inspected hosts and the git gateway's code host",
        # --git-token-file: which token wins when several are there
        "default: GH_TOKEN, else GITHUB_TOKEN, in airlock's environment",
        # --git-upstream: what it accepts
        "http:// only on this machine's loopback",
    ],
)
def test_run_help_says_what_the_walkthrough_had_to_find_out(help_text: str, words: str) -> None:
    assert words in help_text
