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
