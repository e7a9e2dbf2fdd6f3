"""A key in a request body written with the ``\\xHH`` or ``\\UHHHHHHHH`` escapes of YAML's
double-quoted strings (``{"k": "ghp\\x5f…"}`` in ``application/yaml``: PyYAML's ``safe_load``
and ruamel decode them; JSON5 reads ``\\x`` too), or split by an escaped line break (a
backslash at a line's end, which YAML, JSON5 and TOML read as nothing, with the next line's
blanks), through the real proxy (TLS and plain HTTP, real origins on loopback). The secrets
check read JSON's ``\\u005f`` but not these, so such a key left under ``--secrets block`` and
``redact``, and went uncounted under ``report``. The redaction engine now reads them as it
reads ``\\u00XX``: ``block`` refuses, ``redact`` replaces the key where it stands (its escapes
whole), ``report`` counts it, gathered or streamed; a body with such escapes and no key leaves
as it came."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from airlock.egress.scan import BodyCount, SecretsMode, check_gathered
from airlock.redact import Redactor
from tests.test_secrets_bypass_readings import KEY, _status, sites

TYPES = ["application/yaml", "application/x-yaml", "text/yaml", "application/json"]
BODIES = [
    pytest.param(f'{{"k": "ghp\\x5f{KEY[4:]}"}}'.encode(), id="x_escape"),
    pytest.param(f'{{"k": "ghp\\U0000005f{KEY[4:]}"}}'.encode(), id="big_u_escape"),
    pytest.param(f'k: "ghp\\x5F{KEY[4:]}"\n'.encode(), id="yaml_upper_case"),
    pytest.param(
        ('k: "' + "".join(f"\\x{ord(char):02x}" for char in KEY) + '"\n').encode(),
        id="every_char",
    ),
    pytest.param(f'k: "{KEY[:20]}\\\n  {KEY[20:]}"\n'.encode(), id="escaped_line_break"),
]
CLEAN = b'{"k": "caf\\xe9 \\x41bc \\U0001F600 \\x00", "re": "[\\\\x00-\\\\x20]"}'


@pytest.mark.parametrize("content_type", TYPES)
@pytest.mark.parametrize("body", BODIES)
def test_a_key_in_hex_escapes_is_found_in_a_gathered_body(body: bytes, content_type: str) -> None:
    """``block`` refuses; ``redact`` replaces the key where it stands, escapes whole; a body
    without a key leaves as it came, the same object."""
    mine = content_type.encode()
    leaving, found, _ = check_gathered(
        Redactor(body_readings=True), SecretsMode.BLOCK, body, None, mine
    )
    assert leaving is None and found == {"github_token": 1}
    leaving, found, _ = check_gathered(
        Redactor(body_readings=True), SecretsMode.REDACT, body, None, mine
    )
    assert found == {"github_token": 1}
    assert leaving in (
        b'{"k": "[REDACTED:github_token]"}',
        b'k: "[REDACTED:github_token]"\n',
        b'k: "[REDACTED:github_token]\n"\n',  # a line break it held kept
    )
    for mode in (SecretsMode.BLOCK, SecretsMode.REDACT):
        checked = check_gathered(Redactor(body_readings=True), mode, CLEAN, None, mine)
        assert checked[0] is CLEAN and checked[1] == {}


@pytest.mark.parametrize("body", BODIES)
def test_a_key_in_hex_escapes_is_counted_in_a_streamed_body(body: bytes) -> None:
    """``--secrets report`` reads a streamed body as ``block`` judges it: the key is counted,
    wherever the pieces are cut, deep in a large body too (past a scanner's segment)."""
    large = b"lorem ipsum dolor sit amet " * 80_000 + b"\n"  # 2 MB: a segment and more

    async def count(data: bytes, piece: int) -> dict[str, int]:
        counter = BodyCount(Redactor(body_readings=True), None, b"application/yaml")
        for at in range(0, len(data), piece):
            await counter.add(data[at : at + piece])
        return await counter.total()

    for data, piece in ((body, 7), (large + body + large, 65_536)):
        assert asyncio.run(count(data, piece)) == {"github_token": 1}
    assert asyncio.run(count(CLEAN, 5)) == {}


@pytest.mark.parametrize("way", ["tls", "plain"])
def test_block_refuses_a_key_in_hex_escapes_on_the_wire(tmp_path: Path, way: str) -> None:
    """``--secrets block``: ``403``, the origin gets nothing, the record counts the key."""
    with sites(tmp_path, SecretsMode.BLOCK) as served:
        answers = [
            served.send(way, "/upload", {"Content-Type": "application/yaml"}, body.values[0])
            for body in BODIES
        ]
        seen = served.seen(way)
    records = served.records()
    assert [_status(answer) for answer in answers] == [403] * len(BODIES)
    assert seen == []
    assert [record["secrets"] for record in records] == [{"github_token": 1}] * len(BODIES)


@pytest.mark.parametrize("way", ["tls", "plain"])
def test_redact_replaces_a_key_in_hex_escapes_on_the_wire(tmp_path: Path, way: str) -> None:
    """``--secrets redact``: the request goes with the key replaced where it stood; a body
    with such escapes and no key goes as it came."""
    body = BODIES[0].values[0]
    with sites(tmp_path, SecretsMode.REDACT) as served:
        answer = served.send(way, "/upload", {"Content-Type": "application/x-yaml"}, body)
        clean = served.send(way, "/clean", {"Content-Type": "text/yaml"}, CLEAN)
        seen = served.seen(way)
        bodies = [sent for _, _, sent in served.tls.seen]
    records = served.records()
    assert (_status(answer), _status(clean)) == (200, 200), answer[:300]
    assert seen == ["/upload", "/clean"]
    assert [record["secrets"] for record in records] == [{"github_token": 1}, {}]
    if way == "tls":  # the plain origin keeps no bodies
        assert bodies == [b'{"k": "[REDACTED:github_token]"}', CLEAN]


@pytest.mark.parametrize("way", ["tls", "plain"])
def test_report_counts_a_key_in_hex_escapes_on_the_wire(tmp_path: Path, way: str) -> None:
    """``--secrets report``: the body leaves as it came, its record counting the key."""
    with sites(tmp_path, SecretsMode.REPORT) as served:
        answer = served.send(way, "/upload", {"Content-Type": "text/yaml"}, BODIES[1].values[0])
        seen = served.seen(way)
    records = served.records()
    assert _status(answer) == 200
    assert seen == ["/upload"]
    assert records[-1]["secrets"] == {"github_token": 1}
