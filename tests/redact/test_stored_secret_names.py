"""A plain label that is the name of a secret kept elsewhere (``payments-api-key-v2``): left
alone even under a secret's own name, where other plain words are a weak secret."""

from __future__ import annotations

import json

import pytest

from airlock.redact import Redactor

REDACTOR = Redactor()

STORED_NAMES = [
    ("API_KEY_SECRET", "payments-api-key-v2"),
    ("password", "prod-db-password"),
    ("DB_CREDENTIALS", "db-credentials-staging"),
    ("JWT_SECRET", "auth/jwt-signing-key/v3"),
    ("STRIPE_TOKEN", "dev.stripe.token"),
]
JOINS = {
    "yaml": lambda name, value: f"{name}: {value}\n",
    "env": lambda name, value: f"{name}={value}\n",
    "json": lambda name, value: json.dumps({name: value}),
    "k8s": lambda name, value: f"- name: {name}\n  value: {value}\n",
}


@pytest.mark.parametrize("join", JOINS.values(), ids=list(JOINS))
@pytest.mark.parametrize(("name", "value"), STORED_NAMES, ids=[v for _, v in STORED_NAMES])
def test_the_name_of_a_stored_secret_is_left_alone(name: str, value: str, join: object) -> None:
    """A label holding a secret's word and an environment or a version names a secret kept
    in a store (a Kubernetes secret, a vault path): rewriting it would break the deployment."""
    assert callable(join)
    text = join(name, value)
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, (report.counts(), out)


@pytest.mark.parametrize(
    "text",
    [
        "JWT_SECRET=my-super-secret-jwt-key\n",
        "API_KEY_SECRET: payments-api-key\n",
        "password: correct-horse-battery-v2\n",
        "DB_PASSWORD=prod-Xk9mQ2vL8pR4-password\n",
        "API_KEY_SECRET: payments-api-key-v2-Xq7vR2mK9pL4wZ8t\n",
    ],
    ids=["words", "no_qualifier", "no_secret_word", "mixed_case_body", "random_tail"],
)
def test_words_that_do_not_name_a_stored_secret_are_still_redacted(text: str) -> None:
    """Without both a secret's word and a qualifier, or with a random part in it, a value
    under a secret's name stays a secret."""
    out, report = REDACTOR.redact_text(text)
    assert report.found and "[REDACTED:" in out, out
