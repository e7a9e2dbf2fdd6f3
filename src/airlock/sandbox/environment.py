"""The sandbox's environment: the caller's, less what looks like a credential, plus the proxy.

A variable is dropped when its name matches a row of :data:`CREDENTIAL_VARIABLES` (names are
compared upper-cased, shell-style patterns), unless the user passed it with ``--env NAME``;
``--env NAME=VALUE`` sets one. The proxy variables of the caller are replaced by the sandbox's
own (:func:`proxy_variables`), whatever ``--env`` says: the only way out is airlock's proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from airlock.errors import UsageError

CREDENTIAL_VARIABLES: tuple[tuple[str, str], ...] = (
    ("*TOKEN*", "a token (GITHUB_TOKEN, NPM_TOKEN, CLAUDE_CODE_OAUTH_TOKEN, …)"),
    ("*_KEY", "a key (ANTHROPIC_API_KEY, OPENAI_API_KEY, …)"),
    ("*_KEYS", "keys"),
    ("*API_KEY*", "an API key"),
    ("*APIKEY*", "an API key"),
    ("*PRIVATE_KEY*", "a private key"),
    ("*SECRET*", "a secret"),
    ("*PASSWORD*", "a password"),
    ("*PASSWD*", "a password"),
    ("*PASSPHRASE*", "a passphrase"),
    ("*CREDENTIAL*", "credentials (GOOGLE_APPLICATION_CREDENTIALS, …)"),
    ("*_AUTH", "authentication data"),
    ("*_AUTH_*", "authentication data"),
    ("*COOKIE*", "a cookie"),
    ("*_PAT", "a personal access token"),
    ("*_DSN", "a connection string that may hold a password"),
    ("DATABASE_URL", "a connection string that may hold a password"),
    ("AWS_*", "AWS account settings"),
    ("AZURE_*", "Azure account settings"),
    ("ARM_*", "Azure account settings (Terraform)"),
    ("GOOGLE_*", "Google Cloud account settings"),
    ("CLOUDSDK_*", "Google Cloud SDK settings"),
    ("GCLOUD_*", "Google Cloud SDK settings"),
    ("KUBECONFIG", "a Kubernetes credentials file"),
    ("DOCKER_HOST", "a Docker daemon address"),
    ("DOCKER_CONFIG", "a Docker credentials folder"),
    ("SSH_AUTH_SOCK", "the SSH agent's socket"),
    ("SSH_AGENT_PID", "the SSH agent"),
    ("GPG_AGENT_INFO", "the GnuPG agent's socket"),
    ("DBUS_SESSION_BUS_ADDRESS", "the D-Bus session bus"),
    ("NETRC", "a credentials file"),
    ("VAULT_*", "HashiCorp Vault settings"),
)
"""Names that look like credentials: (pattern on the upper-cased name, what it is). A pattern is
``X``, ``X*``, ``*X`` or ``*X*``: ``*`` stands for any text, at either end only."""

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "ftp_proxy",
)
"""Replaced by the sandbox's own: the caller's proxies are reached through ``--upstream-proxy``."""

SANDBOX_LOOPBACK = "localhost,127.0.0.1,::1"


def _matches(upper: str, pattern: str) -> bool:
    """``pattern`` (``X``, ``X*``, ``*X`` or ``*X*``) matches ``upper``; as ``fnmatchcase`` would,
    without compiling a regular expression for each pattern (start-up time)."""
    core = pattern.strip("*")
    if pattern.startswith("*") and pattern.endswith("*"):
        return core in upper
    if pattern.startswith("*"):
        return upper.endswith(core)
    if pattern.endswith("*"):
        return upper.startswith(core)
    return upper == core


def credential_reason(name: str) -> str | None:
    """What ``name`` looks like, when it looks like a credential; else ``None``."""
    upper = name.upper()
    for pattern, what in CREDENTIAL_VARIABLES:
        if _matches(upper, pattern):
            return what
    return None


@dataclass(frozen=True, slots=True)
class ScrubbedEnvironment:
    """The environment given to the sandbox, and what was left out of it."""

    environ: Mapping[str, str]
    dropped: tuple[str, ...]
    """Names left out because they look like credentials, sorted."""
    kept: tuple[str, ...]
    """Names that look like credentials and were passed on anyway (``--env``), sorted."""


def parse_env_options(options: list[str]) -> dict[str, str | None]:
    """``--env NAME`` (pass on the caller's) and ``--env NAME=VALUE`` (set it), by name.

    Raises:
        UsageError: a name that is empty or holds characters a variable name cannot hold.
    """
    wanted: dict[str, str | None] = {}
    for option in options:
        name, equals, value = option.partition("=")
        if not name or not all(c.isalnum() or c == "_" for c in name) or name[0].isdigit():
            raise UsageError(
                f"--env {option!r}: expected NAME or NAME=VALUE, NAME made of letters, digits "
                "and _ (not starting with a digit)"
            )
        wanted[name] = value if equals else None
    return wanted


def scrub(
    environ: Mapping[str, str], wanted: Mapping[str, str | None], proxy_url: str
) -> ScrubbedEnvironment:
    """The environment for the sandbox.

    Args:
        environ: the caller's environment.
        wanted: from :func:`parse_env_options`: a name mapped to ``None`` is passed on from
            ``environ`` even when it looks like a credential; to a string, it is set to it.
        proxy_url: the proxy as the sandbox reaches it, ``http://127.0.0.1:PORT``.
    """
    out: dict[str, str] = {}
    dropped: list[str] = []
    kept: list[str] = []
    for name, value in environ.items():
        if name in PROXY_VARIABLES:
            continue
        if credential_reason(name) is not None:
            if name in wanted:
                kept.append(name)
            else:
                dropped.append(name)
                continue
        out[name] = value
    for name, given in wanted.items():
        if given is not None and name not in PROXY_VARIABLES:
            out[name] = given
            if credential_reason(name) is not None and name not in kept:
                kept.append(name)
    out.update(proxy_variables(proxy_url))
    return ScrubbedEnvironment(out, tuple(sorted(dropped)), tuple(sorted(kept)))


def proxy_variables(proxy_url: str) -> dict[str, str]:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` in both cases, and ``NO_PROXY`` for loopback."""
    return {
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "ALL_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "all_proxy": proxy_url,
        "NO_PROXY": SANDBOX_LOOPBACK,
        "no_proxy": SANDBOX_LOOPBACK,
    }
