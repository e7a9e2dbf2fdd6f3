"""A credential's name written with other separators than ``_`` (``db-pass``,
``stripe.api-key``): the environment takes any name without ``=``, and programs inside read
them, so they are dropped as their ``_`` spellings are, and named in the report."""

from __future__ import annotations

import pytest

from airlock.errors import UsageError
from airlock.sandbox import credential_reason, parse_env_options, scrub

PROXY = "http://127.0.0.1:3128"


@pytest.mark.parametrize(
    "name",
    [
        "db-pass",
        "db.pass",
        "mysql.pwd",
        "stripe.api-key",
        "app.key",
        "sentry-dsn",
        "aws.access-key-id",
        "jenkins-creds",
        "wordpress.auth-salt",
        "ci-job-jwt",
        "gitlab-pat",
        "x-auth",
        "npm.config.auth",
        "db pass",
    ],
)
def test_a_credentials_name_with_other_separators_is_one(name: str) -> None:
    underscored = name.upper().replace("-", "_").replace(".", "_").replace(" ", "_")
    assert credential_reason(name) is not None
    assert credential_reason(name) == credential_reason(underscored)


@pytest.mark.parametrize(
    "name", ["stripe.publishable-key", "tokenizers-parallelism", "max.output-tokens", "home.dir"]
)
def test_a_setting_with_other_separators_is_still_no_credential(name: str) -> None:
    assert credential_reason(name) is None


def test_odd_names_are_dropped_and_reported_by_name() -> None:
    environ = {"db-pass": "hunter2", "stripe.api-key": "sk_abc", "app.title": "shop"}
    scrubbed = scrub(environ, {}, PROXY)
    assert scrubbed.dropped == ("db-pass", "stripe.api-key")
    assert "db-pass" not in scrubbed.environ and "stripe.api-key" not in scrubbed.environ
    assert scrubbed.environ["app.title"] == "shop"


@pytest.mark.parametrize(
    "option", ["=hunter2", "X\0Y=hunter2", "X=hunter2\0", "X\x1b[2J\0=hunter2"]
)
def test_a_bad_env_name_is_refused_without_its_value(option: str) -> None:
    with pytest.raises(UsageError) as refused:
        parse_env_options([option])
    assert "hunter2" not in str(refused.value)
    assert "\x1b" not in str(refused.value)
