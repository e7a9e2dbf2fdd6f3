"""A record whose value comes before its name (``{"value": "…", "name": "DB_PASSWORD"}``): the
value is judged, and named, as it would be right after that name."""

from __future__ import annotations

import json

import pytest

from airlock.redact import Redactor

REDACTOR = Redactor()

PASSWORD = "xK9#mQ2$vL8!pR4"
KEY = "Zk3mQ8vX2pL7wR4tY9bN6cJ1"
AWS_SECRET = "IoXdzaxEdJtsA8X72tzcwJ/PsOX2LcXssLiW0jkT"
GITHUB = "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"

REVERSED = {
    "json": (json.dumps({"value": PASSWORD, "name": "DB_PASSWORD"}), PASSWORD, "generic_password"),
    "tags": (json.dumps({"Value": KEY, "Key": "API_TOKEN"}), KEY, "generic_api_key"),
    "yaml_list": (
        f"env:\n- value: {PASSWORD}\n  name: DB_PASSWORD\n",
        PASSWORD,
        "generic_password",
    ),
    "ini": (f"[secret]\nvalue = {KEY}\nname = session_secret\n", KEY, "generic_api_key"),
    "xml_attributes": (
        f'<add value="{PASSWORD}" key="DbPassword" />',
        PASSWORD,
        "generic_password",
    ),
    "aws": (
        json.dumps({"value": AWS_SECRET, "name": "AWS_SECRET_ACCESS_KEY"}),
        AWS_SECRET,
        "aws_secret_access_key",
    ),
    "token_named_by_kind": (
        json.dumps({"value": GITHUB, "name": "CI_TOKEN"}),
        GITHUB,
        "github_token",
    ),
    "in_json_string": (
        json.dumps({"content": f"- value: {PASSWORD}\n  name: DB_PASSWORD\n"}),
        PASSWORD,
        "generic_password",
    ),
}


@pytest.mark.parametrize(("text", "secret", "kind"), REVERSED.values(), ids=list(REVERSED))
def test_a_value_before_its_name_is_found(text: str, secret: str, kind: str) -> None:
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}, out
    assert secret not in out and json.dumps(secret)[1:-1] not in out
    assert f"[REDACTED:{kind}]" in out


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"value": "db.internal.corp", "name": "DB_HOST"}),
        json.dumps({"value": "/run/secrets/db_password", "name": "DB_PASSWORD"}),
        json.dumps({"value": "payments-api-key-v2", "name": "API_KEY_SECRET"}),
        json.dumps({"value": "${DB_PASSWORD}", "name": "DB_PASSWORD"}),
        json.dumps({"value": "8f14e45fceea167a5a36dedd4bea2543", "name": "api_key_id"}),
        json.dumps({"id": "5f1c2d0e-1111-4a2b-9c3d-abcdefabcdef", "name": "api_key"}),
    ],
    ids=["not_a_secret_name", "path", "stored_name", "placeholder", "key_id", "not_a_value_field"],
)
def test_what_the_name_first_would_leave_is_left(text: str) -> None:
    """The same checks as with the name first: a host, a path, a reference, a placeholder, the
    id of a key; and a field that is not a record's ``value`` is not read as one."""
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, out


def test_a_token_under_a_name_that_takes_no_secret_is_still_found() -> None:
    """The name says nothing of a secret, but a vendor's token is one wherever it stands."""
    text = json.dumps({"value": GITHUB, "name": "RUNNER_KEY_ID"})
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {"github_token": 1}, out
