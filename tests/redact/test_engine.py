"""The streaming engine: chunk boundaries, JSON escapes, valid JSON out, bounded work."""

from __future__ import annotations

import io
import json
import time

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from airlock.errors import SettingsError
from airlock.redact import Finding, RedactionReport, Redactor, Rule
from airlock.redact.corpus import generate
from airlock.settings import RedactionRule, RedactionSettings
from tests.redact.cases import SECRETS

GITHUB = "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"
PEM = dict((kind, secret) for kind, _, secret in SECRETS)["private_key_pem"]


class Trickle(io.RawIOBase):
    """A stream that returns at most ``step`` bytes a read, as a pipe may."""

    def __init__(self, data: bytes, step: int) -> None:
        self._data = data
        self._step = step
        self._at = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        take = self._step if size < 0 else min(size, self._step)
        piece = self._data[self._at : self._at + take]
        self._at += len(piece)
        return piece


def redact_bytes(
    redactor: Redactor, data: bytes, step: int | None = None
) -> tuple[bytes, RedactionReport]:
    dst = io.BytesIO()
    src = Trickle(data, step) if step else io.BytesIO(data)
    report = redactor.redact_stream(src, dst)  # type: ignore[arg-type]
    return dst.getvalue(), report


@pytest.mark.parametrize(
    "kind_secret", [s for s in SECRETS if s[0] != "private_key_pem"], ids=lambda s: s[0]
)
def test_a_secret_across_every_chunk_boundary_is_found(kind_secret: tuple[str, str, str]) -> None:
    """Whatever offset of the secret a chunk boundary falls at, the secret is redacted."""
    kind, around, secret = kind_secret
    redactor = Redactor(chunk=16, overlap=512)
    line = around.format(secret).encode()
    for pad in range(0, len(line) + 40, 3):
        data = b"x" * pad + b"\n" + line + b"\n" + b"y" * 600
        out, report = redact_bytes(redactor, data)
        assert secret.encode() not in out, pad
        assert f"[REDACTED:{kind}]".encode() in out
        assert out.endswith(b"y" * 600)
        assert report.findings[0].line == 2


def test_a_pipe_that_returns_little_at_a_time_changes_nothing() -> None:
    """Reads shorter than asked (pipes) give the same output as one big read."""
    data = "\n".join(around.format(secret) for _, around, secret in SECRETS).encode() * 3
    whole, report = redact_bytes(Redactor(), data)
    for step in (1, 7, 64, 4096):
        trickled, again = redact_bytes(Redactor(chunk=256, overlap=2048), data, step)
        assert trickled == whole
        assert again.counts() == report.counts()


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "slash escaped",
            {
                "text": "webhook https://hooks.slack.com/services/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"
            },
        ),
        ("pem with newlines", {"content": PEM}),
        ("double encoded", {"content": json.dumps({"private_key": PEM, "token": GITHUB})}),
        ("triple encoded", {"content": json.dumps({"inner": json.dumps({"private_key": PEM})})}),
        ("unicode escaped", {"content": f"PASSWORD=Uu<fg>J4&UUE8d458 and {GITHUB}"}),
    ],
)
def test_secrets_in_json_strings_are_found_and_lines_stay_valid(
    name: str, line: dict[str, str]
) -> None:
    """A secret written with JSON escapes is found, and the line is still JSON of the same shape."""
    for encoded in (
        json.dumps(line),
        json.dumps(line).replace("/", "\\/"),
        json.dumps(line, ensure_ascii=True)
        .replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026"),
    ):
        out, report = redact_bytes(Redactor(), encoded.encode() + b"\n")
        assert report.found, name
        parsed = json.loads(out)
        assert parsed.keys() == line.keys()
        flat = json.dumps(parsed)
        assert "Gmgdxr6SUtPeZ4KIonrmzAPslTyCmq4Gbu6c" not in flat
        assert "MHcCAQEEIPfvFjsHeKVevqNyckis2ipN8PURpeaNGqOTdiJhEz5n7Yxkues3DDO" not in flat
        assert "0X5EBe3VsfoecjjijMCnOGcm" not in flat


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.sampled_from([s[1].format(s[2]) for s in SECRETS] + ["plain words", "x=1", "", "{}"]),
        max_size=8,
    ),
    st.text(alphabet=" \n\t,;:\"'(){}[]<>|=", min_size=1, max_size=40),
)
@example(
    [
        "aws_access_key_id = AKIAFD4GBQ3YLVNH5MH3",
        "ADMIN=sk-ant-admin01-" + "Zy9Xw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0Fe9Dc8Ba7" * 2 + "Po8NmAA",
        "DB_PASSWORD='UufgJ4UUE8d458y55x'",
    ],
    "=",
)
def test_redaction_is_idempotent(parts: list[str], noise: str) -> None:
    """Redacting redacted text changes nothing and finds nothing.

    Parts are joined by separators: a token glued to the word before it is another string.
    """
    text = noise.join(parts)
    once, _ = Redactor().redact_text(text)
    twice, report = Redactor().redact_text(once)
    assert twice == once
    assert not report.found


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=2000), st.integers(min_value=1, max_value=64))
def test_any_bytes_survive_untouched_when_nothing_is_found(data: bytes, step: int) -> None:
    """Output equals input byte for byte when nothing is redacted, whatever the chunking."""
    out, report = redact_bytes(Redactor(chunk=32, overlap=128), data, step)
    if not report.found:
        assert out == data


def test_report_counts_by_kind_and_line_without_the_secret() -> None:
    """The report names kinds and lines; its JSON holds no secret."""
    text = f"a\ntoken {GITHUB}\nb\nkey={GITHUB}\n"
    out, report = Redactor().redact_text(text)
    assert GITHUB not in out
    assert [(f.kind, f.line) for f in report.findings] == [("github_token", 2), ("github_token", 4)]
    assert report.counts() == {"github_token": 2}
    assert GITHUB not in json.dumps(report.to_json())
    assert isinstance(report.findings[0], Finding)


def test_user_rules_and_allow_list_from_settings() -> None:
    """A rule from settings redacts its kind; an allow-listed value is left alone."""
    redactor = Redactor.from_settings(
        RedactionSettings(
            rules=(RedactionRule("acme_token", r"acme_(?P<secret>[a-z0-9]{12})", "acme_"),),
            allow=(GITHUB,),
        )
    )
    text, report = redactor.redact_text(f"acme_abcdef123456 {GITHUB}")
    assert text == f"acme_[REDACTED:acme_token] {GITHUB}"
    assert report.counts() == {"acme_token": 1}


def test_a_user_rule_needs_its_keyword() -> None:
    """A user's rule redacts only where its keyword is present."""
    rule = Rule("ticket", r"[A-Z]{3}-[0-9]{6}", "tkt:")
    text, report = Redactor(extra_rules=[rule]).redact_text("ABC-123456 and tkt:XYZ-654321")
    assert text == "ABC-123456 and tkt:[REDACTED:ticket]"
    assert report.counts() == {"ticket": 1}


def test_a_bad_user_pattern_is_a_settings_error() -> None:
    """A pattern RE2 cannot compile is reported with its kind."""
    with pytest.raises(SettingsError, match="broken"):
        Redactor(extra_rules=[Rule("broken", "(unclosed", "x")])


HOSTILE_UNITS = [
    ("jwt-look-alikes", b"eyJ" + b"a" * 50 + b"."),
    ("base64-run", b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0123456789+/"),
    ("repeated-begin", b"-----BEGIN"),
    ("repeated-pem-header", b"-----BEGIN RSA PRIVATE KEY-----\\n"),
    ("repeated-url-auth", b"://a:"),
    ("backslashes", b"\\"),
    ("quotes", b'"'),
    ("unicode-escapes", b"\\u0041"),
    ("short-assignments", b"pwd=aaaaaaa "),
    ("short-url-passwords", b"https://a:b@c "),
    ("low-entropy-key-ids", b"AKIAAAAAAAAAAAAAAAAA "),
    ("token-look-alikes", b"ghp_" + b"a" * 36 + b" "),
]
"""Units repeated into 10 MB lines: each makes many candidates, or none, or long runs."""


HOSTILE_LINES = [
    ("repeated-prefix", b"", b"sk-proj-"),
    ("one-letter", b"", b"A"),
    ("repeated-assignment", b"", b"password="),
    ("endless-pem", b"-----BEGIN RSA PRIVATE KEY-----", b"QUJD"),
    ("endless-jwt", b"eyJ", b"a"),
    *((name, b"", unit) for name, unit in HOSTILE_UNITS),
]
"""Lines built to make regex engines backtrack: a head, then one unit repeated."""


def _cpu_seconds(redactor: Redactor, line: bytes) -> float:
    """The CPU time of this process (not the wall clock: other work on the machine does not
    count) to redact ``line``, the least of two tries; the output stays about its size."""
    best = float("inf")
    for _ in range(2):
        started = time.process_time()
        out, _ = redact_bytes(redactor, line)
        best = min(best, time.process_time() - started)
        assert len(out) <= len(line) + 64
    return best


@pytest.mark.parametrize("split_scan", [False, True], ids=["one program", "split scan"])
@pytest.mark.parametrize(
    ("head", "unit"), [(h, u) for _, h, u in HOSTILE_LINES], ids=[n for n, _, _ in HOSTILE_LINES]
)
def test_hostile_lines_take_linear_time(head: bytes, unit: bytes, split_scan: bool) -> None:
    """A hostile line eight times as long costs about eight times the CPU, not sixty-four:
    matching stays linear (the speed itself is the benchmark's, not a test's)."""
    redactor = Redactor(split_scan=split_scan)
    small = head + unit * (1024 * 1024 // len(unit))
    large = head + unit * (8 * 1024 * 1024 // len(unit))
    small_cpu = max(_cpu_seconds(redactor, small), 0.005)
    assert _cpu_seconds(redactor, large) < 24 * small_cpu


@pytest.mark.parametrize(("name", "unit"), HOSTILE_UNITS, ids=[n for n, _ in HOSTILE_UNITS])
def test_a_secret_after_or_inside_a_repeated_run_is_still_found(name: str, unit: bytes) -> None:
    """Skipping repeated candidates never skips a secret: before, inside and after the run."""
    run = unit * (300_000 // len(unit))
    for data in (
        run + b" " + GITHUB.encode() + b" " + run,
        run[:150_000] + b" " + GITHUB.encode() + b" " + run[150_000:],
        run + b" " + GITHUB.encode(),
    ):
        for redactor in (Redactor(), Redactor(chunk=4096, overlap=1024)):
            out, report = redact_bytes(redactor, data)
            assert GITHUB.encode() not in out, name
            assert "github_token" in report.counts(), name


def test_without_findings_kept_the_counts_still_say_what_was_found() -> None:
    """A report that keeps no findings still counts every secret by kind, in order of number."""
    data = f"{GITHUB}\n".encode() * 3 + b"AKIAIOSFODNN7QZ3XK2M\n"
    kept = Redactor().redact_stream(io.BytesIO(data), io.BytesIO())
    counted = Redactor().redact_stream(
        io.BytesIO(data), io.BytesIO(), report=RedactionReport(keep_findings=False)
    )
    assert counted.findings == []
    assert counted.found
    assert counted.counts() == kept.counts() == {"github_token": 3, "aws_access_key_id": 1}


def test_lines_are_counted_only_when_wanted() -> None:
    """Without lines, findings keep their kinds and offsets and say line 0; the output is the same."""
    data = f"x\n{GITHUB}\ny\n{GITHUB}\n".encode()
    counted_out, counted = redact_bytes(Redactor(), data)
    dst = io.BytesIO()
    uncounted = Redactor().redact_stream(io.BytesIO(data), dst, report=RedactionReport(lines=False))
    assert dst.getvalue() == counted_out
    assert [f.line for f in counted.findings] == [2, 4]
    assert [f.line for f in uncounted.findings] == [0, 0]
    assert [(f.start, f.end) for f in uncounted.findings] == [
        (f.start, f.end) for f in counted.findings
    ]


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("GITHUB_TOKEN=ghp_fAKE" + "q7Rz2Lm9Xc4Vb8Nw1Ks6Jd3Hf5Tg0Py", False),
        ("GITHUB_TOKEN=ghp_Q7rZ2lM9xC4vB8nW1kS6jD3hF5tG0pYdUmMy", False),
        ("GITHUB_TOKEN=ghp_FAKE" + "A" * 32, True),
        ("api_key = your_fake_key_goes_here_1234567890", True),
        ("api_key = Fake-Key-For-The-Docs-1234567890ab", True),
    ],
    ids=["random-token-with-fAKE", "random-token-with-dUmMy", "FAKE", "your_fake", "Fake"],
)
def test_a_placeholder_word_counts_only_written_as_a_word(text: str, kept: bool) -> None:
    """A placeholder word keeps a value only in one case; the same letters in mixed case, by
    chance inside a random token, do not save it from redaction."""
    out, _ = redact_bytes(Redactor(), text.encode())
    assert (text.encode() in out) is kept


def test_ordinary_text_is_scanned_on_the_fast_path() -> None:
    """The table compiles to a program RE2 can run as a DFA: a pattern that makes the automaton
    too large (a bounded repeat of a wide class, say) sends the scan to RE2's slow engine, a
    thousand times slower. Two megabytes of transcript take well under a CPU second."""
    data = b"".join(content for _, content in generate(5, 2.0).files)
    redactor = Redactor()
    redactor.redact_stream(io.BytesIO(data[:100_000]), io.BytesIO())  # the automaton built
    started = time.process_time()
    redactor.redact_stream(io.BytesIO(data), io.BytesIO())
    assert time.process_time() - started < 2.0


def _findings(redactor: Redactor, data: bytes) -> tuple[bytes, list[Finding]]:
    out = io.BytesIO()
    report = redactor.redact_stream(io.BytesIO(data), out, report=RedactionReport(lines=True))
    return out.getvalue(), report.findings


def test_a_split_scan_finds_what_the_one_program_finds() -> None:
    """``split_scan`` (four smaller RE2 programs, for a command that reads its input once) gives
    the same output and findings as the one program of every alternative: on the generated
    corpus (every kind, in every context it writes), and on hostile runs where the programs'
    matches overlap each other (a token glued inside an assignment's value, again and again)."""
    samples = [data for _, data in generate(3, 1.0).files]
    samples += [
        unit * (200_000 // len(unit))
        for _, unit in [*HOSTILE_UNITS, ("", b"xoxb-token="), ("", b"api_key=ghp_")]
    ]
    samples.append(b"".join(b"xoxb-token%02d=" % (n % 97) for n in range(20_000)))
    samples.append((b"DATADOG_TOKEN=ghp_aaaa secret is ghp_abc- " * 3000) + GITHUB.encode())
    one, split = Redactor(), Redactor(split_scan=True, chunk=1 << 16, overlap=1 << 12)
    small = Redactor(chunk=1 << 16, overlap=1 << 12)
    for data in samples:
        assert _findings(split, data) == _findings(small, data)
        assert _findings(Redactor(split_scan=True), data) == _findings(one, data)


def test_an_unclosed_marker_does_not_hide_a_token_after_it() -> None:
    """Text that only looks like the start of a marker (``[REDACTED:`` typed before a key)
    leaves the key found; a real marker is left as it is."""
    import io

    from airlock.redact import Redactor

    redactor = Redactor()
    for text, kind in (
        (b'{"note":"[REDACTED:token: ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3z5A"}', b"github_token"),
        (b"[REDACTED:\ntoken: AKIAIOSFODNN7QZ3XK2M", b"aws_access_key_id"),
    ):
        out = io.BytesIO()
        redactor.redact_stream(io.BytesIO(text), out)
        assert b"[REDACTED:" + kind + b"]" in out.getvalue()
    for marked in (b"x [REDACTED:github_token] y", b"token=[REDACTED:generic_secret]"):
        out = io.BytesIO()
        redactor.redact_stream(io.BytesIO(marked), out)
        assert out.getvalue() == marked


def test_an_unclosed_marker_does_not_hide_a_password_after_it() -> None:
    """``[REDACTED:db_password=…`` is no marker (it is not closed): the assignment's value
    is judged as any other."""
    import io

    from airlock.redact import Redactor

    for text in (
        b"[REDACTED:db_password=Xk9mQ2vL7pR4wZ8n",
        b'{"[REDACTED:password": "Xk9mQ2vL7pR4wZ8nT"}',
    ):
        out = io.BytesIO()
        Redactor().redact_stream(io.BytesIO(text), out)
        assert b"Xk9mQ2vL7pR4wZ8n" not in out.getvalue()


def test_a_secret_between_two_tokens_in_a_rejected_assignment_is_found() -> None:
    """``password = pypi-…:DATABASE_URL=postgres://admin:PW@db…:ADMIN=sk-ant-admin…``: the
    assignment is no password, and the tokens in it are found; so is the database URL's
    password between them (the scan went on after the last token only, and the next pass
    redacted what the first left)."""
    from airlock.redact import Redactor

    cands = [secret[1].format(secret[2]) for secret in SECRETS]
    pypi = next(c for c in cands if "pypi" in c.lower() and c.startswith("password"))
    database = next(c for c in cands if "DATABASE_URL" in c)
    admin = next(c for c in cands if c.startswith("ADMIN="))
    once, _ = Redactor().redact_text(":".join([pypi, database, admin]))
    assert "[REDACTED:db_url_password]" in once and "mO3MpTtEG6PCshPNFA" not in once
    assert Redactor().redact_text(once)[0] == once


AWS_SECRET = "k9Qz+3vTq/Lm2Wx8Yp0Rn5Hs7Dj4Fg6Bc1Va3Ne2"


@pytest.mark.parametrize(
    ("text", "redacted"),
    [
        (  # a CSV cell doubles the quotes inside it
            f'"AWS_SECRET_ACCESS_KEY=""{AWS_SECRET}"""',
            '"AWS_SECRET_ACCESS_KEY=""[REDACTED:aws_secret_access_key]"""',
        ),
        (  # the same cell inside a JSON string
            json.dumps('"DB_PASSWORD=""Xk9!pQ2rT7zW"""')[1:-1],
            '\\"DB_PASSWORD=\\"\\"[REDACTED:generic_password]\\"\\"\\"',
        ),
        (  # an XML or HTML attribute writes them as references
            f'<v text="AWS_SECRET_ACCESS_KEY=&quot;{AWS_SECRET}&quot;"/>',
            '<v text="AWS_SECRET_ACCESS_KEY=&quot;[REDACTED:aws_secret_access_key]&quot;"/>',
        ),
        (
            f"<v t='aws_secret_access_key=&#39;{AWS_SECRET}&#x27;'/>",
            "<v t='aws_secret_access_key=&#39;[REDACTED:aws_secret_access_key]&#x27;'/>",
        ),
    ],
    ids=["csv_cell", "csv_cell_in_json", "xml_attribute", "xml_apostrophes"],
)
def test_a_named_secret_in_quotes_a_format_wrote_is_found(text: str, redacted: str) -> None:
    """A name's value quoted the way a CSV cell (``""``) or an XML attribute (``&quot;``)
    writes a quote is found as in plain quotes, and replaced where it stands."""
    assert Redactor().redact_text(text)[0] == redacted


def test_an_empty_string_beside_a_name_is_no_value() -> None:
    text = '{"password": "", "user": "bob", "token": "", "note": ""}'
    assert Redactor().redact_text(text)[0] == text
