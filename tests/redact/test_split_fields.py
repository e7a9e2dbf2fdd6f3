"""Secrets whose parts a reader puts back together: a key file's lines parted by any white
space a JSON reader or a base64 reader takes (``\\u000a``, ``\\t``, a bare carriage return), and
a name and its value written as two fields (a ``multipart/form-data`` part, an environment list's
``name`` and ``value``)."""

from __future__ import annotations

import json

import pytest

from airlock.redact import RULES, Redactor
from airlock.redact.patterns import Rule, render

REDACTOR = Redactor()

_LINES = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw",
    "7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFc",
    "zGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE",
]


def _pem(gap: str) -> str:
    """A key file whose lines are parted by ``gap`` (as written in the text scanned)."""
    head, tail = "-----BEGIN RSA PRIVATE KEY-----", "-----END RSA PRIVATE KEY-----"
    return gap.join([head, *_LINES, tail]) + gap


# The gap as written inside a JSON string (what a JSON reader turns back into white space), and
# raw in plain text.
JSON_GAPS = ["\\u000a", "\\u000A", "\\u000d\\u000a", "\\u0009", "\\t", "\\r", "\\f", "\\\\u000a"]
RAW_GAPS = ["\r", "\x0b", "\x0c", "\r\x0c"]


@pytest.mark.parametrize("gap", JSON_GAPS)
def test_a_key_file_in_json_whose_lines_are_parted_by_any_escaped_space_is_found(
    gap: str,
) -> None:
    """``\\u000a`` (an escaped line break the escape cursor does not read: it is not
    printable), ``\\t``, ``\\r``, ``\\f``: a JSON reader turns each back into the key file; it
    is replaced whole and the line stays JSON of the same shape."""
    line = '{"k": "' + _pem(gap) + '", "n": 1}'
    out, report = REDACTOR.redact_text(line)
    assert report.counts() == {"private_key_pem": 1}, out
    assert not any(part in out for part in _LINES)
    assert json.loads(out).keys() == json.loads(line).keys()


@pytest.mark.parametrize("gap", RAW_GAPS, ids=["cr", "vt", "ff", "cr_ff"])
def test_a_key_file_whose_lines_are_parted_by_other_white_space_is_found(gap: str) -> None:
    """A bare carriage return, a vertical tab or a form feed between its lines: a base64
    reader skips them all."""
    out, report = REDACTOR.redact_text(f"key: {_pem(gap)}done")
    assert report.counts() == {"private_key_pem": 1}, out
    assert not any(part in out for part in _LINES)
    assert out.endswith("done")


AWS = "k9Xz/7Qw2Lp+4Rt8Yv3Nb6Mc1Hd5Jf0Gs2Ka7EqW"
PASSWORD = "Zq8#vLm2!rT9xW4p"
KEY = "a8F3kQ9zL2mX7pR4tV6wY1bN5cD0eG3h"


def _part(disposition: str, value: str, headers: str = "") -> str:
    """A ``multipart/form-data`` body of one part."""
    return (
        f"--XyZ\r\nContent-Disposition: form-data; {disposition}\r\n{headers}\r\n{value}\r\n"
        "--XyZ--\r\n"
    )


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (_part('name="aws_secret_access_key"', AWS), "aws_secret_access_key", AWS),
        (_part('name="password"', PASSWORD), "generic_password", PASSWORD),
        (_part('name="api_key"', KEY), "generic_api_key", KEY),
        (
            _part('name="client_secret"', KEY, "Content-Type: text/plain\r\n"),
            "generic_api_key",
            KEY,
        ),
        (
            _part('name="token"; filename="t.txt"', KEY, "Content-Type: text/plain\r\n"),
            "generic_api_key",
            KEY,
        ),
        (_part("name=db_password", PASSWORD), "generic_password", PASSWORD),
        (json.dumps({"body": _part('name="password"', PASSWORD)}), "generic_password", PASSWORD),
    ],
    ids=["aws", "password", "api_key", "with_content_type", "file_part", "unquoted", "in_json"],
)
def test_a_form_field_is_read_as_its_name_and_value(text: str, kind: str, secret: str) -> None:
    """``curl -F password=…``: the name in the part's ``Content-Disposition``, the value its
    body after the blank line (other headers of the part between; written into a JSON string
    too)."""
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}, out
    assert secret not in out and json.dumps(secret)[1:-1] not in out


@pytest.mark.parametrize(
    ("text", "kind", "secret"),
    [
        (json.dumps({"name": "AWS_SECRET_ACCESS_KEY", "value": AWS}), "aws_secret_access_key", AWS),
        (
            json.dumps({"environment": [{"name": "DB_PASSWORD", "value": PASSWORD}]}, indent=2),
            "generic_password",
            PASSWORD,
        ),
        (
            f"env:\n  - name: AWS_SECRET_ACCESS_KEY\n    value: {AWS}\n",
            "aws_secret_access_key",
            AWS,
        ),
        (f'env:\n  - name: API_TOKEN\n    value: "{KEY}"\n', "generic_api_key", KEY),
        (json.dumps({"Key": "SESSION_SECRET", "Value": KEY}), "generic_api_key", KEY),
        (f'<add key="aws_secret_access_key" value="{AWS}"/>', "aws_secret_access_key", AWS),
        (
            json.dumps({"c": json.dumps({"name": "DB_PASSWORD", "value": PASSWORD})}),
            "generic_password",
            PASSWORD,
        ),
    ],
    ids=["ecs", "ecs_indented", "k8s_env", "k8s_quoted", "tags", "xml_attributes", "json_in_json"],
)
def test_a_name_and_its_value_in_two_fields_are_read_together(
    text: str, kind: str, secret: str
) -> None:
    """ECS's and Kubernetes' environment lists, tags, ``key="…" value="…"``: the field after
    the name, called ``value``, holds its value."""
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {kind: 1}, out
    assert secret not in out and json.dumps(secret)[1:-1] not in out


@pytest.mark.parametrize(
    "text",
    [
        f"aws configure set aws_secret_access_key {AWS}",
        f"s3sync --aws-secret-access-key {AWS} --region eu-west-1",
        json.dumps(["aws_secret_access_key", AWS]),
    ],
    ids=["aws_configure_set", "flag", "list"],
)
def test_an_aws_secret_key_beside_its_name_on_a_command_line_or_in_a_list(text: str) -> None:
    """The AWS secret key's name and a value of its exact shape, parted by a space (a command
    line) or as a list's next item, are the key."""
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {"aws_secret_access_key": 1}, out
    assert AWS not in out and json.dumps(AWS)[1:-1] not in out


NAMED_ROWS = [rule for rule in RULES if rule.shape and not rule.specific]


@pytest.mark.parametrize("rule", NAMED_ROWS, ids=[rule.kind for rule in NAMED_ROWS])
def test_a_vendors_named_format_is_read_in_a_form_field_and_a_record(rule: Rule) -> None:
    """A format found beside a vendor's word (``DATADOG_API_KEY``) is found in a form field and
    in an environment list's record as well."""
    value = render(rule.sample, 9)
    for text in (
        _part(f'name="{rule.name.lower()}"', value),
        json.dumps({"name": rule.name, "value": value}),
        f"- name: {rule.name}\n  value: {value}\n",
    ):
        out, report = REDACTOR.redact_text(text)
        assert report.counts() == {rule.kind: 1}, (rule.kind, text)
        assert value not in out


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"name": "max_tokens", "value": KEY}),
        json.dumps({"name": "api_key_id", "value": KEY}),
        f"- name: TOKEN_URL\n  value: {KEY}\n",
        "- name: DB_PASSWORD\n  valueFrom:\n    secretKeyRef:\n      name: db-credentials-2024\n"
        "      key: password\n",
        _part('name="token_count"', KEY, "Content-Type: text/plain\r\n"),
        _part('name="password"', "$(cat /run/secrets/db)"),
        f"the token\n\n{KEY} is not beside it",
        json.dumps({"name": "DB_PASSWORD", "value": "<your-password>"}),
    ],
    ids=[
        "token_count_record",
        "key_id_record",
        "token_url_record",
        "value_from",
        "form_token_count",
        "form_placeholder",
        "prose_paragraph",
        "record_placeholder",
    ],
)
def test_a_name_that_names_no_secret_or_a_placeholder_stays_apart(text: str) -> None:
    """A record or a field whose name says what is not a secret (a count of tokens, the id of
    a key, a URL), a value taken from elsewhere (``valueFrom``), a placeholder, and a name in
    prose a paragraph before a word: left as they are."""
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, out
