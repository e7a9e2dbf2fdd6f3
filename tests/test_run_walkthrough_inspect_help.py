"""What a walkthrough of the README's inspection and git gateway found ``airlock run --help``
leaving a user to guess: that ``--inspect`` lets no host out (and which CA variables it sets),
that ``--secrets`` without a host to inspect stops the run (and never reads what git pushes),
that ``--upstream-ca`` is trusted for the gateway's code host too (and alone stops the run),
which token ``--repo`` takes first, and what ``--git-upstream`` accepts. Each was learnt by a run that surprised: a ``403`` for an inspected host, a secret
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
        # --secrets: given alone it would read nothing, so the run is refused; pushes through
        # the gateway are not read
        "Given without --inspect or airlock.inspect, the run is refused (125: nothing would "
        "be read)",
        "what git pushes through --repo is not read",
        # --secrets: a secret in the path or query cannot be replaced: redact refuses it
        "one in the path or query, or one that cannot be replaced where it stands, refuses",
        # --upstream-ca: also the git gateway's code host (a 502 from the gateway otherwise)
        "the origins of inspected hosts and the git gateway's code host",
        # --upstream-ca: given alone it would verify nothing, so the run is refused
        "given without --inspect, airlock.inspect or --repo, the run is refused (125: nothing "
        "would be verified against it)",
        # --git-token-file: which token wins when several are there
        "default: GH_TOKEN, else GITHUB_TOKEN, in airlock's environment",
        # --git-upstream: what it accepts
        "http:// only on this machine's loopback",
    ],
)
def test_run_help_says_what_the_walkthrough_had_to_find_out(help_text: str, words: str) -> None:
    assert words in help_text


def test_run_help_names_every_ca_variable_set_inside(help_text: str) -> None:
    """``--inspect`` names each variable the run points at its CA bundle (a client that
    reads another one does not trust the run's CA: its handshake fails)."""
    from airlock.egress.ca import CA_VARIABLES

    missing = [name for name in CA_VARIABLES if name not in help_text]
    assert missing == []
