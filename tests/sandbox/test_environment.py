"""The sandbox's environment: credentials dropped unless asked for, the proxy always ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.errors import UsageError
from airlock.sandbox import credential_reason, parse_env_options, scrub
from airlock.sandbox.environment import PROXY_VARIABLES

PROXY = "http://127.0.0.1:3128"


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "NPM_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "STRIPE_SECRET",
        "CLIENT_SECRET_VALUE",
        "DB_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "PGPASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AZURE_CLIENT_ID",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "DOCKER_HOST",
        "KUBECONFIG",
        "DBUS_SESSION_BUS_ADDRESS",
        "SENTRY_DSN",
        "DATABASE_URL",
        "github_token",
    ],
    ids=lambda name: f"drops_{name}",
)
def test_credential_names_are_recognised(name: str) -> None:
    """A name that looks like a credential is recognised, whatever its case."""
    assert credential_reason(name) is not None


@pytest.mark.parametrize(
    "name", ["PATH", "HOME", "LANG", "TERM", "EDITOR", "PWD", "SHELL", "USER", "KEYBOARD"]
)
def test_ordinary_names_are_not_credentials(name: str) -> None:
    """Everyday variables pass through."""
    assert credential_reason(name) is None


def test_scrub_drops_credentials_and_reports_them() -> None:
    """Credential-looking variables are left out, named in ``dropped``, sorted."""
    result = scrub({"PATH": "/bin", "GH_TOKEN": "t", "AWS_REGION": "eu"}, {}, PROXY)
    assert result.dropped == ("AWS_REGION", "GH_TOKEN")
    assert "GH_TOKEN" not in result.environ
    assert result.environ["PATH"] == "/bin"


def test_env_name_passes_a_credential_on() -> None:
    """``--env NAME`` passes the caller's value in, and says it was kept."""
    result = scrub({"GH_TOKEN": "t"}, parse_env_options(["GH_TOKEN"]), PROXY)
    assert result.environ["GH_TOKEN"] == "t"
    assert result.dropped == ()
    assert result.kept == ("GH_TOKEN",)


def test_env_name_value_sets_one() -> None:
    """``--env NAME=VALUE`` sets the variable, even one the caller does not have."""
    result = scrub({}, parse_env_options(["API_KEY=abc=def", "MODE="]), PROXY)
    assert result.environ["API_KEY"] == "abc=def"
    assert result.environ["MODE"] == ""


def test_proxy_variables_are_always_the_sandboxes() -> None:
    """The caller's proxy settings are replaced, both cases, and NO_PROXY covers loopback only."""
    result = scrub(
        {"HTTPS_PROXY": "http://corp:8080", "no_proxy": "*"},
        parse_env_options(["HTTPS_PROXY=http://evil:1"]),
        PROXY,
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        assert result.environ[name] == PROXY
    assert result.environ["NO_PROXY"] == result.environ["no_proxy"] == "localhost,127.0.0.1,::1"


@pytest.mark.parametrize("option", ["", "=x", "1ABC", "A-B", "A B=c"])
def test_bad_env_options_are_refused(option: str) -> None:
    """A malformed ``--env`` is a usage error naming it."""
    with pytest.raises(UsageError, match="--env"):
        parse_env_options([option])


names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc0123456789", min_size=1, max_size=24)


@given(st.dictionaries(names, st.text(max_size=8), max_size=20), st.sets(names, max_size=5))
def test_no_unasked_credential_gets_in(environ: dict[str, str], asked: set[str]) -> None:
    """Whatever the environment, a credential-looking name is inside only when asked for, and
    every name left out is reported."""
    result = scrub(environ, dict.fromkeys(asked), PROXY)
    for name in result.environ:
        if name not in PROXY_VARIABLES and credential_reason(name) is not None:
            assert name in asked
    assert set(result.dropped) == {
        n for n in environ if n not in PROXY_VARIABLES and credential_reason(n) and n not in asked
    }


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789*?", max_size=30))
def test_table_patterns_match_as_fnmatch_does(name: str) -> None:
    """A name's credential reason is that of the first table pattern it matches as a shell-style
    pattern."""
    from fnmatch import fnmatchcase

    from airlock.sandbox.environment import CREDENTIAL_VARIABLES

    expected = next(
        (what for pattern, what in CREDENTIAL_VARIABLES if fnmatchcase(name, pattern)), None
    )
    assert credential_reason(name) == expected
