"""A key in an XML body split by markup an XML reader reads as nothing in an element's text:
a CDATA section's start or end, a comment, a processing instruction
(``<k>ghp_aB3d<![CDATA[E5fG…]]></k>``, ``ghp_aB3d<!-- -->E5fG…``, a section for each
character). ElementTree and a DOM's ``textContent`` read the key whole; the secrets check
read two pieces, so it left under ``--secrets block`` and ``redact``. The redaction engine
now reads such markup as nothing where it splits a token: ``block`` refuses (through the real
proxy, TLS and plain HTTP), ``redact`` replaces the key where it stands, the markup inside it
with it, ``report`` counts it; markup between tags or words is left as it is."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from airlock.egress.scan import BodyCount, SecretsMode, check_gathered
from airlock.redact import Redactor
from tests.test_secrets_bypass_readings import KEY, _status, sites

SPLIT = {
    "cdata_start": f"<k>{KEY[:20]}<![CDATA[{KEY[20:]}]]></k>",
    "cdata_end": f"<k><![CDATA[{KEY[:20]}]]>{KEY[20:]}</k>",
    "cdata_each_char": "<k>" + "".join(f"<![CDATA[{char}]]>" for char in KEY) + "</k>",
    "comment": f"<k>{KEY[:20]}<!-- a note -->{KEY[20:]}</k>",
    "instruction": f"<k>{KEY[:20]}<?pi x?>{KEY[20:]}</k>",
    "comment_and_cdata": f"<k>{KEY[:9]}<!----><![CDATA[{KEY[9:30]}]]><?x?>{KEY[30:]}</k>",
}
CLEAN = (
    '<?xml version="1.0"?>\n<!-- a config -->\n<a><b><![CDATA[x < y]]></b>'
    "<c>text <!-- note --> more</c><?pi data?><d>ghp_<!-- not a key --></d></a>"
)
"""Markup between tags, among words, and after a prefix with nothing after it: no key."""
XML = b"application/xml"


@pytest.mark.parametrize("body", SPLIT.values(), ids=list(SPLIT))
def test_a_key_split_by_markup_is_found(body: str) -> None:
    """``block`` refuses; ``redact`` replaces the key where it stands; ``report`` counts it as
    it streams; a body with such markup and no key leaves as it came."""
    parsed = ElementTree.fromstring(body)  # noqa: S314 - our own text, as a server reads it
    assert "".join(parsed.itertext()) == KEY, "what its reader reads"
    data = body.encode()
    leaving, found, _ = check_gathered(
        Redactor(body_readings=True), SecretsMode.BLOCK, data, None, XML
    )
    assert leaving is None and found == {"github_token": 1}
    leaving, found, _ = check_gathered(
        Redactor(body_readings=True), SecretsMode.REDACT, data, None, XML
    )
    assert found == {"github_token": 1} and leaving is not None
    assert b"[REDACTED:github_token]" in leaving and KEY[20:].encode() not in leaving

    async def count() -> dict[str, int]:
        counter = BodyCount(Redactor(body_readings=True), None, XML)
        for at in range(0, len(data), 5):
            await counter.add(data[at : at + 5])
        return await counter.total()

    assert asyncio.run(count()) == {"github_token": 1}
    clean = CLEAN.encode()
    for mode in (SecretsMode.BLOCK, SecretsMode.REDACT):
        checked = check_gathered(Redactor(body_readings=True), mode, clean, None, XML)
        assert checked[0] is clean and checked[1] == {}


@pytest.mark.parametrize(
    "body",
    [b"a<!--" * 200_000, b"a<!---->" * 130_000, b"a]]><![CDATA[" * 80_000, b"a<?" * 300_000],
    ids=["unended_comments", "empty_comments", "cdata_sections", "unended_instructions"],
)
def test_hostile_markup_costs_what_character_references_cost(body: bytes) -> None:
    """A megabyte of markup after a split key costs well under a second (each comment's end
    looked for once, and one left without an end ends the look for more), and the key is
    found."""
    data = SPLIT["comment"].encode() + b"\n" + body
    started = time.process_time()
    hits = Redactor(body_readings=True).find(data)
    assert time.process_time() - started < 3
    assert [hit.kind for hit in hits][:1] == ["github_token"]


@pytest.mark.parametrize("way", ["tls", "plain"])
def test_block_refuses_a_key_split_by_markup_on_the_wire(tmp_path: Path, way: str) -> None:
    """``--secrets block``: ``403``, the origin gets nothing, the record counts the key."""
    with sites(tmp_path, SecretsMode.BLOCK) as served:
        answers = [
            served.send(way, "/upload", {"Content-Type": "text/xml"}, body.encode())
            for body in SPLIT.values()
        ]
        clean = served.send(way, "/clean", {"Content-Type": "text/xml"}, CLEAN.encode())
        seen = served.seen(way)
        bodies = [sent for _, _, sent in served.tls.seen]
    records = served.records()
    assert [_status(answer) for answer in answers] == [403] * len(SPLIT)
    assert _status(clean) == 200 and seen == ["/clean"]
    assert [record["secrets"] for record in records] == [{"github_token": 1}] * len(SPLIT) + [{}]
    if way == "tls":  # the plain origin keeps no bodies
        assert bodies == [CLEAN.encode()]


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (f"<k>{KEY}<!-- c -->-1</k>", "<k>[REDACTED:github_token]<!-- c -->-1</k>"),
        (f"<k>x-<?pi?>{KEY}</k>", "<k>x-<?pi?>[REDACTED:github_token]</k>"),
    ],
    ids=["before_markup", "after_markup"],
)
def test_markup_beside_a_key_is_left_where_it_stands(text: str, redacted: str) -> None:
    """Markup read as nothing next to a key, not inside it, is not replaced with it."""
    out, report = Redactor(body_readings=True).redact_text(text)
    assert out == redacted
    assert report.counts() == {"github_token": 1}
