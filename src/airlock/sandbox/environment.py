"""The sandbox's environment: the caller's, less what looks like a credential, plus the proxy.

A variable is dropped when its name matches a row of :data:`CREDENTIAL_VARIABLES` (names are
compared upper-cased, shell-style patterns), or, whatever its name, when its value holds a
password, a key or a token (:func:`credential_value_reason`: a URL with one in its userinfo,
``redis://:secret@host``, a connection string's ``password=``, a Java option's
``-D…password=``, an HTTP header's ``Authorization: …``, a token of a known kind, a
credential variable set in it: ``PGPASSWORD=… pg_dump``), unless the user passed it with
``--env NAME``; ``--env NAME=VALUE`` sets one, NAME any name the environment can hold
(``db-pass``, ``stripe.api-key``: dropped as credentials, so ``--env`` must reach them). The
names left out are reported; why each looks like a credential is in
:attr:`ScrubbedEnvironment.reasons`. With ``--repo``, any variable whose value holds the git
gateway's token is dropped too (:func:`drop_holding`; one passed with ``--env`` stops the
run). The proxy variables of the caller are replaced by the sandbox's own
(:func:`proxy_variables`), whatever ``--env`` says: the only way out is airlock's proxy.
``--env NO_PROXY=…`` alone is taken (both spellings set): it says what goes to the sandbox's
own loopback instead.
``NODE_USE_ENV_PROXY=1`` is set too, unless the user set it (:data:`NODE_PROXY_SWITCH`).

The caller's temporary folder (``TMPDIR``, ``TMP``, ``TEMP``) is set to ``/tmp`` inside when
the folder it names will not be there (:func:`missing_inside`: pam_tmpdir's ``/tmp/user/UID``
under the sandbox's private, empty ``/tmp``), and ``XDG_RUNTIME_DIR`` (``/run/user/UID``,
under its private ``/run``) is left out then: ``mktemp`` would fail, and a program would
look for its sockets where there are none. No folder is made outside for them.

The patterns are meant to catch what is a credential, not every name that holds the letters:
``*_PASS`` and ``*_PWD`` (``DB_PASS``, ``MYSQL_PWD``), not ``*PASS*`` (``PASSAGE_DIR``,
``BYPASS``) nor ``*PWD`` (``PWD``, ``OLDPWD``); ``BW_SESSION`` and ``OP_SESSION_*``, not
``*_SESSION`` (``DESKTOP_SESSION``); ``GIT_CONFIG_COUNT``, ``GIT_CONFIG_KEY_*``,
``GIT_CONFIG_VALUE_*`` and ``GIT_CONFIG_PARAMETERS`` (git configuration given in the
environment, where ``http.extraHeader`` can carry a token), not ``GIT_CONFIG_NOSYSTEM`` or
``GIT_CONFIG_GLOBAL`` (a file's name).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from airlock.errors import UsageError

CREDENTIAL_VARIABLES: tuple[tuple[str, str], ...] = (
    ("*TOKEN*", "a token (GITHUB_TOKEN, NPM_TOKEN, CLAUDE_CODE_OAUTH_TOKEN, …)"),
    ("*_KEY", "a key (ANTHROPIC_API_KEY, OPENAI_API_KEY, …)"),
    ("*_KEYS", "keys"),
    ("*API_KEY*", "an API key"),
    ("*APIKEY*", "an API key"),
    ("*PRIVATE_KEY*", "a private key"),
    ("*SECRET*", "a secret"),
    ("*PASSWORD*", "a password"),
    ("*PASSWD*", "a password"),
    ("*PASSPHRASE*", "a passphrase"),
    ("*_PASS", "a password (DB_PASS, SMTP_PASS, …)"),
    ("*_PWD", "a password (MYSQL_PWD, …)"),
    ("*CREDENTIAL*", "credentials (GOOGLE_APPLICATION_CREDENTIALS, …)"),
    ("*_AUTH", "authentication data"),
    ("*_AUTH_*", "authentication data"),
    ("*COOKIE*", "a cookie"),
    ("*_PAT", "a personal access token"),
    ("*JWT", "a JSON Web Token (CI_JOB_JWT, …)"),
    ("*_JWT_*", "a JSON Web Token (CI_JOB_JWT_V2, …)"),
    ("*AUTHORIZATION*", "an HTTP Authorization header"),
    ("*AUTH_HEADER*", "an HTTP Authorization header"),
    ("*BEARER*", "a bearer token"),
    ("BW_SESSION", "a Bitwarden session key"),
    ("OP_SESSION_*", "a 1Password session token"),
    ("GIT_CONFIG_PARAMETERS", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_COUNT", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_KEY_*", "git configuration (http.extraHeader can carry a token)"),
    ("GIT_CONFIG_VALUE_*", "git configuration (http.extraHeader can carry a token)"),
    ("*_DSN", "a connection string that may hold a password"),
    ("AWS_*", "AWS account settings"),
    ("AZURE_*", "Azure account settings"),
    ("ARM_*", "Azure account settings (Terraform)"),
    ("GOOGLE_*", "Google Cloud account settings"),
    ("CLOUDSDK_*", "Google Cloud SDK settings"),
    ("GCLOUD_*", "Google Cloud SDK settings"),
    ("KUBECONFIG", "a Kubernetes credentials file"),
    ("DOCKER_HOST", "a Docker daemon address"),
    ("DOCKER_CONFIG", "a Docker credentials folder"),
    ("SSH_AUTH_SOCK", "the SSH agent's socket"),
    ("SSH_AGENT_PID", "the SSH agent"),
    ("GPG_AGENT_INFO", "the GnuPG agent's socket"),
    ("DBUS_SESSION_BUS_ADDRESS", "the D-Bus session bus"),
    ("NETRC", "a credentials file"),
    ("VAULT_*", "HashiCorp Vault settings"),
    ("*WEBHOOK", "a webhook URL (its path is the secret: Slack's, Discord's, Teams', …)"),
    ("*WEBHOOK_URL*", "a webhook URL (its path is the secret: Slack's, Discord's, Teams', …)"),
    ("*_CREDS", "credentials (Jenkins' credentials() binding, user:password)"),
    ("*_CRED", "credentials"),
    ("*_PSW", "a password (Jenkins' X_PSW)"),
    ("*_PW", "a password (DB_PW, …)"),
    ("*BINDPW*", "an LDAP bind password"),
    ("*PRIVATEKEY*", "a private key"),
    ("*SIGNINGKEY*", "a signing key (ORG_GRADLE_PROJECT_signingKey, …)"),
    ("*AUTHKEY*", "an auth key (TS_AUTHKEY, TAILSCALE_AUTHKEY, …)"),
    ("*_OAUTH", "an OAuth secret"),
    ("*OAUTH_*", "an OAuth secret"),
    ("*_SALT", "a secret salt (WordPress' AUTH_SALT, …)"),
    ("BUNDLE_*__*", "Bundler's credentials for a host (BUNDLE_RUBYGEMS__PKG__GITHUB__COM)"),
    ("VSS_NUGET_EXTERNAL_FEED_ENDPOINTS", "NuGet feeds' credentials"),
    ("SSHPASS", "a password (sshpass -e)"),
    ("FASTLANE_SESSION", "an Apple ID session"),
    ("SONAR_LOGIN", "a SonarQube token"),
    ("ETCDCTL_USER", "etcd's user and password"),
    ("KUBE_CONFIG*", "Kubernetes credentials (KUBE_CONFIG_DATA, …)"),
    ("OTEL_EXPORTER_OTLP_HEADERS", "OpenTelemetry exporter headers (a vendor's API key)"),
    ("OTEL_EXPORTER_OTLP_*_HEADERS", "OpenTelemetry exporter headers (a vendor's API key)"),
    ("KRB5CCNAME", "a Kerberos ticket cache"),
    ("KRB5_CLIENT_KTNAME", "a Kerberos keytab"),
    ("KRB5_KTNAME", "a Kerberos keytab"),
    ("KEY", "a key"),
    ("PASS", "a password"),
    ("PW", "a password"),
    ("AUTH", "authentication data"),
    ("PAT", "a personal access token"),
    ("CRED", "credentials"),
    ("CREDS", "credentials"),
)
"""Names that look like credentials: (pattern on the upper-cased name, what it is). A pattern is
text with ``*`` standing for any text (``*_KEY``, ``*TOKEN*``, ``BUNDLE_*__*``). The bare
words last (``KEY``, ``PASS``, ``AUTH``, …): ``*_KEY`` and its kind need a ``_`` before the
word, and ``key``, ``pass`` or ``Auth`` alone name the secret as plainly."""

NOT_CREDENTIAL_VARIABLES: tuple[str, ...] = (
    "TOKENIZERS_PARALLELISM",
    "TIKTOKEN_*",
    "*MAX_*TOKENS",
    "PASSWORD_STORE_*",
    "GPG_KEY",
    "GCM_CREDENTIAL_STORE",
    "*_PUBLISHABLE_KEY",
    "*_PUBLIC_KEY",
    "STARSHIP_SESSION_KEY",
    "OS_AUTH_URL",
    "*_AUTH_TYPE",
    "*_AUTH_MODE",
    "*_AUTH_METHOD",
    "AWS_CA_BUNDLE",
    "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
)
"""Names a row of :data:`CREDENTIAL_VARIABLES` matches that hold no credential: a setting of
Hugging Face's tokenizers, tiktoken's (a library's name: ``TIKTOKEN_CACHE_DIR``,
``TIKTOKEN_ENCODINGS_BASE``), a count of tokens, ``TOKENS`` after a ``MAX_``
(``MAX_THINKING_TOKENS``, ``CLAUDE_CODE_MAX_OUTPUT_TOKENS``, ``MAX_MCP_OUTPUT_TOKENS``: the
agents' own settings), ``pass``'s settings (its store is hidden: :mod:`airlock.sandbox.stores`),
the release-signing key's fingerprint Python's container images set, Git Credential Manager's
choice of store, Stripe's publishable key and any ``*_PUBLIC_KEY`` (public by design: kitty's
``KITTY_PUBLIC_KEY``), Starship's prompt session id, OpenStack's identity URL, an
authentication's kind (``OS_AUTH_TYPE``, ``HTTP_AUTH_MODE=basic``), the CA bundles AWS's and
Google Cloud's tools trust (a file of certificates). Their values are still looked at
(:func:`credential_value_reason`)."""

URL_USERINFO_PATTERN = r"://[^\s/?#@:]*:[^\s/?#@]+@(?!sha(?:256|384|512):)"
"""A URL with a password in its userinfo, anywhere in a value: ``scheme://user:password@``,
``scheme://:password@`` (``REDIS_URL``, ``MONGODB_URI``, ``CELERY_BROKER_URL``, a list of
them). A user alone (``ssh://git@host``) is no password, nor an image's tag and digest
(``docker://alpine:3.20@sha256:…``)."""

URL_TOKEN_USER_PATTERN = (
    r"://(?:(?:gh[pousr]_|github_pat_|glpat-|gldt-|xox[abpr]-|hf_|npm_|pypi-)[\w-]{20,}"  # noqa: S105 - a pattern
    r"|[A-Za-z0-9_-]{30,})@"
)
"""A URL whose user is a token (no password after it): ``https://ghp_…@github.com/org/repo``,
``https://<PAT>@dev.azure.com/…`` (code hosts take a token as the user name). A token is a
user name with a known token prefix (GitHub's ``ghp_``, ``github_pat_``, GitLab's ``glpat-``,
Slack's ``xoxb-``, Hugging Face's ``hf_``, npm's, PyPI's) and 20 or more characters after it,
as every such token has (``npm_builder1`` is a login), or one of at least 30 letters, digits,
``_`` and ``-``: no person's or service's login name is that long."""

CONNECTION_STRING_PATTERN = (
    r"(?i)(?:^|[;?&\s._-])pass(?:word|wd)\s*=\s*[^\s;&]|;\s*pwd\s*=\s*[^\s;&]"
    r"|(?:^|;)\s*(?:accountkey|sharedaccesskey|sharedaccesssignature)\s*=\s*[^\s;]"
)
"""A connection string's password: ``Password=…;`` (ADO.NET), ``?password=…`` (JDBC),
``password=…`` (libpq's keywords), ``;PWD=…`` (ODBC), an Azure connection string's
``AccountKey=``, ``SharedAccessKey=`` or ``SharedAccessSignature=``; not empty.

These are compiled at their first use (``re`` keeps them), only for a value that holds their
fixed parts: most environments have none (start-up time)."""

JAVA_OPTION_PATTERN = (
    # changeit is the JDK's well-known default password of its truststore (cacerts), printed in
    # its documentation: no secret, and the option is what points Java at a corporate CA.
    r"-D(?![\w.-]*trustStorePassword=changeit(?![^\s\"']))"
    r"(?:(?:[\w.-]*[._-])?(?i:pass|password|passwd|pwd|secret|token|key|apikey)=\S"
    r"|[\w.-]*[a-z](?:Pass|Password|Passwd|Secret|Token)=\S"
    r"|[\w.-]*(?i:api|secret|access|private|signing|master|encryption|auth|license|hmac)Key=\S)"
)
"""A Java option whose name ends with a password, a secret, a token or a key, a word of its
own (after ``.``, ``_``, ``-`` or in camelCase; a camelCase key after ``api``, ``secret``,
``access``, ``private``, ``signing``, ``master``, ``encryption``, ``auth``, ``license`` or
``hmac``), not empty: ``-Dmaven.repo.pass=…``, ``-Djavax.net.ssl.keyStorePassword=…``,
``-Dspring.datasource.password=…``, ``-Dhttp.proxyPassword=…``, ``-Dsonar.token=…``,
``-Daws.secretKey=…``, ``-DapiKey=…``, ``-Dpassword=…``; not ``-Djavax.net.ssl.keyStore=`` (a
file's name), ``-Dsigning.keyId=``, ``-Dfile.encoding=``, ``-Dsonar.projectKey=`` (a project's
public id), nor ``-Djavax.net.ssl.trustStorePassword=changeit`` (the JDK's default)."""

HTTP_HEADER_PATTERN = (
    r"(?i)(?:^|[\s\"'{,;])(?:(?:proxy-)?authorization|[\w-]*(?:api-?key|auth-key|-token|-secret))"
    r"[\"']?\s*:\s*[\"']?"
    r"(?:(?:bearer|basic|token|digest|negotiate|ntlm|apikey|key|ssws|splunk|aws4-hmac-sha256)"
    r"\s+[^\s\"',;]{3,}|[^\s\"',;]{8,})"
    r"(?=[\"',;]|[ \t]*(?:[\r\n]|$))"
)
"""An HTTP header that carries a credential: ``Authorization: token …``,
``Proxy-Authorization: Basic …``, ``X-Api-Key: …``, ``X-Auth-Token: …``, ``Private-Token: …``
(GitLab's), ``X-Vault-Token: …``, in JSON too (``{"X-Api-Key": "…"}``), whose value looks like a
credential: one word of 8 or more characters, or a scheme (``Bearer``, ``Basic``, ``token``, …)
and a word of 3 or more, the line's or the quoted value's end after it (``Auth-Key: see wiki``,
``{"next-token": "abc"}`` are prose and a page's cursor). Tried only for a value with a ``:``
and one of :data:`HTTP_HEADER_WORDS` in it."""

HTTP_HEADER_WORDS = ("authorization", "key", "token", "secret")

BASIC_CREDENTIALS_PATTERN = r"(?i)(?:^|[\s\"':=])basic\s+([A-Za-z0-9+/]{6,}={0,2})(?![\w+/=])"
"""HTTP Basic authentication's ``Basic <base64 of user:password>``, whatever precedes it; the
base64 must decode to text with a ``:`` in it (``Basic mode`` is no credential)."""

DOCKER_AUTH_PATTERN = r'(?i)"auth"\s*:\s*"([A-Za-z0-9+/]{8,}={0,2})"'
"""Docker's ``config.json``: ``"auth": "<base64 of user:password>"``; the base64 must decode to
text with a ``:`` in it (``"auth": "oauth"``, an MCP server's kind of authentication, is no
credential)."""

JSON_WHAT = "JSON with a password, secret, key or token in it (Docker's config.json, …)"

URL_QUERY_PATTERN = (
    r"(?i)[?&](?:api[_-]?key|(?:access|auth|refresh|id|private)[_-]?token|token"
    r"|client[_-]?secret|secret)=(?!\$)[^&#\s]"
)
"""A URL's query that carries a key or a token, not empty nor a ``$VARIABLE``:
``?api_key=…``, ``&access_token=…``, ``?token=…``, ``?secret=…`` (an ``otpauth://`` URI's); not
``?page_token=`` nor ``?token_type=``. Tried only for a value with ``=``, a ``?`` or ``&``,
and ``token``, ``key`` or ``secret`` in it."""

MAILGUN_KEY_PATTERN = r"(?<![A-Za-z0-9])key-[0-9a-f]{32}(?![A-Za-z0-9])"
"""A Mailgun API key of the older kind, ``key-`` and 32 hex digits. Its value cannot be told
from ``key-`` and an MD5 digest (a cache's key, ``key-d41d8cd98f00b204e9800998ecf8427e``), so
it counts only when the variable's name says nothing of a cache or a hash
(:data:`HASH_NAME_WORDS`): dropping the row instead would let a Mailgun key under a neutral name
through, and a digest under a neutral name is rare (``--env NAME`` passes one in)."""

HASH_NAME_WORDS = ("CACHE", "HASH", "DIGEST", "CHECKSUM", "MD5", "ETAG", "FINGERPRINT")

ASSIGNMENT_PATTERN = (
    r"(?:^|[\s;|(,\"'])([A-Za-z_][\w.-]{0,63})=(?![\"']?[$%{<`])[\"']?([^\s\"';&|`]*)"
)
"""A variable set inside a value: ``NAME=VALUE`` at the value's start or after a space, a
``;``, ``|``, ``(``, ``,`` or a quote (a command line's ``PGPASSWORD=… pg_dump``, a
container's ``-e API_TOKEN=…``, a ``.env`` file's lines, Terraform's ``-var db_password=…``),
its value up to the next space, quote, ``;``, ``&`` or ``|``; not a ``$VARIABLE``, ``%VAR%``,
``{{ template }}`` or ``<placeholder>``. A name starts with a letter or ``_``: an option's
``--jobserver-auth=`` (``MAKEFLAGS``) or ``-DUSE_KEY=ON`` is no variable; nor is a URL's
query after ``?`` or ``&`` (``&token_type=bearer``: :data:`URL_QUERY_PATTERN` reads those)."""

ASSIGNMENT_ROWS = frozenset(
    {
        "*TOKEN*", "*API_KEY*", "*APIKEY*", "*PRIVATE_KEY*", "*SECRET*", "*PASSWORD*",
        "*PASSWD*", "*PASSPHRASE*", "*_PASS", "*_PWD", "*_PAT", "*JWT", "*_JWT_*", "*_CREDS",
        "*_PSW", "*_PW", "*BINDPW*", "*PRIVATEKEY*", "*SIGNINGKEY*", "*AUTHKEY*", "SSHPASS",
        "BW_SESSION", "OP_SESSION_*",
    }
)  # fmt: skip
"""The rows of :data:`CREDENTIAL_VARIABLES` whose variables hold the secret itself: a variable
set inside a value (:data:`ASSIGNMENT_PATTERN`) counts only when its name matches one of them.
``AWS_REGION=…``, ``DOCKER_HOST=…``, ``PARTITION_KEY=id`` or ``GOOGLE_APPLICATION_CREDENTIALS=``
a file are settings and names, no secret written out."""

ASSIGNMENT_WORDS = ("TOKEN", "KEY", "SECRET", "PASS", "PW", "PAT", "JWT", "CRED", "PSW", "SESSION")
"""Words one of which a value's upper-cased text must hold for :data:`ASSIGNMENT_PATTERN` to be
tried (start-up time)."""

NO_SECRET_WORDS = frozenset({"true", "false", "yes", "no", "on", "off", "none", "null", "nil"})
"""Values a variable set inside a value may have that are a switch, not a secret
(``USE_TOKEN=yes``)."""

SECRET_VALUE_PATTERNS: tuple[tuple[str, str, str], ...] = (
    ("PRIVATE KEY", r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY", "a private key (PEM)"),
    (
        '"',
        r'(?i)"[\w.-]*(?:password|passwd|secret|private_key)"\s*:\s*"[^"]'
        r'|"[\w.-]*(?:api_?key|token)"\s*:\s*"[^"\s]{8,}"',
        JSON_WHAT,
    ),
    (
        "@",
        # A user that is a number is a version, not a login: kitty's KITTY_PUBLIC_KEY is
        # ``1:<base85>``, and base85 holds ``@``.
        r"^(?![0-9]+:)[^\s:/@]+:[^\s/@]+@(?!sha(?:256|384|512):)[^\s/@]+(?:/\S*)?$",
        "user:password@host",
    ),
    (
        "earer",
        r"(?i)(?:^|[\s\"':=])bearer\s+(?:(?=[\w.~+/=-]*[0-9])[\w.~+/=-]{8,}|[\w.~+/=-]{20,})",
        "a bearer token",
    ),
    (
        "hook",
        r"(?i)(?:hooks\.slack\.com/(?:services|workflows)/|discord(?:app)?\.com/api/webhooks/"
        r"|webhook\.office\.com/|outlook\.office\.com/webhook/)\S",
        "a webhook URL (its path is the secret)",
    ),
    (
        "racle:",
        r"(?i)jdbc:oracle:\w+:[^/@\s:]+/[^@\s]+@",
        "an Oracle URL with a password (user/password@)",
    ),
    (
        "sig=",
        r"(?:^|[?&])sig=[\w%+/=-]{16,}",
        "a signed URL's signature (an Azure SAS token's sig=)",
    ),
    (
        "Signature=",
        r"[?&]X-(?:Amz|Goog)-Signature=[0-9a-f]{32,}",
        "a signed URL's signature (S3's or Cloud Storage's X-Amz-Signature=, X-Goog-Signature=)",
    ),
    (":AA", r"(?<![0-9])[0-9]{8,10}:AA[\w-]{33}(?![\w-])", "a Telegram bot token"),
    ("SK", r"(?<![A-Za-z0-9])SK[0-9a-f]{32}(?![A-Za-z0-9])", "a Twilio API key (SK…)"),
    ("eyJ", r"(?<![\w-])eyJ[\w-]{8,}\.eyJ[\w-]{8,}\.[\w-]{16,}", "a JSON Web Token (eyJ….eyJ….…)"),
    ("oken", r"(?i)(?:^|[\s\"':=])token\s+[0-9a-f]{20,}(?![\w-])", "a token (Token <hex>)"),
    (
        ":_",
        r"(?i):_(?:authtoken|auth|password)\s*=\s*(?!\$)\S",
        "an npm registry's credential (//registry/:_authToken=…)",
    ),
    (
        "--pass",
        r"(?:^|\s)--pass(?:word|wd)(?:=|\s+)(?![\"']?[$-])[\"']?[^\s\"']",
        "a password on a command line (--password …)",
    ),
    (
        "-p",
        r"(?<![\w.-])(?:mysql(?:dump|admin|import|check|show|slap)?|mariadb(?:-dump|-admin)?)"
        r"(?![\w.-])[^|;&\n]*?\s-p(?![\"']?\$)\S",
        "a password on a command line (mysql -p…)",
    ),
    (
        "",
        r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{50,}|glpat-[\w-]{20,}"
        r"|xox[abposr]-[\w-]{10,}|sk-ant-[\w-]{20,}|sk-proj-[\w-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}"
        r"|hf_[A-Za-z0-9]{30,}|npm_[A-Za-z0-9]{36}|pypi-AgE[\w-]{50,}|[sr]k_live_[A-Za-z0-9]{20,}"
        r"|tskey-[a-z]+-[\w-]{10,}|squ_[0-9a-f]{40}|dop_v1_[0-9a-f]{64}|AIza[\w-]{35}"
        r"|sk-[A-Za-z0-9]{48}|sk-svcacct-[\w-]{20,}|[sr]k_test_[A-Za-z0-9]{20,}"
        r"|ya29\.[\w-]{20,}|SG\.[\w-]{16,}\.[\w-]{16,}|glrt-[\w-]{20,}"
        r"|LS0tLS1CRUdJTi[A-Za-z0-9+/=]{20,}"
        r"|ATATT3[\w=-]{50,}|lin_api_[A-Za-z0-9]{32,}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"
        r"|dapi[a-f0-9]{32}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|sbp_[a-f0-9]{40}"
        r"|figd_[\w-]{30,}|ntn_[A-Za-z0-9]{40,}|dp\.(?:pt|st|ct|sa)\.[\w.-]{40,}"
        r"|[A-Za-z0-9]{14}\.atlasv1\.[\w=-]{60,}|hv[sb]\.[\w-]{24,}|xapp-[\w-]{20,}"
        r"|sk-or-v1-[0-9a-f]{64}|sk-[0-9a-f]{32}(?![A-Za-z0-9])|gsk_[A-Za-z0-9]{52}"
        r"|xai-[A-Za-z0-9]{80}|pplx-[A-Za-z0-9]{48}|whsec_[A-Za-z0-9+/]{32,}"
        r"|AGE-SECRET-KEY-1[QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L]{58}|sntrys_[\w+/=]{40,}"
        r"|sntryu_[0-9a-f]{64}|lsv2_(?:pt|sk)_[0-9a-f]{32}|pcsk_\w{50,}|r8_[A-Za-z0-9]{37}"
        r"|tvly-(?:dev-|prod-)?[A-Za-z0-9]{32}|ATBB[\w=.-]{28,}|PMAK-[0-9a-f]{24}-[0-9a-f]{34}"
        r"|gldt-[\w-]{20,}|glcbt-[\w-]{20,}|1//0[\w-]{40,})",
        "a token of a known kind (ghp_…, sk-ant-…, AKIA…, xoxb-…, glpat-…, …)",
    ),
)
"""Values that hold a credential whatever the variable's name: (a fixed part the value must
hold for the pattern to be tried, the pattern, what it is). Tokens are known by their
issuers' prefixes and lengths (GitHub's, GitLab's, Slack's, Anthropic's, OpenAI's, AWS's
access key ids, Hugging Face's, npm's, PyPI's, Stripe's keys, Tailscale's, SonarQube's,
DigitalOcean's, Google's API keys and OAuth access tokens, SendGrid's, Atlassian's
``ATATT3…``, Linear's ``lin_api_…``, Shopify's ``shpat_…``, Databricks' ``dapi…``, Grafana's
``glsa_…``, Supabase's ``sbp_…``, Figma's ``figd_…``, Notion's ``ntn_…``, Doppler's
``dp.st.…``, Terraform Cloud's ``….atlasv1.…``, Vault's ``hvs.…``, Slack's app tokens
``xapp-…``, OpenRouter's ``sk-or-v1-…``, DeepSeek's ``sk-`` and 32 hex digits, Groq's ``gsk_…``,
xAI's ``xai-…``, Perplexity's ``pplx-…``, Stripe's webhook secrets ``whsec_…``, age's
``AGE-SECRET-KEY-1…``, Sentry's ``sntrys_…`` and ``sntryu_…``, LangSmith's ``lsv2_pt_…``,
Pinecone's ``pcsk_…``, Replicate's ``r8_…``, Tavily's ``tvly-…``, Bitbucket's app passwords
``ATBB…``, Postman's ``PMAK-…``, GitLab's deploy and CI job tokens ``gldt-…``, ``glcbt-…``,
Google's OAuth refresh tokens ``1//0…``; Telegram's bot tokens and Twilio's keys have rows of
their own, Mailgun's :data:`MAILGUN_KEY_PATTERN`), and a PEM key in base64
(``LS0tLS1CRUdJTi`` is ``-----BEGIN``). Rows of their own too: a JSON Web Token (three base64url
parts, ``eyJ….eyJ….…``), a ``Token <hex>`` authorization, an ``.npmrc`` line's
``:_authToken=``, ``--password …`` and ``mysql -p…`` on a command line (``-p`` and its value in
one word, in a ``mysql``, ``mysqldump``, … command: ``mkdir -p`` is another command's; not a
``$VARIABLE``)."""

TOKEN_PREFIXES: tuple[str, ...] = (
    "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_", "glpat-", "glrt-", "xoxa-", "xoxb-",
    "xoxp-", "xoxo-", "xoxs-", "xoxr-", "sk-", "AKIA", "ASIA", "hf_", "npm_", "pypi-",
    "k_live_", "k_test_", "tskey-", "squ_", "dop_v1_", "AIza", "ya29.", "SG.",
    "LS0tLS1CRUdJTi", "ATATT3", "lin_api_", "shpat_", "shpca_", "shppa_", "shpss_", "dapi",
    "glsa_", "sbp_", "figd_", "ntn_", "dp.pt.", "dp.st.", "dp.ct.", "dp.sa.", ".atlasv1.",
    "hvs.", "hvb.", "xapp-", "gsk_", "xai-", "pplx-", "whsec_", "AGE-SECRET-KEY-1", "sntrys_",
    "sntryu_", "lsv2_", "pcsk_", "r8_", "tvly-", "ATBB", "PMAK-", "gldt-", "glcbt-", "1//0",
)  # fmt: skip
"""The fixed parts of the last row of :data:`SECRET_VALUE_PATTERNS`: most values hold none."""

PROXY_VARIABLES = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "FTP_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
    "ftp_proxy",
)
"""Replaced by the sandbox's own: the caller's proxies are reached through ``--upstream-proxy``.
``--env NO_PROXY=…`` (or ``no_proxy``) sets both spellings inside: it decides only what goes
to the sandbox's own loopback instead of the proxy."""

SANDBOX_LOOPBACK = "localhost,127.0.0.1,::1"

NODE_PROXY_SWITCH = "NODE_USE_ENV_PROXY"
"""Set to ``1`` inside unless the user set it: Node's own ``fetch`` and ``https`` read
``HTTPS_PROXY`` only with it (newer Node versions; older ones ignore it), and their
connections, not through the proxy, go nowhere in the sandbox's network namespace."""

TEMPORARY_FOLDER_VARIABLES = ("TMPDIR", "TMP", "TEMP")
"""The caller's temporary folder: ``/tmp`` inside (:func:`scrub`) when the one it names is not
there."""
RUNTIME_FOLDER_VARIABLES = ("XDG_RUNTIME_DIR",)
"""The session's runtime folder (sockets, locks): left out (:func:`scrub`) when it is not
there inside."""


def _matches(upper: str, pattern: str) -> bool:
    """``pattern`` (text where ``*`` stands for any text) matches ``upper``; as ``fnmatchcase``
    would, without compiling a regular expression for each pattern (start-up time)."""
    parts = pattern.split("*")
    if len(parts) == 1:
        return upper == pattern
    first, last = parts[0], parts[-1]
    end = len(upper) - len(last)
    if end < len(first) or not upper.startswith(first) or not upper.endswith(last):
        return False
    position = len(first)
    for middle in parts[1:-1]:
        found = upper.find(middle, position, end)
        if found < 0:
            return False
        position = found + len(middle)
    return True


NAME_SEPARATOR_PATTERN = r"[^A-Z0-9_]"
"""A character of an upper-cased name other than a letter, a digit or ``_``: read as ``_``
(:func:`credential_reason`)."""


def credential_reason(name: str, value: str | None = None) -> str | None:
    """What ``name`` looks like, when it looks like a credential (:data:`CREDENTIAL_VARIABLES`,
    less :data:`NOT_CREDENTIAL_VARIABLES`), or else what its ``value`` holds
    (:func:`credential_value_reason`); else ``None``.

    The name is compared upper-cased, with every other character than a letter, a digit or
    ``_`` read as ``_`` (:data:`NAME_SEPARATOR_PATTERN`): the environment takes any name
    without ``=``, and one written ``db-pass``, ``stripe.api-key`` or ``app.secret_key`` (a
    Kubernetes ConfigMap's keys, Spring's relaxed names, an ``env`` command's) is read by
    programs inside as surely as ``DB_PASS``."""
    upper = name.upper()
    if not upper.replace("_", "").isalnum() or not upper.isascii():
        upper = re.sub(NAME_SEPARATOR_PATTERN, "_", upper)
    if not any(_matches(upper, pattern) for pattern in NOT_CREDENTIAL_VARIABLES):
        for pattern, what in CREDENTIAL_VARIABLES:
            if _matches(upper, pattern):
                return what
    return credential_value_reason(value, name) if value else None


def credential_value_reason(value: str, name: str = "") -> str | None:
    """What ``value`` holds, when it holds a password, a key or a token
    (:data:`URL_USERINFO_PATTERN`, :data:`URL_TOKEN_USER_PATTERN`,
    :data:`URL_QUERY_PATTERN`, :data:`CONNECTION_STRING_PATTERN`, :data:`JAVA_OPTION_PATTERN`,
    :data:`HTTP_HEADER_PATTERN`, :data:`BASIC_CREDENTIALS_PATTERN`,
    :data:`DOCKER_AUTH_PATTERN`, :data:`SECRET_VALUE_PATTERNS`, :data:`MAILGUN_KEY_PATTERN`,
    a credential variable set in it: :data:`ASSIGNMENT_PATTERN`), whatever the variable's
    name; else ``None``. ``name`` only tells a Mailgun key from a
    digest (:data:`HASH_NAME_WORDS`)."""
    if "@" in value and "://" in value:
        if re.search(URL_USERINFO_PATTERN, value):
            return "a URL with a password in it (scheme://user:password@host)"
        if re.search(URL_TOKEN_USER_PATTERN, value):
            return "a URL with a token as its user (scheme://token@host)"
    lower = value.lower()
    if (
        "=" in value
        and ("?" in value or "&" in value)
        and ("token" in lower or "key" in lower or "secret" in lower)
        and re.search(URL_QUERY_PATTERN, value)
    ):
        return "a URL with a key or a token in its query (?api_key=…, &access_token=…)"
    if (
        "=" in value
        and ("pass" in lower or "pwd" in lower or "key" in lower or "signature" in lower)
        and re.search(CONNECTION_STRING_PATTERN, value)
    ):
        return "a connection string with a password in it (password=…)"
    if "-D" in value and "=" in value and re.search(JAVA_OPTION_PATTERN, value):
        return "a Java option with a password, secret, key or token in it (-D…password=…)"
    if (
        ":" in value
        and any(word in lower for word in HTTP_HEADER_WORDS)
        and re.search(HTTP_HEADER_PATTERN, value)
    ):
        return "an HTTP header with a credential in it (Authorization: …, X-Api-Key: …)"
    if "basic" in lower and _has_user_password(BASIC_CREDENTIALS_PATTERN, value):
        return "HTTP Basic credentials (Basic <base64 of user:password>)"
    if '"auth"' in lower and _has_user_password(DOCKER_AUTH_PATTERN, value):
        return JSON_WHAT
    for fixed, pattern, what in SECRET_VALUE_PATTERNS:
        if fixed:
            if fixed in value and re.search(pattern, value):
                return what
        elif any(prefix in value for prefix in TOKEN_PREFIXES) and re.search(pattern, value):
            return what
    if (
        "key-" in value
        and re.search(MAILGUN_KEY_PATTERN, value)
        and not any(word in name.upper() for word in HASH_NAME_WORDS)
    ):
        return "a Mailgun API key (key-…)"
    if "=" in value and _sets_credential(value):
        return "a credential variable set in it (PGPASSWORD=… cmd, -e API_TOKEN=…)"
    return None


def _sets_credential(value: str) -> bool:
    """``value`` sets a variable that holds a secret (:data:`ASSIGNMENT_PATTERN`, a name of
    :data:`ASSIGNMENT_ROWS`, not of :data:`NOT_CREDENTIAL_VARIABLES`) to something that can be
    one: 3 or more characters, not a number, a yes or a no, nor a file's path (``/…``,
    ``~/…``, ``./…``: ``PASSWORD_FILE=/run/secrets/db`` names where a secret is)."""
    upper = value.upper()
    if not any(word in upper for word in ASSIGNMENT_WORDS):
        return False
    for name, given in re.findall(ASSIGNMENT_PATTERN, value):
        if (
            len(given) < 3
            or given.isdigit()
            or given.lower() in NO_SECRET_WORDS
            or given.startswith(("/", "~/", "./", "../"))
        ):
            continue
        named = re.sub(NAME_SEPARATOR_PATTERN, "_", name.upper())
        if any(_matches(named, pattern) for pattern in NOT_CREDENTIAL_VARIABLES):
            continue
        if any(_matches(named, pattern) for pattern in ASSIGNMENT_ROWS):
            return True
    return False


def _has_user_password(pattern: str, value: str) -> bool:
    """``value`` holds base64 (``pattern``'s group: :data:`BASIC_CREDENTIALS_PATTERN`,
    :data:`DOCKER_AUTH_PATTERN`) that decodes to ``user:password``."""
    for encoded in re.findall(pattern, value):
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            continue
        if b":" in decoded:
            return True
    return False


@dataclass(frozen=True, slots=True)
class ScrubbedEnvironment:
    """The environment given to the sandbox, and what was left out of it."""

    environ: Mapping[str, str]
    dropped: tuple[str, ...]
    """Names left out because they look like credentials, sorted."""
    kept: tuple[str, ...]
    """Names that look like credentials and were passed on anyway (``--env``), sorted."""
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Why each name of :attr:`dropped` and :attr:`kept` looks like a credential
    (:func:`credential_reason`)."""


def parse_env_options(options: list[str]) -> dict[str, str | None]:
    """``--env NAME`` (pass on the caller's) and ``--env NAME=VALUE`` (set it), by name.

    A name is whatever precedes the first ``=``: any the environment can hold (not empty, no
    NUL), as :func:`scrub` reads the caller's. A credential named ``db-pass``,
    ``stripe.api-key`` or ``1PASSWORD`` is dropped like ``DB_PASS`` (:func:`credential_reason`),
    so ``--env`` must be able to pass it in: a rule of its own, narrower than the
    environment's, would leave such a variable out of reach.

    Raises:
        UsageError: a name that is empty or holds a NUL, or a value that holds a NUL (no
            process can be given it); the message names the option without its value, which
            may be a secret.
    """
    wanted: dict[str, str | None] = {}
    for option in options:
        name, equals, value = option.partition("=")
        problem = _env_option_problem(name, value, bool(equals))
        if problem is not None:
            from airlock._visible import visible

            shown = visible(name) if name else "''" if not equals else ""
            raise UsageError(f"--env {shown}{'=…' if equals else ''}: {problem}")
        wanted[name] = value if equals else None
    return wanted


def _env_option_problem(name: str, value: str, equals: bool) -> str | None:
    """What is wrong with ``--env NAME[=VALUE]``, in words that never quote the value; else
    ``None``."""
    if not name:
        before = "before the =" if equals else "given"
        return (
            f"no variable name {before}; expected NAME (pass airlock's own in) or NAME=VALUE "
            "(set it)"
        )
    if "\0" in name:
        return "a variable's name cannot hold a NUL character"
    if "\0" in value:
        return "the value holds a NUL character, which no variable's value can hold"
    return None


def scrub(
    environ: Mapping[str, str], wanted: Mapping[str, str | None], proxy_url: str
) -> ScrubbedEnvironment:
    """The environment for the sandbox.

    Args:
        environ: the caller's environment.
        wanted: from :func:`parse_env_options`: a name mapped to ``None`` is passed on from
            ``environ`` even when it looks like a credential; to a string, it is set to it.
        proxy_url: the proxy as the sandbox reaches it, ``http://127.0.0.1:PORT``.
    """
    out: dict[str, str] = {}
    dropped: list[str] = []
    kept: list[str] = []
    reasons: dict[str, str] = {}
    for name, value in environ.items():
        if name in PROXY_VARIABLES:
            continue
        reason = credential_reason(name, value)
        if reason is not None:
            reasons[name] = reason
            if name in wanted:
                kept.append(name)
            else:
                dropped.append(name)
                continue
        out[name] = value
    for name in TEMPORARY_FOLDER_VARIABLES:  # the caller's; one set with --env is the user's
        if out.get(name) and missing_inside(out[name]):
            out[name] = "/tmp"  # noqa: S108 - the sandbox's own, private and empty
    for name in RUNTIME_FOLDER_VARIABLES:
        if out.get(name) and missing_inside(out[name]):
            del out[name]
    for name, given in wanted.items():
        if given is not None and name not in PROXY_VARIABLES:
            out[name] = given
            reason = credential_reason(name, given)
            if reason is not None and name not in kept:
                reasons[name] = reason
                kept.append(name)
    out.update(proxy_variables(proxy_url))
    out.setdefault(NODE_PROXY_SWITCH, "1")  # one the user set (outside, or --env) is theirs
    no_proxy = wanted.get("NO_PROXY")
    no_proxy = wanted.get("no_proxy") if no_proxy is None else no_proxy
    if no_proxy is not None:  # what goes straight to the sandbox's own loopback: the user's
        out["NO_PROXY"] = out["no_proxy"] = no_proxy  # (nothing direct leaves the sandbox)
    return ScrubbedEnvironment(out, tuple(sorted(dropped)), tuple(sorted(kept)), reasons)


def missing_inside(folder: str) -> bool:
    """Whether the folder ``folder`` names will not be there inside the sandbox, looked at
    outside (nothing is made): it is not a folder outside, or it is (links resolved) in one
    the sandbox has a private, empty one of (:data:`~airlock.sandbox.paths.PRIVATE_TMPFS`:
    ``/tmp``, ``/var/tmp``, ``/run``). One there that a rule binds back (a workspace in
    ``/tmp``) counts as missing too: a folder of the sandbox's own serves as well."""
    import os
    from pathlib import Path

    from airlock.sandbox.paths import PRIVATE_TMPFS

    try:
        real = Path(os.path.realpath(folder))
        if not real.is_dir():
            return True
    except (OSError, ValueError):  # a folder on the way that cannot be searched; a NUL
        return True
    return any(
        real.is_relative_to(private)
        for private in PRIVATE_TMPFS
        if Path(private).is_dir() and not Path(private).is_symlink()  # as the launcher mounts
    )


def drop_holding(
    scrubbed: ScrubbedEnvironment, holds: Callable[[str], bool], reason: str
) -> ScrubbedEnvironment:
    """``scrubbed`` less every variable whose value ``holds`` a secret of the run's (the git
    gateway's token), whatever its name, ``--env`` or not: each named among
    :attr:`~ScrubbedEnvironment.dropped`, with ``reason``."""
    holding = {name for name, value in scrubbed.environ.items() if holds(value)}
    if not holding:
        return scrubbed
    return ScrubbedEnvironment(
        {name: value for name, value in scrubbed.environ.items() if name not in holding},
        tuple(sorted({*scrubbed.dropped, *holding})),
        tuple(name for name in scrubbed.kept if name not in holding),
        {**scrubbed.reasons, **dict.fromkeys(holding, reason)},
    )


def proxy_variables(proxy_url: str) -> dict[str, str]:
    """``HTTP_PROXY``/``HTTPS_PROXY``/``ALL_PROXY`` in both cases, and ``NO_PROXY`` for loopback."""
    return {
        "HTTP_PROXY": proxy_url,
        "HTTPS_PROXY": proxy_url,
        "ALL_PROXY": proxy_url,
        "http_proxy": proxy_url,
        "https_proxy": proxy_url,
        "all_proxy": proxy_url,
        "NO_PROXY": SANDBOX_LOOPBACK,
        "no_proxy": SANDBOX_LOOPBACK,
    }
