"""A key in a request's target written with IIS's ``%uXXXX`` escapes (``ghp%u005f…``), which
IIS and ASP.NET decode in the path and the query (``HttpUtility.UrlDecode``) as the flow
check already reads a path: the secrets check read the target as sent and with its ``%XX``
escapes decoded only, so under ``--secrets block`` and ``redact`` such a key left in the
path or the query. It is now read with those escapes decoded too: counted, the request
refused, the key in no record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airlock.egress.scan import SecretsMode, path_secrets
from airlock.policy import decide
from airlock.redact import Redactor
from tests.egress.harness import Rig, tls_origin, tunnel_ssl, until_closed
from tests.policy.helpers import context

KEY = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"
TARGETS = [
    f"/x?t=ghp%u005f{KEY[4:]}",
    f"/x?t=ghp%U005F{KEY[4:]}",
    f"/x/ghp%u005f{KEY[4:]}",
    "/x?t=" + "".join(f"%u{ord(char):04x}" for char in KEY),
]


@pytest.mark.parametrize("target", TARGETS)
def test_a_key_in_wide_escapes_in_the_target_is_found(target: str) -> None:
    shown, found = path_secrets(Redactor(), target, target)
    assert found == {"github_token": 1}
    assert KEY[4:] not in shown and KEY not in shown


SECRET = "k9Xz/7Qw2Lp+4Rt8Yv3Nb6Mc1Hd5Jf0Gs2Ka7EqW"


def test_a_key_in_wide_escapes_and_plus_signs_in_the_target_is_found() -> None:
    """ASP.NET's ``UrlDecode`` reads a query's ``+`` as a space and its ``%u005f`` at once:
    a key that shows only with both read so is found."""
    escaped = SECRET.replace("/", "%2F").replace("+", "%2B")
    target = f"/x?aws%u005fsecret%u005faccess%u005fkey+%3D+{escaped}"
    shown, found = path_secrets(Redactor(), target, target)
    assert found == {"aws_secret_access_key": 1}
    assert SECRET not in shown and escaped not in shown


@pytest.mark.parametrize("mode", [SecretsMode.BLOCK, SecretsMode.REDACT])
def test_such_a_key_never_reaches_the_origin_nor_the_log(tmp_path: Path, mode: SecretsMode) -> None:
    """Inside inspected TLS: each request is refused ``403``, the origin gets none, and the
    records count the key without showing it."""
    rig = Rig(tmp_path, decide(context({})), mode, {"localhost"})
    with tls_origin(rig.origin_ca, "localhost") as site:
        rig.origin_port = site.server_address[1]  # type: ignore[attr-defined]
        with rig.front:
            answers = []
            for target in TARGETS:
                tls, _ = tunnel_ssl(rig, "localhost", rig.bundle)
                with tls:
                    tls.sendall(
                        f"GET {target} HTTP/1.1\r\nHost: localhost:{rig.origin_port}\r\n"  # type: ignore[attr-defined]
                        "Connection: close\r\n\r\n".encode()
                    )
                    answers.append(until_closed(tls))
            records = rig.wait_records(len(TARGETS))
        seen = list(site.seen)
    assert [answer[:12] for answer in answers] == [b"HTTP/1.1 403"] * len(TARGETS)
    assert seen == []
    assert [record["secrets"] for record in records] == [{"github_token": 1}] * len(TARGETS)
    assert KEY[4:] not in json.dumps(records)


WIDE_FORMS = [
    f"note=hi&t=ghp%u005f{KEY[4:]}".encode(),
    f"t=ghp%U005F{KEY[4:]}&after=1".encode(),
    ("t=" + "".join(f"%u{ord(char):04x}" for char in KEY)).encode(),
    f"t=ghp%u005f{KEY[4:20]}%{ord(KEY[20]):02X}{KEY[21:]}".encode(),  # with a %XX one
]


@pytest.mark.parametrize("body", WIDE_FORMS)
def test_a_key_in_wide_escapes_in_a_form_is_found(body: bytes) -> None:
    """A form's values, which ASP.NET decodes as a target (``%u`` too): ``block`` refuses,
    ``redact`` refuses too, as it cannot replace the key where it stands; a form without
    a key in them leaves as it is."""
    from airlock.egress.scan import Uncheckable, check_gathered

    form = b"application/x-www-form-urlencoded"
    leaving, found, _ = check_gathered(Redactor(), SecretsMode.BLOCK, body, None, form)
    assert leaving is None and found == {"github_token": 1}
    with pytest.raises(Uncheckable) as refused:
        check_gathered(Redactor(), SecretsMode.REDACT, body, None, form)
    assert refused.value.status == 403 and "cannot be replaced" in refused.value.why
    clean = b"note=caf%u00e9&more=%u0041bc"
    for mode in (SecretsMode.BLOCK, SecretsMode.REDACT):
        assert check_gathered(Redactor(), mode, clean, None, form)[:2] == (clean, {})


def test_a_key_in_wide_escapes_in_a_header_value_is_found() -> None:
    """A header's value is read with its percent escapes decoded (a ``Referer``'s query):
    with IIS's ``%u`` ones too. Counted, and no header list given back to leave with it
    replaced."""
    from airlock.egress.scan import header_secrets

    headers = [(b"Accept", b"*/*"), (b"Referer", f"https://a.test/?t=ghp%u005f{KEY[4:]}".encode())]
    found, replaced = header_secrets(Redactor(), headers)
    assert found == {"github_token": 1}
    assert replaced is None
    clean = [(b"Referer", b"https://a.test/?name=caf%u00e9")]
    assert header_secrets(Redactor(), clean) == ({}, clean)


@pytest.mark.parametrize("way", ["tls", "plain"])
@pytest.mark.parametrize("mode", [SecretsMode.BLOCK, SecretsMode.REDACT])
def test_a_form_with_such_a_key_never_reaches_the_origin(
    tmp_path: Path, way: str, mode: SecretsMode
) -> None:
    """On the wire, inspected TLS and plain HTTP alike: ``403``, the origin gets nothing, the
    record counts the key."""
    from tests.test_secrets_bypass_readings import FORM, _status, sites

    with sites(tmp_path, mode) as served:
        answer = served.send(way, "/form", {"Content-Type": FORM.decode()}, WIDE_FORMS[0])
        seen = served.seen(way)
    records = served.records()
    assert _status(answer) == 403, answer[:300]
    assert seen == []
    assert records and records[-1]["secrets"] == {"github_token": 1}
