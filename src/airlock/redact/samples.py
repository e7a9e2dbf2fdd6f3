"""Random secrets of every kind, the contexts they are written in, and hard negatives.

Used by the corpus generator (``corpus.py``) and the tests. Every secret has a valid shape
(prefix, length, alphabet, checksum) and a random body: none is a live credential.
"""

from __future__ import annotations

import base64
import json
import string
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airlock.redact.patterns import render
from airlock.redact.rules import RULES

if TYPE_CHECKING:
    from collections.abc import Callable
    from random import Random

ALNUM = string.ascii_letters + string.digits
UPPER_ALNUM = string.ascii_uppercase + string.digits
URLSAFE = ALNUM + "-_"
B64 = ALNUM + "+/"
HEX = "0123456789abcdef"
WORDS = [
    "account",
    "batch",
    "branch",
    "cache",
    "client",
    "config",
    "event",
    "export",
    "filter",
    "graph",
    "index",
    "job",
    "ledger",
    "metric",
    "module",
    "parse",
    "queue",
    "record",
    "report",
    "result",
    "retry",
    "router",
    "schema",
    "server",
    "session",
    "shard",
    "signal",
    "stream",
    "table",
    "trace",
    "update",
    "value",
    "vector",
    "worker",
]


@dataclass(frozen=True, slots=True)
class Plant:
    """A planted item: the snippet of text it is written in, and the item's span there."""

    kind: str
    variant: str
    text: str
    start: int
    end: int

    @property
    def value(self) -> str:
        """The item itself, as written in the snippet."""
        return self.text[self.start : self.end]


def chars(rng: Random, alphabet: str, count: int) -> str:
    """``count`` random characters of ``alphabet``."""
    return "".join(rng.choices(alphabet, k=count))


def base62(number: int, width: int) -> str:
    """``number`` in base 62 (digits, upper, lower), left-padded with zeros to ``width``."""
    digits = ""
    while number:
        number, digit = divmod(number, 62)
        digits = ALNUM_BASE62[digit] + digits
    return digits.rjust(width, "0")


ALNUM_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


def crc_token(rng: Random, prefix: str) -> str:
    """A GitHub / npm style token: prefix, 30 random base62 characters, their CRC32 in base62."""
    body = chars(rng, ALNUM, 30)
    return prefix + body + base62(zlib.crc32(body.encode()), 6)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(rng: Random) -> str:
    header = _b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims = {"sub": str(rng.randrange(10**6)), "iat": 1_760_000_000 + rng.randrange(10**7)}
    payload = _b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{_b64url(rng.randbytes(32))}"


def _pem(rng: Random, label: str, lines: int) -> str:
    body = base64.b64encode(rng.randbytes(48 * lines)).decode()
    rows = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(rows) + f"\n-----END {label}-----\n"


def _password(rng: Random) -> str:
    value = chars(rng, ALNUM + "!#%*+-_.~", rng.randrange(12, 24))
    return value[:2] + rng.choice(string.digits) + rng.choice(string.ascii_uppercase) + value[2:]


MAKERS: dict[str, Callable[[Random], tuple[str, str]]] = {
    "anthropic_api_key": lambda r: ("api03", "sk-ant-api03-" + chars(r, URLSAFE, 93) + "AA"),
    "anthropic_admin_key": lambda r: ("admin01", "sk-ant-admin01-" + chars(r, URLSAFE, 93) + "AA"),
    "openai_api_key": lambda r: (
        v := r.choice(["proj", "svcacct", "admin"]),
        f"sk-{v}-" + chars(r, URLSAFE, 58) + "T3BlbkFJ" + chars(r, URLSAFE, 58),
    ),
    "github_token": lambda r: (v := r.choice("pousr"), crc_token(r, f"gh{v}_")),
    "github_fine_grained_pat": lambda r: (
        "pat",
        "github_pat_11" + chars(r, UPPER_ALNUM, 20) + "_" + chars(r, ALNUM, 59),
    ),
    "gitlab_pat": lambda r: ("glpat", "glpat-" + chars(r, URLSAFE, 20)),
    "google_api_key": lambda r: ("aiza", "AIza" + chars(r, URLSAFE, 35)),
    "huggingface_token": lambda r: ("hf", "hf_" + chars(r, string.ascii_letters, 34)),
    "npm_token": lambda r: ("npm", crc_token(r, "npm_")),
    "pypi_token": lambda r: (
        "pypi",
        "pypi-AgEIcHlwaS5vcmc" + chars(r, URLSAFE, r.randrange(60, 140)),
    ),
    "sendgrid_api_key": lambda r: (
        "sg",
        "SG." + chars(r, URLSAFE, 22) + "." + chars(r, URLSAFE, 43),
    ),
    "slack_token": lambda r: (
        v := r.choice("bp"),
        f"xox{v}-{r.randrange(10**10, 10**12)}-{r.randrange(10**10, 10**12)}-"
        + chars(r, ALNUM, 24),
    ),
    "slack_webhook": lambda r: (
        "services",
        "https://hooks.slack.com/services/T"
        + chars(r, UPPER_ALNUM, 10)
        + "/B"
        + chars(r, UPPER_ALNUM, 10)
        + "/"
        + chars(r, ALNUM, 24),
    ),
    "stripe_key": lambda r: (
        v := r.choice(["sk_live", "rk_live", "sk_test"]),
        f"{v}_" + chars(r, ALNUM, r.randrange(24, 99)),
    ),
    "twilio": lambda r: ("sk", "SK" + chars(r, HEX, 32)),
    "aws_access_key_id": lambda r: (
        v := r.choice(["AKIA", "ASIA"]),
        v + chars(r, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
    ),
    "aws_secret_access_key": lambda r: ("40", chars(r, B64, 40)),
    "azure_storage_key": lambda r: ("account", base64.b64encode(r.randbytes(64)).decode()),
    "gcp_service_account_key": lambda r: ("pkcs8", _pem(r, "PRIVATE KEY", 12)),
    "jwt": lambda r: ("hs", _jwt(r)),
    "db_url_password": lambda r: ("pw", _password(r).replace("%", "").replace("#", "")),
    "url_basic_auth": lambda r: ("pw", chars(r, ALNUM, r.randrange(12, 30))),
    "generic_password": lambda r: ("pw", _password(r)),
    "generic_api_key": lambda r: (
        "hex" if (h := r.random() < 0.3) else "b62",
        chars(r, HEX if h else ALNUM, 32 + r.randrange(0, 16)),
    ),
    "private_key_pem": lambda r: (
        v := r.choice(["RSA PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "PRIVATE KEY"]),
        _pem(r, v, r.randrange(3, 20)),
    ),
}
"""For each kind, a maker of (variant, random secret)."""

_TABLE_ROWS = {
    rule.kind: rule
    for rule in RULES
    if (rule.kind not in MAKERS and rule.sample and (rule.bare or rule.name) and not rule.specific)
    or (rule.kind not in MAKERS and rule.bare and rule.sample)
}
"""Rows of the table without a maker here: their own sample template makes their secrets."""

KINDS = tuple(sorted([*MAKERS, *_TABLE_ROWS]))

NAMES: dict[str, tuple[str, ...]] = {
    "anthropic_api_key": ("ANTHROPIC_API_KEY",),
    "anthropic_admin_key": ("ANTHROPIC_ADMIN_KEY",),
    "openai_api_key": ("OPENAI_API_KEY",),
    "github_token": ("GITHUB_TOKEN", "GH_TOKEN"),
    "github_fine_grained_pat": ("GITHUB_PAT",),
    "gitlab_pat": ("GITLAB_TOKEN",),
    "google_api_key": ("GOOGLE_API_KEY",),
    "huggingface_token": ("HF_TOKEN",),
    "npm_token": ("NPM_TOKEN",),
    "pypi_token": ("PYPI_TOKEN", "TWINE_PASSWORD"),
    "sendgrid_api_key": ("SENDGRID_API_KEY",),
    "slack_token": ("SLACK_BOT_TOKEN",),
    "slack_webhook": ("SLACK_WEBHOOK_URL",),
    "stripe_key": ("STRIPE_SECRET_KEY",),
    "twilio": ("TWILIO_API_KEY",),
    "aws_access_key_id": ("AWS_ACCESS_KEY_ID", "aws_access_key_id"),
    "aws_secret_access_key": ("AWS_SECRET_ACCESS_KEY", "aws_secret_access_key"),
    "jwt": ("ACCESS_TOKEN", "id_token"),
    "generic_password": ("DB_PASSWORD", "password", "PGPASSWORD", "admin_password"),
    "generic_api_key": ("SESSION_SECRET", "client_secret", "API_TOKEN", "WEBHOOK_SECRET"),
}
"""The names a secret of each kind is assigned to."""

ASSIGNMENTS = (
    "{name}={v}",
    "\x1b[01;31m\x1b[K{name}\x1b[m\x1b[K={v}",
    'export {name}="{v}"',
    "{name}: {v}",
    '"{name}": "{v}"',
    "{name} = '{v}'",
)
"""Contexts that name a secret: env files, shell, YAML, JSON, code."""

BARE = (
    "{v}",
    "Authorization: Bearer {v}",
    'curl -H "Authorization: Bearer {v}" https://api.internal.net/v1/items',
    "found {v} in the logs",
    "\x1b[32m{v}\x1b[0m",
    "\x1b[01;31m\x1b[K{v}\x1b[m\x1b[K",
    "     12→{v}",
    "clé:{v}",
)
"""Contexts without a name (for kinds whose format identifies them)."""

_BEARER = frozenset({"jwt", "slack_token", "github_token", "openai_api_key", "gitlab_pat"})
_NO_BARE = frozenset({"aws_secret_access_key", "generic_password", "generic_api_key"})


def _placed(kind: str, variant: str, template: str, value: str, name: str = "") -> Plant:
    before, after = template.replace("{name}", name).split("{v}")
    return Plant(kind, variant, before + value + after, len(before), len(before) + len(value))


def _special(rng: Random, kind: str, variant: str, value: str) -> Plant | None:
    if kind == "gcp_service_account_key":
        escaped = json.dumps(value)[1:-1]
        document = {
            "type": "service_account",
            "project_id": f"proj-{rng.randrange(10**6)}",
            "private_key_id": chars(rng, HEX, 40),
            "private_key": "{v}",
            "client_email": "svc@proj.iam.gserviceaccount.com",
        }
        return _placed(kind, variant, json.dumps(document, indent=2), escaped)
    if kind == "db_url_password":
        scheme = rng.choice(["postgres", "postgresql", "mysql", "mongodb+srv", "redis"])
        template = f"DATABASE_URL={scheme}://app_user:{{v}}@db{rng.randrange(9)}.corp.net:5432/app"
        return _placed(kind, variant, template, value)
    if kind == "url_basic_auth":
        template = rng.choice(
            [
                "git clone https://deploy:{v}@git.corp.net/team/repo.git",
                '"registry": "https://ci-bot:{v}@npm.corp.net/"',
            ]
        )
        return _placed(kind, variant, template, value)
    if kind == "azure_storage_key":
        template = (
            'AZURE_STORAGE_CONNECTION_STRING="DefaultEndpointsProtocol=https;AccountName=acct'
            f'{rng.randrange(99)};AccountKey={{v}};EndpointSuffix=core.windows.net"'
        )
        return _placed(kind, variant, template, value)
    if kind == "private_key_pem":
        return _placed(kind, variant, "{v}", value)
    return None


def plant(rng: Random, kind: str) -> Plant:
    """A random secret of ``kind`` in a random context fit for it."""
    row = _TABLE_ROWS.get(kind)
    if row is not None:
        value = render(row.sample, rng.getrandbits(32))
        if row.bare:
            template = rng.choice([*BARE, *ASSIGNMENTS])
            return _placed(kind, "table", template, value, name="API_TOKEN")
        return _placed(kind, "table", rng.choice(ASSIGNMENTS), value, name=row.name)
    variant, value = MAKERS[kind](rng)
    special = _special(rng, kind, variant, value)
    if special is not None:
        return special
    names = NAMES.get(kind, ("TOKEN",))
    templates = list(ASSIGNMENTS) if kind in NAMES else []
    if kind not in _NO_BARE:
        templates += [t for t in BARE if "Bearer" not in t or kind in _BEARER]
    template = rng.choice(templates)
    return _placed(kind, variant, template, value, name=rng.choice(names))


# ------------------------------------------------------------------------- hard negatives


def message_id(rng: Random) -> str:
    """An id of a model message."""
    return "msg_01" + chars(rng, ALNUM, 22)


def request_id(rng: Random) -> str:
    """An id of a request."""
    return "req_011C" + chars(rng, ALNUM, 20)


def tool_id(rng: Random) -> str:
    """An id of a tool call."""
    return "toolu_01" + chars(rng, ALNUM, 22)


def png_base64(rng: Random, size: int) -> str:
    """A base64 "PNG" of about ``size`` bytes (a real header, random data)."""
    return base64.b64encode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + rng.randbytes(size)).decode()


def _uuid(rng: Random) -> str:
    hexes = chars(rng, HEX, 32)
    return f"{hexes[:8]}-{hexes[8:12]}-4{hexes[13:16]}-a{hexes[17:20]}-{hexes[20:]}"


PLACEHOLDERS = (
    "OPENAI_API_KEY=<your-api-key>",
    "GITHUB_TOKEN=${GITHUB_TOKEN}",
    'api_key: "your-api-key-here"',
    "ANTHROPIC_API_KEY=sk-ant-api03-...",
    "export STRIPE_SECRET_KEY=sk_live_xxxxxxxxxxxxxxxxxxxxxxxx",
    'token = os.environ["API_TOKEN"]',
    "password: changeme",
    "SECRET_KEY={{ secrets.SECRET_KEY }}",
    "Authorization: Bearer <token>",
    "GH_TOKEN=ghp_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
    "client_secret: ********",
    'DB_PASSWORD="$(cat /run/secrets/db_password)"',
)
"""Documentation examples and placeholders (the whole snippet is the labelled span)."""


def negative(rng: Random) -> Plant:
    """A random hard negative in its usual context."""
    choice = rng.randrange(10)
    if choice == 0:
        return _placed("neg:git_sha", "", "commit {v}", chars(rng, HEX, 40))
    if choice == 1:
        return _placed("neg:uuid", "", '"requestId": "{v}"', _uuid(rng))
    if choice == 2:
        ident = rng.choice([message_id, request_id, tool_id])(rng)
        return _placed("neg:message_id", "", "id {v}", ident)
    if choice == 3:
        digest = base64.b64encode(rng.randbytes(64)).decode()
        return _placed("neg:integrity", "", '"integrity": "{v}"', "sha512-" + digest)
    if choice == 4:
        return _placed("neg:sha256", "", "digest: {v}", "sha256:" + chars(rng, HEX, 64))
    if choice == 5:
        example = rng.choice(
            [
                "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            ]
        )
        return _placed("neg:aws_example", "", "{v}", example)
    if choice == 6:
        url = rng.choice(
            [
                "postgres://postgres:postgres@localhost:5432/postgres",
                "https://user:pass@example.com/x",
                "mysql://root:<password>@127.0.0.1:3306/db",
            ]
        )
        return _placed("neg:placeholder_url", "", "DATABASE_URL={v}", url)
    if choice == 7:
        return _placed("neg:certificate", "", "{v}", _pem(rng, "CERTIFICATE", rng.randrange(3, 12)))
    if choice == 8:
        key = "AAAAC3NzaC1lZDI1NTE5AAAAI" + chars(rng, B64, 43)
        return _placed("neg:ssh_public_key", "", "{v} dev@host", "ssh-ed25519 " + key)
    return _placed("neg:placeholder", "", "{v}", rng.choice(PLACEHOLDERS))


# ------------------------------------------------------------------------------- filler


def _filler_lines(rng: Random) -> list[str]:
    kind = rng.randrange(5)
    if kind == 0:
        return [
            f"{chars(rng, HEX, 7)} {rng.choice(WORDS)}: fix {rng.choice(WORDS)} handling"
            for _ in range(rng.randrange(3, 12))
        ]
    if kind == 1:
        return [
            f"-rw-r--r-- 1 dev dev {rng.randrange(99999):>6} Nov 21 03:22 {w}.py"
            for w in rng.sample(WORDS, rng.randrange(3, 10))
        ]
    if kind == 2:
        return [
            f"tests/test_{w}.py::test_{rng.choice(WORDS)} PASSED"
            for w in rng.sample(WORDS, rng.randrange(3, 10))
        ] + ["=== 9 passed in 0.41s ==="]
    if kind == 3:
        return [
            f'    "node_modules/{w}": {{"version": "1.{rng.randrange(20)}.0", "resolved": '
            f'"https://registry.npmjs.org/{w}/-/{w}-1.0.0.tgz"}},'
            for w in rng.sample(WORDS, rng.randrange(2, 6))
        ]
    return [
        f"def {rng.choice(WORDS)}_{w}(self, {rng.choice(WORDS)}: int) -> None:  # {_uuid(rng)}"
        for w in rng.sample(WORDS, rng.randrange(2, 8))
    ]


COMMANDS = (
    "cat .env",
    "cat config/settings.yaml",
    "git log --oneline",
    "ls -la",
    "pytest -q",
    "cat src/app/config.py",
    "env | sort",
    "kubectl get secret app -o yaml",
)


def tool_output(rng: Random, plants: list[Plant], nested: bool) -> tuple[str, str]:
    """A command and its output holding the plants (a JSON document when ``nested``).

    A bare-context plant may go into the command itself (a ``curl -H``, an ``export``).
    """
    command = rng.choice(COMMANDS)
    texts: list[str] = []
    for item in plants:
        if not nested and item.text.startswith(("curl ", "export ")) and rng.random() < 0.5:
            command = item.text
        else:
            texts.append(item.text)
    lines = _filler_lines(rng)
    for text in texts:
        lines.insert(rng.randrange(len(lines) + 1), text)
    output = "\n".join(lines)
    if nested:
        output = json.dumps({"kind": "Output", "stdout": output, "code": 0}, indent=2)
    return command, output


def prose(rng: Random, plants: list[Plant]) -> str:
    """An assistant's message mentioning the plants."""
    parts = [f"Let me look at the {rng.choice(WORDS)} {rng.choice(WORDS)} first."]
    for item in plants:
        if "\n" in item.text:
            parts.append(f"The file holds:\n```\n{item.text}\n```")
        else:
            parts.append(f"The config has `{item.text}` set.")
    parts.append(f"Next I will update the {rng.choice(WORDS)} tests.")
    return "\n\n".join(parts)
