"""Deployment data that names, locates or stands for a secret without holding it: a name whose
last word says so (``…_NAME``, ``…_FILE``, ``…_ARN``, ``SecretName``), a value that is a path,
an ARN, a secret store's reference or a plain label (``prod-db-credentials``), an anti-forgery
token. Left as it is however the name and the value are joined (``=``, ``:``, a record's
``name`` and ``value``, tags, a form field), while a secret beside the same names is found."""

from __future__ import annotations

import io
import json

import pytest

from airlock.redact import Redactor

REDACTOR = Redactor()

PASSWORD = "xK9#mQ2$vL8!pR4"
KEY = "a8F3kQ9zL2mX7pR4tV6wY1bN5cD0eG3h"


def _part(name: str, value: str) -> str:
    """A ``multipart/form-data`` body of one field."""
    return f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n--XyZ--\r\n'


def _untouched(text: str) -> None:
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, (report.counts(), out)


@pytest.mark.parametrize(
    "text",
    [
        '        - name: OAUTH_CLIENT_SECRET_NAME\n          value: "oauth-client-secret"\n',
        "env:\n- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef: {name: db, key: pw}\n"
        "- name: PASSWORD_FILE\n  value: /run/secrets/db_password\n",
        json.dumps(
            {
                "containerDefinitions": [
                    {
                        "environment": [
                            {
                                "name": "DB_PASSWORD_SECRET_ARN",
                                "value": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-db",
                            }
                        ]
                    }
                ]
            }
        ),
        '{"name": "JWT_SECRET_FILE", "value": "/etc/app/jwt-signing-key.pem"}',
        '{"Key": "SecretName", "Value": "prod-db-credentials"}',
        _part("csrf_token", "b8f2e1c9a7d64f3e9a1b2c3d4e5f6a7b"),
        "- name: SECRET_NAME\n  value: my-app-secrets-prod\n",
        '{"Key": "token_owner", "Value": "team-platform-infra"}',
    ],
    ids=[
        "k8s_secret_name",
        "k8s_password_file",
        "ecs_secret_arn",
        "ecs_jwt_secret_file",
        "tag_secret_name",
        "form_csrf_token",
        "k8s_secret_name_label",
        "tag_label_value",
    ],
)
def test_deployment_data_that_points_at_a_secret_is_left_alone(text: str) -> None:
    """The reviewer's cases: Kubernetes' and ECS's environment lists, tags and a form field
    that carry a secret's name, file, ARN or label (or a CSRF nonce): under ``--secrets
    redact`` a rewrite would corrupt the request to the cloud's or the cluster's API."""
    _untouched(text)


REFERENCES = [
    ("PASSWORD_FILE", "/run/secrets/db_password"),
    ("DB_PASSWORD_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod-db"),
    ("JWT_SECRET_FILE", "/etc/app/jwt-signing-key.pem"),
    ("OAUTH_CLIENT_SECRET_NAME", "oauth-client-secret"),
    ("SecretName", "prod-db-credentials"),
    ("apiKeyPath", "~/.config/acme/api-key"),
    ("GITHUB_TOKEN_REF", "Xq7vR2mK9pL4wZ8tN3bY6cH1"),
    ("db_password", "ssm:/prod/db/password"),
    ("ADMIN_PASSWORD", "vault:secret/data/db#password"),
    ("PASSWORD_RESET_URL", "https://app.corp.net/reset/now"),
    ("csrf_token", KEY),
    ("X-XSRF-TOKEN", KEY),
    ("csrfmiddlewaretoken", KEY),
]
JOINS = {
    "env": lambda name, value: f"{name}={value}\n",
    "yaml": lambda name, value: f"{name}: {value}\n",
    "json": lambda name, value: json.dumps({name: value}),
    "record": lambda name, value: json.dumps({"name": name, "value": value}),
    "k8s": lambda name, value: f"- name: {name}\n  value: {value}\n",
    "tags": lambda name, value: json.dumps({"Key": name, "Value": value}),
    "form": _part,
}


@pytest.mark.parametrize("join", JOINS.values(), ids=list(JOINS))
@pytest.mark.parametrize(
    ("name", "value"), REFERENCES, ids=[name.lower() for name, _ in REFERENCES]
)
def test_a_reference_is_left_alone_however_name_and_value_are_joined(
    name: str, value: str, join: object
) -> None:
    """The same name and value, joined by ``=`` or ``:``, as a record's two fields, as tags or
    as a form field, are judged the same way."""
    assert callable(join)
    _untouched(join(name, value))


SECRETS = [
    ("DB_PASSWORD", PASSWORD, "generic_password"),
    ("password", "correct-horse-battery-staple", "generic_password"),
    ("SESSION_SECRET", KEY, "generic_api_key"),
    ("WTF_CSRF_SECRET_KEY", KEY, "generic_api_key"),
    ("csrf_secret", KEY, "generic_api_key"),
    ("API_TOKEN", "/K7MDENG/bPxRfiCYzX9kQ2mV8", "generic_api_key"),
    ("API_KEY", "6f1c2d0e-1111-4a2b-9c3d-abcdefabcdef", "generic_api_key"),
]


@pytest.mark.parametrize("join", JOINS.values(), ids=list(JOINS))
@pytest.mark.parametrize(
    ("name", "value", "kind"), SECRETS, ids=[name.lower() for name, _, _ in SECRETS]
)
def test_a_secret_beside_the_same_names_is_still_found(
    name: str, value: str, kind: str, join: object
) -> None:
    """Look-alikes: a password, a passphrase of plain words under a password's name, the key
    that signs CSRF tokens, a base64 key that starts with ``/``, a UUID as a key."""
    assert callable(join)
    text = join(name, value)
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}, (text, out)
    assert value not in out and json.dumps(value)[1:-1] not in out


def test_a_file_setting_stays_and_the_password_beside_it_goes() -> None:
    """``password_file=…`` names where the password is; ``password=…`` is one: in one file the
    first is left and the second redacted."""
    text = f"password_file=/run/secrets/db_password\npassword={PASSWORD}\n"
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {"generic_password": 1}
    assert out == "password_file=/run/secrets/db_password\npassword=[REDACTED:generic_password]\n"


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (
            "PASSWORD_URL=https://deploy:Xk9mQ2vL8pR4@git.corp.net/",
            "generic_password",
            "Xk9mQ2vL8pR4",
        ),
        (
            json.dumps({"name": "DB_PASSWORD_URL", "value": "postgres://app:Xk9mQ2vL8pR4@db/app"}),
            "generic_password",
            "Xk9mQ2vL8pR4",
        ),
    ],
    ids=["url_with_password", "record_url_with_password"],
)
def test_a_url_with_a_password_is_still_redacted_under_a_url_name(
    text: str, kind: str, secret: str
) -> None:
    """A URL with a password in it under a ``…_URL`` name is a secret all the same."""
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}, out
    assert secret not in out


def test_a_vendors_token_inside_a_path_is_redacted_and_the_path_kept() -> None:
    """A path is no secret, but a token of a vendor's format written into it is one."""
    token = "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"
    out, report = REDACTOR.redact_text(f"SECRET_FILE=/home/u/{token}")
    assert report.counts() == {"github_token": 1}, out
    assert out == "SECRET_FILE=/home/u/[REDACTED:github_token]"


@pytest.mark.parametrize(
    "text",
    [
        f"X-CSRF-Token: {KEY}",
        f"Cookie: XSRF-TOKEN={KEY}; sid=1",
        json.dumps({"csrfToken": KEY}),
        f"authenticity_token={KEY}&commit=Save",
        f'<input name="__RequestVerificationToken" type="hidden" />\n__RequestVerificationToken={KEY}',
    ],
    ids=["header", "cookie", "camel_case", "rails", "aspnet"],
)
def test_an_anti_forgery_token_is_no_credential(text: str) -> None:
    """A CSRF/XSRF token is a nonce of one session that a form or a client sends back: the
    header, the cookie, the form fields of Django, Rails and ASP.NET."""
    _untouched(text)


@pytest.mark.parametrize("chunk", [16, 64, 100])
def test_a_name_before_the_word_is_read_whatever_the_chunk_boundary(chunk: int) -> None:
    """The name is read back from the rule's word (``csrf_`` before ``token``) into the text
    already written: a chunk boundary anywhere in the name changes nothing."""
    redactor = Redactor(chunk=chunk, overlap=512)
    for pad in range(0, 80):
        text = "x" * pad + f" csrf_token={KEY} api_token={KEY}\n"
        dst = io.BytesIO()
        report = redactor.redact_stream(io.BytesIO(text.encode()), dst)
        assert report.counts() == {"generic_api_key": 1}, pad
        assert (
            dst.getvalue()
            .decode()
            .endswith(f" csrf_token={KEY} api_token=[REDACTED:generic_api_key]\n")
        )


@pytest.mark.parametrize(
    "text",
    [
        "JWT_SECRET=my-super-secret-jwt-key\n",
        'token: "some-long-words-token-value"\n',
        "password=correct-horse-battery-staple\n",
        "API_KEY=stripe-live-api-key\n",
    ],
)
def test_words_under_a_secrets_own_name_are_a_weak_secret_not_a_label(text: str) -> None:
    """Plain lower-case words are a label only under a name that ends in another word
    (``token_owner``, ``secret_label``); under a secret's own name they are what the secret
    is (a developer's ``JWT_SECRET=my-super-secret-jwt-key``), and are redacted."""
    out, report = REDACTOR.redact_text(text)
    assert report.found and "[REDACTED:" in out, out
