"""Every row of the rule table, bare and in every context, from the row's own examples.

A row added to ``RULES`` is covered here the day it is added: its true example is rendered and
written bare (where its format allows), in ``KEY=value``, JSON, YAML, XML, shell (``export``,
``curl -H``), a URL, an HTTP header, a JSON string escaped once and twice, and after a colour
sequence; its false example must pass through unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from airlock.redact import RULES, Redactor
from airlock.redact.patterns import Rule, render

REDACTOR = Redactor()

TOKEN_ROWS = [rule for rule in RULES if rule.bare and rule.sample and "{b64}" not in rule.sample]
NAMED_ROWS = [rule for rule in RULES if rule.shape and not rule.specific]
EXAMPLE_ROWS = [rule for rule in RULES if rule.sample and rule not in TOKEN_ROWS + NAMED_ROWS]


def _header(name: str) -> str:
    return name.replace("_", "-").title()


Context = Callable[[str, str], tuple[str, int]]
"""(name, value) -> (text, how many JSON string levels the value is inside)."""

CONTEXTS: dict[str, Context] = {
    "env": lambda n, v: (f"{n}={v}", 0),
    "export": lambda n, v: (f'export {n}="{v}"', 0),
    "yaml": lambda n, v: (f"{n.lower()}: {v}", 0),
    "json": lambda n, v: (json.dumps({n.lower(): v}), 0),
    "xml element": lambda n, v: (f"<config><{n}>{v}</{n}></config>", 0),
    "xml attribute": lambda n, v: (f'<add key="{n}" {n.lower()}="{v}" />', 0),
    "curl header": lambda n, v: (f'curl -H "{_header(n)}: {v}" https://api.corp.net/v1', 0),
    "http header": lambda n, v: (f"GET /v1 HTTP/1.1\r\n{_header(n)}: {v}\r\n\r\n", 0),
    "url query": lambda n, v: (f"https://api.corp.net/v1/items?{n.lower()}={v}&page=2", 0),
    "in json string": lambda n, v: (json.dumps({"content": f"{n}={v}\n"}), 1),
    "escaped json string": lambda n, v: (
        json.dumps({"content": f"caf\u00e9 {n}={v}"}, ensure_ascii=True),
        1,
    ),
    "json in json": lambda n, v: (json.dumps({"c": json.dumps({n.lower(): v})}), 2),
    "after colour": lambda n, v: (f"\x1b[01;31m\x1b[K{n}\x1b[m\x1b[K=\x1b[33m{v}\x1b[0m", 0),
    "make conditional": lambda n, v: (f'{n} ?= "{v}"', 0),
    "make shell": lambda n, v: (f'{n} ::= "{v}"', 0),
    "make append": lambda n, v: (f'{n} += "{v}"', 0),
    "php concatenation": lambda n, v: (f'${n} .= "{v}";', 0),
    "yaml block": lambda n, v: (f"{n.lower()}: |\n  {v}\n", 0),
    "xml element on its own line": lambda n, v: (f"<{n}>\n    {v}\n</{n}>", 0),
}

NAMED_CONTEXTS: dict[str, Context] = {
    "go declaration": lambda n, v: (f'var {n} string = "{v}"', 0),
    "csv cell": lambda n, v: (f"{n},{v},prod", 0),
    "xml element with a prefix": lambda n, v: (f"<app_{n}>{v}</app_{n}>", 0),
}
"""Joins found only after a vendor's word (a generic name there would be too loose)."""

BARE_CONTEXTS: dict[str, Context] = {
    "bare": lambda n, v: (v, 0),
    "bearer": lambda n, v: (f"Authorization: Bearer {v}", 0),
    "curl bearer": lambda n, v: (f"curl -H 'Authorization: Bearer {v}' https://api.corp.net", 0),
    "url path": lambda n, v: (f"see https://api.corp.net/v1/{v}/items", 0),
    "after colour": lambda n, v: (f"\x1b[32m{v}\x1b[0m", 0),
    "after escaped letter": lambda n, v: (json.dumps({"c": f"\u00e9{v}"}), 1),
    "prose": lambda n, v: (f"The token {v} was rotated.", 0),
}


def _decoded(text: str, depth: int) -> str:
    for _ in range(depth):
        found = json.loads(text)
        text = next(iter(found.values()))
    return text


def _check(rule: Rule, text: str, depth: int, value: str, exact: bool) -> None:
    out, report = REDACTOR.redact_text(text)
    assert report.found, (rule.kind, text[:160])
    if depth:
        assert json.loads(out).keys() == json.loads(text).keys()
    assert value not in _decoded(out, depth) if depth else value not in out, (rule.kind, out)
    if exact:
        assert report.counts() == {rule.kind: 1}, (rule.kind, text[:160])


def test_the_table_has_ten_times_the_first_twenty_five_kinds() -> None:
    """The table knows the services of the common scanners' rule sets (over 200 formats)."""
    assert len(RULES) >= 200
    assert len({rule.kind for rule in RULES}) == len(RULES)


@pytest.mark.parametrize("rule", RULES, ids=[rule.kind for rule in RULES])
def test_every_row_has_a_vendor_and_both_examples(rule: Rule) -> None:
    """Each row names its vendor and carries a true and a false example of our own."""
    assert rule.vendor
    assert rule.sample
    assert rule.counter


@pytest.mark.parametrize("context", sorted(BARE_CONTEXTS))
@pytest.mark.parametrize("rule", TOKEN_ROWS, ids=[rule.kind for rule in TOKEN_ROWS])
def test_token_row_found_bare(rule: Rule, context: str) -> None:
    """A prefixed format is found with no name beside it, and named after its own row."""
    value = render(rule.sample, 1)
    text, depth = BARE_CONTEXTS[context]("TOKEN", value)
    _check(rule, text, depth, value, exact=context in ("bare", "after colour", "prose"))


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("rule", TOKEN_ROWS, ids=[rule.kind for rule in TOKEN_ROWS])
def test_token_row_found_in_every_context(rule: Rule, context: str) -> None:
    """A prefixed format is found in assignments, documents, headers, URLs and escapes."""
    value = render(rule.sample, 2)
    text, depth = CONTEXTS[context]("API_TOKEN", value)
    _check(rule, text, depth, value, exact=False)


@pytest.mark.parametrize("context", sorted(CONTEXTS))
@pytest.mark.parametrize("rule", NAMED_ROWS, ids=[rule.kind for rule in NAMED_ROWS])
def test_named_row_found_beside_its_name(rule: Rule, context: str) -> None:
    """A format without a prefix is found beside a name holding its vendor's word."""
    value = render(rule.sample, 3)
    text, depth = CONTEXTS[context](rule.name, value)
    _check(rule, text, depth, value, exact=context in ("env", "export", "yaml"))


@pytest.mark.parametrize("context", sorted(NAMED_CONTEXTS))
@pytest.mark.parametrize("rule", NAMED_ROWS, ids=[rule.kind for rule in NAMED_ROWS])
def test_named_row_found_in_declarations_and_cells(rule: Rule, context: str) -> None:
    """A format without a prefix is found with a declared type between its name and value, in a
    CSV cell beside its name, and in an XML element whose tag holds the vendor's word."""
    value = render(rule.sample, 8)
    text, depth = NAMED_CONTEXTS[context](rule.name, value)
    _check(rule, text, depth, value, exact=True)


@pytest.mark.parametrize("rule", EXAMPLE_ROWS, ids=[rule.kind for rule in EXAMPLE_ROWS])
def test_hand_written_row_finds_its_example(rule: Rule) -> None:
    """Rows written by hand (key files, URLs, assignments) find their own true example; a row
    whose name comes after the value names it as that name would (``DB_PASSWORD``)."""
    text = render(rule.sample, 4)
    out, _report = REDACTOR.redact_text(text)
    kind = "generic_password" if rule.name_after else rule.kind
    assert f"[REDACTED:{kind}]" in out, (rule.kind, text, out)


@pytest.mark.parametrize("rule", RULES, ids=[rule.kind for rule in RULES])
def test_false_example_passes_through(rule: Rule) -> None:
    """Each row's false example (a placeholder, an id, the value without its name) is left
    alone."""
    text = render(rule.counter, 5)
    out, report = REDACTOR.redact_text(text)
    assert out == text, (rule.kind, out)
    assert not report.found


@pytest.mark.parametrize("rule", NAMED_ROWS, ids=[rule.kind for rule in NAMED_ROWS])
def test_named_value_beside_an_id_name_is_not_a_key(rule: Rule) -> None:
    """The vendor's word with a name that says "id" is an identifier, not a key."""
    text = f"{rule.name.split('_')[0]}_CLIENT_ID={render(rule.sample, 6)}"
    out, _report = REDACTOR.redact_text(text)
    assert out == text, (rule.kind, out)


@pytest.mark.parametrize("rule", TOKEN_ROWS, ids=[rule.kind for rule in TOKEN_ROWS])
def test_token_one_character_short_is_not_taken(rule: Rule) -> None:
    """A token cut far below its format's length is not taken for one."""
    value = render(rule.sample, 7)
    short = value[: max(rule.min_length // 2, 1)]
    out, _ = REDACTOR.redact_text(f"value {short} ")
    assert short in out, rule.kind


def test_a_pem_key_in_plain_text_keeps_the_line_count() -> None:
    """A multi-line key in plain text becomes one marker and as many line breaks."""
    pem = render(next(rule for rule in RULES if rule.kind == "private_key_pem").sample, 8)
    text = f"first\n{pem}last\n"
    out, report = REDACTOR.redact_text(text)
    assert out.count("\n") == text.count("\n")
    assert out.splitlines()[-1] == "last"
    assert report.counts() == {"private_key_pem": 1}
