"""The sandbox's environment: the caller's, less what looks like a credential, plus the proxy.

A variable is dropped when its name matches a row of :data:`CREDENTIAL_VARIABLES` (names are
compared upper-cased, shell-style patterns), or, whatever its name, when its value holds a
password (:func:`credential_value_reason`: a URL with one in its userinfo,
``redis://:secret@host``, or a connection string's ``password=``), unless the user passed it
with ``--env NAME``; ``--env NAME=VALUE`` sets one. The names left out are reported; why
each looks like a credential is in :attr:`ScrubbedEnvironment.reasons`. The proxy variables
of the caller are replaced by the sandbox's own (:func:`proxy_variables`), whatever ``--env``
says: the only way out is airlock's proxy.

The patterns are meant to catch what is a credential, not every name that holds the letters:
``*_PASS`` and ``*_PWD`` (``DB_PASS``, ``MYSQL_PWD``), not ``*PASS*`` (``PASSAGE_DIR``,
``BYPASS``) nor ``*PWD`` (``PWD``, ``OLDPWD``); ``BW_SESSION`` and ``OP_SESSION_*``, not
``*_SESSION`` (``DESKTOP_SESSION``); ``GIT_CONFIG_COUNT``, ``GIT_CONFIG_KEY_*``,
``GIT_CONFIG_VALUE_*`` and ``GIT_CONFIG_PARAMETERS`` (git configuration given in the
environment, where ``http.extraHeader`` can carry a token), not ``GIT_CONFIG_NOSYSTEM`` or
``GIT_CONFIG_GLOBAL`` (a file's name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

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
    ("*_PASS", "a password (DB_PASS, SMTP_PASS, …)"),
    ("*_PWD", "a password (MYSQL_PWD, …)"),
    ("*CREDENTIAL*", "credentials (GOOGLE_APPLICATION_CREDENTIALS, …)"),
    ("*_AUTH", "authentication data"),
    ("*_AUTH_*", "authentication data"),
    ("*COOKIE*", "a cookie"),
    ("*_PAT", "a personal access token"),
    ("*JWT", "a JSON Web Token (CI_JOB_JWT, …)"),
    ("*_JWT_*", "a JSON Web Token (CI_JOB_JWT_V2, …)"),
    ("*AUTHORIZATION*", "an HTTP Authorization header"),
    ("*BEARER*", "a bearer token"),
    ("BW_SESSION", "a Bitwarden session key"),
    ("OP_SESSION_*", "a 1Password session token"),
    ("GIT_CONFIG_PARAMETERS", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_COUNT", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_KEY_*", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_VALUE_*", "git configuration (http.extraHeader can carry a token)"),
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

URL_USERINFO_PATTERN = r"://[^\s/?#@:]*:[^\s/?#@]+@(?!sha(?:256|384|512):)"
"""A URL with a password in its userinfo, anywhere in a value: ``scheme://user:password@``,
``scheme://:password@`` (``REDIS_URL``, ``MONGODB_URI``, ``CELERY_BROKER_URL``, a list of
them). A user alone (``ssh://git@host``) is no password, nor an image's tag and digest
(``docker://alpine:3.20@sha256:…``)."""

URL_TOKEN_USER_PATTERN = (
    r"://(?:(?:gh[pousr]_|github_pat_|glpat-|gldt-|xox[abpr]-|hf_|npm_|pypi-)[\w-]{20,}"  # noqa: S105 - a pattern
    r"|[A-Za-z0-9_-]{30,})@"
)
"""A URL whose user is a token (no password after it): ``https://ghp_…@github.com/org/repo``,
``https://<PAT>@dev.azure.com/…`` (code hosts take a token as the user name). A token is a
user name with a known token prefix (GitHub's ``ghp_``, ``github_pat_``, GitLab's ``glpat-``,
Slack's ``xoxb-``, Hugging Face's ``hf_``, npm's, PyPI's) and 20 or more characters after it,
as every such token has (``npm_builder1`` is a login), or one of at least 30 letters, digits,
``_`` and ``-``: no person's or service's login name is that long."""

CONNECTION_STRING_PATTERN = r"(?i)(?:^|[;?&\s])pass(?:word|wd)\s*=\s*[^\s;&]|;\s*pwd\s*=\s*[^\s;&]"
"""A connection string's password: ``Password=…;`` (ADO.NET), ``?password=…`` (JDBC),
``password=…`` (libpq's keywords), ``;PWD=…`` (ODBC); not empty.

These are compiled at their first use (``re`` keeps them), only for a value that holds their
fixed parts: most environments have none (start-up time)."""

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


def credential_reason(name: str, value: str | None = None) -> str | None:
    """What ``name`` looks like, when it looks like a credential (:data:`CREDENTIAL_VARIABLES`),
    or else what its ``value`` holds (:func:`credential_value_reason`); else ``None``."""
    upper = name.upper()
    for pattern, what in CREDENTIAL_VARIABLES:
        if _matches(upper, pattern):
            return what
    return credential_value_reason(value) if value else None


def credential_value_reason(value: str) -> str | None:
    """What ``value`` holds, when it holds a password or a token (:data:`URL_USERINFO_PATTERN`,
    :data:`URL_TOKEN_USER_PATTERN`, :data:`CONNECTION_STRING_PATTERN`), whatever the variable's
    name; else ``None``."""
    if "@" in value and "://" in value:
        if re.search(URL_USERINFO_PATTERN, value):
            return "a URL with a password in it (scheme://user:password@host)"
        if re.search(URL_TOKEN_USER_PATTERN, value):
            return "a URL with a token as its user (scheme://token@host)"
    lower = value.lower()
    if (
        "=" in value
        and ("pass" in lower or "pwd" in lower)
        and re.search(CONNECTION_STRING_PATTERN, value)
    ):
        return "a connection string with a password in it (password=…)"
    return None


@dataclass(frozen=True, slots=True)
class ScrubbedEnvironment:
    """The environment given to the sandbox, and what was left out of it."""

    environ: Mapping[str, str]
    dropped: tuple[str, ...]
    """Names left out because they look like credentials, sorted."""
    kept: tuple[str, ...]
    """Names that look like credentials and were passed on anyway (``--env``), sorted."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Why each name of :attr:`dropped` and :attr:`kept` looks like a credential
    (:func:`credential_reason`)."""


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
    reasons: dict[str, str] = {}
    for name, value in environ.items():
        if name in PROXY_VARIABLES:
            continue
        reason = credential_reason(name, value)
        if reason is not None:
            reasons[name] = reason
            if name in wanted:
                kept.append(name)
            else:
                dropped.append(name)
                continue
        out[name] = value
    for name, given in wanted.items():
        if given is not None and name not in PROXY_VARIABLES:
            out[name] = given
            reason = credential_reason(name, given)
            if reason is not None and name not in kept:
                reasons[name] = reason
                kept.append(name)
    out.update(proxy_variables(proxy_url))
    return ScrubbedEnvironment(out, tuple(sorted(dropped)), tuple(sorted(kept)), reasons)


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
