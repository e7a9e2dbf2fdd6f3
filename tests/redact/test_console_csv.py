"""The credentials file the AWS console hands out (CSV): the secret access key in each row is
found beside the access key ID before it, and both are replaced in their cells."""

from __future__ import annotations

import json

import pytest

from airlock.redact import Redactor

REDACTOR = Redactor()

KEY_ID = "AKIAFD4GBQ3YLVNH5MH3"
SECRET = "IoXdzaxEdJtsA8X72tzcwJ/PsOX2LcXssLiW0jkT"
ID_MARK = "[REDACTED:aws_access_key_id]"
KEY_MARK = "[REDACTED:aws_secret_access_key]"

CSVS = {
    "console_user": (
        "User name,Password,Access key ID,Secret access key,Console login link\n"
        f"ci-bot,,{KEY_ID},{SECRET},https://123456789012.signin.aws.amazon.com/console\n",
        "User name,Password,Access key ID,Secret access key,Console login link\n"
        f"ci-bot,,{ID_MARK},{KEY_MARK},https://123456789012.signin.aws.amazon.com/console\n",
    ),
    "access_keys": (
        f"Access key ID,Secret access key\r\n{KEY_ID},{SECRET}\r\n",
        f"Access key ID,Secret access key\r\n{ID_MARK},{KEY_MARK}\r\n",
    ),
    "quoted_cells": (
        f'"Access key ID","Secret access key"\n"{KEY_ID}","{SECRET}"\n',
        f'"Access key ID","Secret access key"\n"{ID_MARK}","{KEY_MARK}"\n',
    ),
    "semicolons": (
        f"Access key ID;Secret access key\n{KEY_ID};{SECRET}\n",
        f"Access key ID;Secret access key\n{ID_MARK};{KEY_MARK}\n",
    ),
    "spaced_cells": (
        f"Access key ID, Secret access key\n{KEY_ID}, {SECRET}\n",
        f"Access key ID, Secret access key\n{ID_MARK}, {KEY_MARK}\n",
    ),
    "spaced_quoted_cells": (
        f'"Access key ID" ; "Secret access key"\n"{KEY_ID}" ; "{SECRET}"\n',
        f'"Access key ID" ; "Secret access key"\n"{ID_MARK}" ; "{KEY_MARK}"\n',
    ),
}


@pytest.mark.parametrize(("text", "redacted"), CSVS.values(), ids=list(CSVS))
def test_a_console_credentials_csv_row_loses_its_key_id_and_its_secret_key(
    text: str, redacted: str
) -> None:
    out, report = REDACTOR.redact_text(text)
    assert out == redacted
    assert report.counts() == {"aws_access_key_id": 1, "aws_secret_access_key": 1}


def test_the_row_is_found_inside_a_json_string() -> None:
    """The file's text read by an agent's tool: a JSON string with escaped line breaks and a
    ``/`` written ``\\/``."""
    text = json.dumps({"content": CSVS["console_user"][0]}).replace("/", "\\/")
    out, report = REDACTOR.redact_text(text)
    assert report.counts() == {"aws_access_key_id": 1, "aws_secret_access_key": 1}, out
    assert json.loads(out)["content"] == CSVS["console_user"][1]


def test_rows_of_many_users_are_each_found() -> None:
    rows = "".join(
        f"user{n},,AKIAFD4GBQ3YLVNH5MH{n},{SECRET[:-1]}{n},https://x.signin.aws.amazon.com/c\n"
        for n in range(3, 8)
    )
    out, report = REDACTOR.redact_text(
        "User name,Password,Access key ID,Secret access key,Console login link\n" + rows
    )
    assert report.counts() == {"aws_access_key_id": 5, "aws_secret_access_key": 5}, out


@pytest.mark.parametrize(
    "text",
    [
        # the documentation's example pair
        "Access key ID,Secret access key\nAKIAIOSFODNN7EXAMPLE,wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        # a key ID beside something that is not a key: a date, a short word, a status
        "AKIAIOSFODNN7EXAMPLE,2024-05-01T10:00:00Z,Active\n",
    ],
    ids=["documentation_example", "not_a_key_after_the_id"],
)
def test_look_alikes_stay(text: str) -> None:
    out, report = REDACTOR.redact_text(text)
    assert out == text and not report.found, out


def test_a_key_id_before_a_rejected_value_is_still_redacted() -> None:
    """A real key ID before a cell that is no secret key (a placeholder) is still found."""
    text = f"{KEY_ID},wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    out, report = REDACTOR.redact_text(text)
    assert out == f"{ID_MARK},wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    assert report.counts() == {"aws_access_key_id": 1}
