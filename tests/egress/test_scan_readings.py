"""Requests read as their readers read them: header values with their percent escapes decoded
and ``+`` as spaces, a form field's name and value, a key file's lines parted by escaped white
space; and protocol nonces (``Sec-WebSocket-Key``, ``Idempotency-Key``) not taken for keys."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from airlock.egress.scan import SecretsMode, check_gathered, header_secrets
from airlock.policy import decide
from airlock.redact import Redactor
from tests.egress.harness import Rig, tls_origin
from tests.policy.helpers import context

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
ESCAPED = KEY.replace("_", "%5F")
AWS_SECRET = "k9Xz/7Qw2Lp+4Rt8Yv3Nb6Mc1Hd5Jf0Gs2Ka7EqW"
PASSWORD = "Zq8#vLm2!rT9xW4p"
REDACTOR = Redactor()
PEM_LINES = [
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw",
    "7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFc",
]
PEM = "\n".join(["-----BEGIN RSA PRIVATE KEY-----", *PEM_LINES, "-----END RSA PRIVATE KEY-----"])


# ------------------------------------------------------------------------ header readings


@pytest.mark.parametrize(
    ("name", "value", "left"),
    [
        (b"Referer", f"https://h.corp.net/?token={ESCAPED}&a=1", b"https://h.corp.net/?token="),
        (b"X-Original-URL", f"/x?t={ESCAPED}", b"/x?t="),
        (b"X-Debug", "%67%68%70%5F" + KEY[4:], b""),
        (b"X-Note", "the+key+is+a8F3kQ9zL2mX7pR4tV6wY1bN", b"the+key+is+"),
    ],
    ids=["referer", "original_url", "all_escaped", "form_spaces"],
)
def test_a_header_value_is_read_with_its_escapes_decoded(
    name: bytes, value: str, left: bytes
) -> None:
    """A value a reader decodes (a URL's query, a form) is read decoded too, as a target is:
    the secret is counted, and replaced where it stands, escapes and all."""
    headers = [(b"Host", b"h.corp.net"), (name, value.encode()), (b"Accept", b"*/*")]
    found, redacted = header_secrets(REDACTOR, headers)
    assert sum(found.values()) == 1, found
    assert redacted is not None
    [kind] = found
    assert redacted[1] == (name, redacted[1][1])
    assert redacted[1][1].startswith(left + f"[REDACTED:{kind}]".encode())
    assert redacted[0] == headers[0] and redacted[2] == headers[2]


def test_a_secret_found_as_sent_and_decoded_counts_once() -> None:
    """A key written plainly in a header that holds other escapes is one secret, not two; one
    written in escapes in another header is the second."""
    headers = [
        (b"Referer", f"https://h/a%20b?t={KEY}".encode()),
        (b"X-Original-URL", f"/x?t={ESCAPED}".encode()),
    ]
    found, redacted = header_secrets(REDACTOR, headers)
    assert found == {"github_token": 2}
    assert redacted == [
        (b"Referer", b"https://h/a%20b?t=[REDACTED:github_token]"),
        (b"X-Original-URL", b"/x?t=[REDACTED:github_token]"),
    ]


NONCES = [
    (b"Sec-WebSocket-Key", lambda: base64.b64encode(os.urandom(16))),
    (b"Idempotency-Key", lambda: str(uuid.uuid4()).encode()),
    (b"Idempotency-Key", lambda: f"stainless-python-retry-{uuid.uuid4()}".encode()),
    (b"idempotency-key", lambda: base64.urlsafe_b64encode(os.urandom(24))),
]


@pytest.mark.parametrize(("name", "make"), NONCES, ids=["ws_key", "uuid", "sdk_retry", "random"])
def test_a_protocol_nonce_is_not_a_key_but_a_token_there_is(name: bytes, make) -> None:  # type: ignore[no-untyped-def]
    """A WebSocket handshake's nonce and a request's idempotency key, new for each request
    and granting nothing, are not taken for keys (the ``Key`` in the header's name); a
    vendor's token, or a name and its value, written into such a header is still found."""
    for _ in range(200):
        headers = [(b"Host", b"h"), (b"Upgrade", b"websocket"), (name, make())]
        assert header_secrets(REDACTOR, headers) == ({}, headers)
    found, redacted = header_secrets(REDACTOR, [(name, KEY.encode())])
    assert (found, redacted) == ({"github_token": 1}, [(name, b"[REDACTED:github_token]")])
    found, redacted = header_secrets(REDACTOR, [(name, f"password={PASSWORD}".encode())])
    assert found == {"generic_password": 1}
    assert redacted == [(name, b"password=[REDACTED:generic_password]")]


# --------------------------------------------------------------------------- bodies


def _multipart(name: str, value: str) -> bytes:
    return (
        f'--XyZ\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n--XyZ--\r\n'
    ).encode()


MULTIPART = b"multipart/form-data; boundary=XyZ"


@pytest.mark.parametrize(
    ("name", "value", "kind"),
    [
        ("aws_secret_access_key", AWS_SECRET, "aws_secret_access_key"),
        ("password", PASSWORD, "generic_password"),
        ("client_secret", "a8F3kQ9zL2mX7pR4tV6wY1bN5cD0eG3h", "generic_api_key"),
    ],
)
def test_a_form_field_is_blocked_and_redacted(name: str, value: str, kind: str) -> None:
    """``curl -F name=value``: blocked, or sent with the value replaced in its part."""
    body = _multipart(name, value)
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, MULTIPART)[:2] == (
        None,
        {kind: 1},
    )
    redacted, found, _ = check_gathered(REDACTOR, SecretsMode.REDACT, body, None, MULTIPART)
    assert found == {kind: 1}
    assert redacted == _multipart(name, f"[REDACTED:{kind}]")


@pytest.mark.parametrize("gap", ["\\u000a", "\\t", "\\r", "\\f"])
def test_a_key_file_in_json_parted_by_escaped_white_space_is_blocked(gap: str) -> None:
    """A JSON body whose key file's lines are parted by ``\\u000a``, ``\\t``, ``\\r`` or
    ``\\f`` (a JSON reader reads the key back) is refused, or sent without the key."""
    body = ('{"k": "' + PEM.replace("\n", gap) + '"}').encode()
    kind = {"private_key_pem": 1}
    assert check_gathered(REDACTOR, SecretsMode.BLOCK, body, None, b"application/json")[:2] == (
        None,
        kind,
    )
    redacted, found, _ = check_gathered(REDACTOR, SecretsMode.REDACT, body)
    assert found == kind and redacted is not None
    assert json.loads(redacted) == {"k": "[REDACTED:private_key_pem]"}


# ---------------------------------------------------------------------- end to end


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[object]:
    opened: list[tuple[Rig, object]] = []

    def make(secrets: SecretsMode) -> Rig:
        rig = Rig(tmp_path, decide(context({})), secrets, {"localhost"})
        origin_cm = tls_origin(rig.origin_ca, "localhost")
        rig.origin = origin_cm.__enter__()  # type: ignore[attr-defined]
        rig.origin_port = rig.origin.server_address[1]  # type: ignore[attr-defined]
        rig.front.__enter__()
        opened.append((rig, origin_cm))
        return rig

    yield make
    for rig, origin_cm in opened:
        rig.front.__exit__(None, None, None)
        origin_cm.__exit__(None, None, None)  # type: ignore[attr-defined]


def _curl(rig: Rig, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    url = f"https://localhost:{rig.origin_port}{path}"  # type: ignore[attr-defined]
    return subprocess.run(
        ["curl", "-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}", *args, url],
        env=rig.proxy_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_a_curl_form_field_through_the_proxy(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """``curl -F aws_secret_access_key=…``: counted (``report``), refused with nothing sent
    (``block``), or sent with the value replaced in its part (``redact``)."""
    rig = make_rig(mode)
    done = _curl(rig, "/v1/upload", "-F", f"aws_secret_access_key={AWS_SECRET}")
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"aws_secret_access_key": 1}
    if mode is SecretsMode.BLOCK:
        assert done.stdout.endswith("403") and rig.origin.seen == []
        return
    [(_, _, body)] = rig.origin.seen
    if mode is SecretsMode.REDACT:
        assert AWS_SECRET.encode() not in body
        assert b"\r\n\r\n[REDACTED:aws_secret_access_key]\r\n" in body
    else:
        assert AWS_SECRET.encode() in body


@pytest.mark.parametrize("mode", list(SecretsMode), ids=[m.value for m in SecretsMode])
def test_an_escaped_token_in_a_referer_through_the_proxy(make_rig, mode) -> None:  # type: ignore[no-untyped-def]
    """A ``Referer`` whose query holds a token written ``ghp%5F…``: counted (``report``),
    refused with nothing sent (``block``), or sent with the token replaced (``redact``); never
    in the records."""
    rig = make_rig(mode)
    done = _curl(rig, "/headers", "-H", f"Referer: https://h.corp.net/?t={ESCAPED}")
    assert done.returncode == 0, done.stderr
    [record] = rig.wait_records(1)
    assert record["secrets"] == {"github_token": 1}
    assert KEY not in json.dumps(rig.records) and ESCAPED not in json.dumps(rig.records)
    if mode is SecretsMode.BLOCK:
        assert done.stdout.endswith("403") and rig.origin.seen == []
        assert "headers hold secrets" in record["reason"]
        return
    shown = "[REDACTED:github_token]" if mode is SecretsMode.REDACT else ESCAPED
    assert f"Referer: https://h.corp.net/?t={shown}\n" in done.stdout


def test_a_websocket_handshake_and_an_sdk_retry_key_pass_block(make_rig) -> None:  # type: ignore[no-untyped-def]
    """Under ``--secrets block``, a request with a ``Sec-WebSocket-Key`` and the
    ``Idempotency-Key`` an official SDK sends goes out, counted clean."""
    rig = make_rig(SecretsMode.BLOCK)
    done = _curl(
        rig,
        "/v1/messages",
        *("-H", f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}"),
        *("-H", f"Idempotency-Key: stainless-python-retry-{uuid.uuid4()}"),
        *("-H", "Content-Type: application/json", "--data-binary", '{"model": "m"}'),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("200"), done.stdout[-200:]
    [record] = rig.wait_records(1)
    assert not record.get("secrets") and len(rig.origin.seen) == 1
