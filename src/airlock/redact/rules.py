"""The redaction rule table: one row per kind of secret (kind, vendor, pattern, checks, a true
and a false example). The README lists the kinds.

PURE: no I/O. The engine compiles ``RULES`` into one RE2 program and asks ``checks.accepts``
about every candidate it finds. How rows are written: ``patterns.py``. The formats are public
facts (vendors' prefixes, lengths, alphabets, checksums); patterns and examples are our own.

Order matters only for ties at the same position: tokens first, then named formats, then the
generic assignments.
"""

from __future__ import annotations

from airlock.redact.formats.business import BUSINESS
from airlock.redact.formats.cloud import CLOUD
from airlock.redact.formats.common import U
from airlock.redact.formats.developer import DEVELOPER
from airlock.redact.formats.named import NAMED
from airlock.redact.patterns import (
    ASSIGN,
    B64,
    EDGE,
    ELEMENT_END,
    ELEMENT_START,
    ESC_SLASH,
    KEY_SPACE,
    NL,
    QUOTE,
    URL_PASS_CHAR,
    URL_USER,
    VALUE_CHAR,
    VALUE_END,
    Rule,
)

# Names of assignments whose value is a password, or a key / token / secret.
_PASSWORD_NAMES = r"(?i:pass(?:word|wd|phrase)?|pwd)"
_KEY_NAMES = (
    r"(?i:secret|token|api[_\-.]?key|apikey|access[_\-.]?key|private[_\-.]?key|auth[_\-.]?key"
    r"|client[_\-.]?secret|credentials?|signing[_\-.]?key|encryption[_\-.]?key|master[_\-.]?key"
    r"|session[_\-.]?key|x[_\-]api[_\-]key|webhook|app[_\-.]?key)"
)
_CURL_PASS_CHAR = rf"(?:{URL_PASS_CHAR}|[#@^/?|:])"
"""A character of a password given to ``curl -u`` (a URL's, and what a URL would escape)."""
_GENERIC_VALUE = r"(?:[A-Za-z0-9+_\-.~=]|\\*/)"
_SECRET_WORDS = r"(?i:pass|pwd|secret|token|key|credential|auth)"
_NAME_AFTER = rf"[A-Za-z0-9_.\-]*{_SECRET_WORDS}[A-Za-z0-9_.\-]*"
"""A name that may say a secret's kind after its value (the row judges it as ``NAME=value``)."""
_VALUE_BEFORE_NAME = r"(?:[A-Za-z0-9!#$%&*+\-./:;=?@^_|~\[\]{}]|\\+/|\\+u00[0-9a-fA-F]{2})"
"""A character of a value whose name follows: ``VALUE_CHAR`` without the comma that may part the
value from the name's field, and without ``<`` and ``>``."""
_URL_OR_DN_USER = r"[A-Za-z0-9._%~+\-=,]+"
"""A URL's user name, or an LDAP distinguished name (``ldap://cn=admin,dc=corp:…@host``)."""

_AWS_KEY_ID_PREFIX = "(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])"
_AWS_KEY_ID = rf"{_AWS_KEY_ID_PREFIX}[A-Z0-9]{{16}}"
"""An AWS access key ID (its scan pattern; the row checks the length of a longer run)."""

_PEM = "-----BEGIN RSA PRIVATE KEY-----\n{b64}\n{b64}\n{b40}==\n-----END RSA PRIVATE KEY-----\n"

HAND: tuple[Rule, ...] = (
    Rule(
        "aws_secret_access_key",
        # Also the command line's ways (``aws configure set aws_secret_access_key …``,
        # ``--aws-secret-access-key …``) and a list's next item (``["aws_secret_access_key",
        # "…"]``): the name and a value of exactly this shape are the key wherever they meet.
        # And the cell after an access key ID in a CSV row, as the console's credentials file
        # writes them (``User name,Password,Access key ID,Secret access key,…`` or ``Access
        # key ID,Secret access key``): the engine finds the key ID before it as a token.
        rf"(?:(?i:aws[_\-]?secret[_\-]?(?:access[_\-]?)?key|secretaccesskey)"
        rf"(?:{ASSIGN}|{QUOTE}?[ \t]+{QUOTE}?|{QUOTE}[ \t]*,[ \t]*{QUOTE})"
        rf"|{EDGE}{_AWS_KEY_ID}{QUOTE}?[ \t]*[,;\t][ \t]*{QUOTE}?)"
        rf"(?P<secret>(?:[A-Za-z0-9+]|{ESC_SLASH})+){VALUE_END}",
        "secret",
        40,
        40,
        min_entropy=3.5,
        vendor="Amazon Web Services",
        sample="AWS_SECRET_ACCESS_KEY={b40}",
        counter="aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        name="AWS_SECRET_ACCESS_KEY",
    ),
    Rule(
        "private_key_pem",
        rf"(?P<secret>-----BEGIN[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----"
        rf"(?:{KEY_SPACE}+(?:Proc-Type|DEK-Info|Comment):[^\\\r\n]*)*"
        # At least a few characters of body, so a run of bare headers is no candidate at all.
        rf"{KEY_SPACE}*{B64}{B64}{B64}{B64}{B64}{B64}{B64}{B64}"
        rf"(?:{KEY_SPACE}|{B64})*"
        rf"(?:-----END[ A-Z0-9]* PRIVATE KEY(?: BLOCK)?-----(?:{NL})?)?)",
        "private key",
        min_length=64,
        bare=True,
        vendor="PEM (RSA, EC, OpenSSH, PKCS #8, PGP)",
        sample=_PEM,
        counter="-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----",
    ),
    Rule(
        "pypi_token",
        rf"(?P<secret>pypi-AgE(?:IcHlwaS5vcmc|NdGVzdC5weXBpLm9yZw){U}+)",
        "pypi-age",
        min_length=60,
        bare=True,
        vendor="PyPI",
        sample="pypi-AgEIcHlwaS5vcmc{u70}",
        counter="pypi-AgEIcHlwaS5vcmc...",
    ),
    Rule(
        "slack_webhook",
        rf"(?P<secret>https?:{ESC_SLASH}{ESC_SLASH}hooks\.slack\.com{ESC_SLASH}"
        rf"(?:services|workflows|triggers){ESC_SLASH}(?:[A-Za-z0-9_]|{ESC_SLASH})+)",
        "hooks.slack.com",
        min_length=50,
        bare=True,
        vendor="Slack",
        sample="https://hooks.slack.com/services/T{U10}/B{U10}/{a24}",
        counter="https://hooks.slack.com/services/T000/B000/XXXXXXXX",
    ),
    Rule(
        "aws_access_key_id",
        rf"{EDGE}(?P<secret>{_AWS_KEY_ID_PREFIX}[A-Z0-9]+)\b",
        "a",
        20,
        20,
        min_entropy=2.5,
        bare=True,
        vendor="Amazon Web Services",
        sample="AKIA{B16}",
        counter="AKIAIOSFODNN7EXAMPLE",
    ),
    Rule(
        "azure_storage_key",
        rf"(?i:AccountKey|SharedAccessKey)=(?P<secret>{B64}+)",
        "accountkey",
        40,
        min_entropy=3.5,
        vendor="Microsoft Azure",
        sample="DefaultEndpointsProtocol=https;AccountName=a;AccountKey={b86}==;",
        counter="AccountKey=<your-account-key>",
    ),
    Rule(
        "gcp_service_account_key",
        rf"private_key{QUOTE}[ \t]*:[ \t]*{QUOTE}(?P<secret>-----BEGIN PRIVATE KEY-----"
        rf"(?:{KEY_SPACE}|{B64})+(?:-----END PRIVATE KEY-----(?:{NL})?)?)",
        "private_key",
        min_length=64,
        secret_from="-----BEGIN PRIVATE KEY-----",  # noqa: S106 - a literal, no password
        vendor="Google Cloud",
        sample='{"private_key": "-----BEGIN PRIVATE KEY-----\\n{b64}\\n{b64}\\n-----END PRIVATE KEY-----\\n"}',
        counter='{"private_key_id": "{h40}"}',
    ),
    Rule(
        "freemius_sdk_secret",
        # The SDK's settings array (``fs_dynamic_init``) names the key ``secret_key`` and no
        # vendor; its alphabet holds punctuation that ends a generic value.
        rf"secret_key{QUOTE}[ \t]*(?:=>|[:=])[ \t]*{QUOTE}"
        rf"(?P<secret>sk_[A-Za-z0-9<>;\[\]{{}}!.#$%&*+=?^_|~\-]+){QUOTE}",
        "secret_key",
        32,
        32,
        min_entropy=3.0,
        specific=False,  # a Stripe key in its place keeps its own kind
        vendor="Freemius (the SDK's secret_key)",
        sample="fs_dynamic_init( array( 'id' => '1234', 'secret_key' => 'sk_{a12}#{a8}!{a7}' ) );",
        counter="fs_dynamic_init( array( 'id' => '1234', 'secret_key' => 'sk_YOUR_SECRET_KEY' ) );",
    ),
    Rule(
        "jwt",
        rf"(?P<secret>eyJ{U}+\.eyJ{U}+\.{U}+)",
        "eyj",
        min_length=40,
        min_entropy=3.0,
        bare=True,
        vendor="JSON Web Token (any issuer)",
        sample="eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ{u20}.{u43}",
        counter="eyJhbGciOiJIUzI1NiJ9.eyJ...",
    ),
)
"""Rows written by hand: key files, URLs and the formats the helpers do not fit (the first two go
before the tokens)."""

TOKENS: tuple[Rule, ...] = DEVELOPER + CLOUD + BUSINESS
"""Formats with a prefix: found bare, in any context (``formats/``, by group of vendors)."""


GENERIC: tuple[Rule, ...] = (
    Rule(
        "nuget_config_password",
        rf"(?i:ClearTextPassword|Password){QUOTE}[ \t]+value={QUOTE}(?P<secret>[^\"'\\\r\n<>]+){QUOTE}",
        "password",
        min_length=6,
        max_length=256,
        min_entropy=2.0,
        specific=False,
        vendor="NuGet (nuget.config)",
        sample='<add key="ClearTextPassword" value="{a16}" />',
        counter='<add key="ClearTextPassword" value="$(NUGET_PASSWORD)" />',
    ),
    Rule(
        "db_url_password",
        rf"(?i:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver"
        rf"|oracle|clickhouse|cockroachdb|couchdb|neo4j|nats|kafka|cloudinary):{ESC_SLASH}{ESC_SLASH}"
        rf"(?:{URL_USER})?:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
        vendor="database connection strings",
        sample="postgres://app:{a18}@db.corp.net:5432/app",
        counter="postgres://postgres:postgres@localhost:5432/postgres",
    ),
    Rule(
        "url_basic_auth",
        # Schemes listed, not any word before "://": a scan that follows every word as a possible
        # scheme makes RE2's automaton much larger (half the speed).
        rf"(?i:https?|ftps?|sftp|git\+https?|git\+ssh|ssh|svn|ldaps?|smtps?|imaps?|pop3s?|rtsps?"
        rf"|socks[45]h?|smb|webdavs?|davs?|mqtts?|wss?|snowflake|jdbc:[a-z]+):{ESC_SLASH}{ESC_SLASH}"
        rf"{_URL_OR_DN_USER}:(?P<secret>{URL_PASS_CHAR}+)@",
        "://",
        specific=False,
        vendor="URLs with credentials",
        sample="https://deploy:{a18}@git.corp.net/repo.git",
        counter="https://user:pass@example.com/",
    ),
    Rule(
        "azure_sas_signature",
        rf"[?&](?:amp;)?sig=(?P<secret>(?:[A-Za-z0-9+]|{ESC_SLASH}|%2[BbFf]|%3[Dd])+)(?:&|{VALUE_END})",
        "sig=",
        min_length=40,
        max_length=160,
        min_entropy=3.5,
        vendor="Microsoft Azure (shared access signatures in URLs)",
        sample="https://corp.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig={a43}%3D",
        counter="https://corp.blob.core.windows.net/c/f?sv=2022-11-02&sp=r&sig=<signature>",
    ),
    Rule(
        "curl_basic_auth",
        rf"(?:\s-u|--user)[ =]?[ \t]*{QUOTE}?[A-Za-z0-9._%~+@\-]+{QUOTE}?:{QUOTE}?"
        rf"(?P<secret>{_CURL_PASS_CHAR}+){VALUE_END}",
        "-u",
        min_length=6,
        max_length=256,
        min_entropy=2.0,
        specific=False,
        vendor="curl -u user:password",
        sample="curl -u deploy:{a18} https://api.corp.net",
        counter="curl -u user:${PASSWORD} https://api.corp.net",
    ),
    Rule(
        "curl_header_token",
        # A header that carries a credential and names no vendor (a vendor's word is its row's),
        # in a curl command: short tokens too, which the generic rule's floors let pass.
        rf"(?:\s-H|--header)[ =]?[ \t]*{QUOTE}(?:(?i:authorization):[ \t]*"
        rf"(?:(?i:bearer|token|basic|api-token)[ \t]+)?|(?i:x-)?(?i:api-?key|api-?token|auth-?token"
        rf"|access-?token|private-token|token):[ \t]*)(?P<secret>{_GENERIC_VALUE}{{8,}}){VALUE_END}",
        "-h",
        min_length=8,
        max_length=512,
        min_entropy=2.5,
        mixed=True,
        specific=False,
        vendor="curl -H with a credential header",
        sample="curl -H 'Api-Token: {a9}7' https://api.corp.net/v1",
        counter="curl -H 'Api-Token: $API_TOKEN' https://api.corp.net/v1",
    ),
    Rule(
        "generic_password",
        rf"(?:{_PASSWORD_NAMES}{ASSIGN}|{ELEMENT_START}{_PASSWORD_NAMES}{ELEMENT_END}"
        rf"|\s-p{QUOTE}|--password[ =]{QUOTE}?)"
        rf"(?P<secret>{VALUE_CHAR}{{6,}}){VALUE_END}",
        "pass",
        min_length=8,
        max_length=256,
        min_entropy=2.5,
        mixed=True,
        specific=False,
        vendor="passwords in assignments",
        sample="DB_PASSWORD={a8}7Q{a8}",
        counter="password: changeme",
        name="DB_PASSWORD",
    ),
    Rule(
        "generic_api_key",
        rf"(?:{_KEY_NAMES}{ASSIGN}|{ELEMENT_START}{_KEY_NAMES}{ELEMENT_END}"
        rf"|(?i:authorization):[ \t]*(?:(?i:bearer|token|basic|api-token)[ \t]+)?"
        rf"|(?i:x-auth-token|x-api-key|private-token|api-key|api-token|apikey|x-[a-z]+-apikey):[ \t]*"
        rf"|(?i:key|token|secret)(?: is|[A-Za-z ]*:)[ \t]+)"
        rf"(?P<secret>{_GENERIC_VALUE}{{12,}}){VALUE_END}",
        "key",
        min_length=16,
        max_length=512,
        min_entropy=3.0,
        mixed=True,
        specific=False,
        vendor="keys, tokens and secrets in assignments and headers",
        sample="SESSION_SECRET={a16}9{a15}",
        counter='"max_tokens": 123456789012',
        name="SESSION_SECRET",
    ),
)
"""Passwords and keys found by the name beside them, whatever their vendor."""

NAME_AFTER: tuple[Rule, ...] = (
    Rule(
        "value_before_name",
        # A record's ``value`` field, then its ``name`` (or ``key``) field: JSON, YAML (also a
        # list item's next line, ``- value: …`` then ``name: …``), INI, XML attributes.
        # (The value's length is checked on the candidate: a counted repeat here, or a start
        # on any byte, made the scan's automaton much larger; prose that names a value after
        # it, ``… is the API key``, can start anywhere and made the scan 20 times slower.)
        rf"(?:\b|\\+[nrt])(?i:value){QUOTE}?[ \t]*[:=][ \t]*{QUOTE}?"
        rf"(?P<secret>{_VALUE_BEFORE_NAME}+)"
        rf"{QUOTE}?[ \t]*[,;]?[ \t]*(?:{NL}[ \t]*)?(?:-[ \t]+)?{QUOTE}?(?i:name|key){QUOTE}?"
        rf"[ \t]*[:=][ \t]*{QUOTE}?{_NAME_AFTER}",
        "value",
        min_length=6,
        max_length=512,
        specific=False,
        vendor="records whose value comes before its name",
        sample='{"value": "{a8}7Q{a8}", "name": "DB_PASSWORD"}',
        counter='{"value": "{a16}", "name": "DB_HOST"}',
        name_after=True,
    ),
)
"""Secrets whose name follows them: each is judged by the row its name would give it first."""

RULES: tuple[Rule, ...] = HAND[:2] + TOKENS + HAND[2:] + NAMED + GENERIC + NAME_AFTER
"""The built-in table. The AWS secret key's row comes first: at an access key ID followed by a
CSV cell, its match (the ID and the key after it) wins over the ID's own, which would hide the
key."""
