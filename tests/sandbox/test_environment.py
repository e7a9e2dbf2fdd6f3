"""The sandbox's environment: credentials dropped unless asked for, the proxy always ours."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from airlock.errors import UsageError
from airlock.sandbox import credential_reason, parse_env_options, scrub
from airlock.sandbox.environment import PROXY_VARIABLES

PROXY = "http://127.0.0.1:3128"


@pytest.mark.parametrize(
    "name",
    [
        "GITHUB_TOKEN",
        "GH_TOKEN",
        "NPM_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "STRIPE_SECRET",
        "CLIENT_SECRET_VALUE",
        "DB_PASSWORD",
        "MYSQL_ROOT_PASSWORD",
        "PGPASSWORD",
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AZURE_CLIENT_ID",
        "GOOGLE_APPLICATION_CREDENTIALS",
        "SSH_AUTH_SOCK",
        "DOCKER_HOST",
        "KUBECONFIG",
        "DBUS_SESSION_BUS_ADDRESS",
        "SENTRY_DSN",
        "github_token",
        "DB_PASS",
        "SMTP_PASS",
        "MYSQL_PWD",
        "ORACLE_PWD",
        "BW_SESSION",
        "OP_SESSION_my_team",
        "CI_JOB_JWT",
        "CI_JOB_JWT_V2",
        "VAULT_ID_JWT",
        "AUTHORIZATION",
        "HTTP_AUTHORIZATION",
        "API_BEARER",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_VALUE_12",
    ],
    ids=lambda name: f"drops_{name}",
)
def test_credential_names_are_recognised(name: str) -> None:
    """A name that looks like a credential is recognised, whatever its case."""
    assert credential_reason(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "PATH",
        "HOME",
        "LANG",
        "TERM",
        "EDITOR",
        "PWD",
        "SHELL",
        "USER",
        "KEYBOARD",
        # the letters of a credential pattern, no credential:
        "OLDPWD",
        "PASSAGE_DIR",
        "BYPASS",
        "COMPASS_HOME",
        "DESKTOP_SESSION",
        "XDG_SESSION_TYPE",
        "SESSION_MANAGER",
        "OPENSSL_CONF",
        "JWT_ALGORITHM",
        "GIT_AUTHOR_NAME",
        "GIT_AUTHOR_EMAIL",
        "GIT_CONFIG_NOSYSTEM",
        "GIT_CONFIG_GLOBAL",
        "GIT_CONFIG_SYSTEM",
    ],
)
def test_ordinary_names_are_not_credentials(name: str) -> None:
    """Everyday variables pass through, those holding a credential pattern's letters too."""
    assert credential_reason(name) is None


@pytest.mark.parametrize(
    "value",
    [
        "redis://:secret@localhost:6379/0",
        "mongodb://user:pass@h1:27017,h2:27017/app?replicaSet=rs0",
        "mongodb+srv://user:p%40ss@cluster0.example.net/app",
        "amqp://guest:guest@rabbit:5672//",
        "postgresql://app:hunter2@db/app",
        "https://pypi.org/simple https://me:tok@pypi.corp/simple",
        "Server=db;Database=app;User Id=sa;Password=hunter2;",
        "jdbc:mysql://db/app?user=u&password=p",
        "host=db user=u password=p",
        "DRIVER={ODBC Driver 18};SERVER=db;UID=u;PWD=p",
        "https://ghp_16C7e42F292c6912E7710c838347Ae178B4a@github.com/org/repo.git",
        "https://github_pat_11ABCDEFG0123456789_abcdef@github.com/org/repo",
        "https://glpat-xxxxxxxxxxxxxxxxxxxx@gitlab.com/group/project.git",
        "https://k3a5cvbn7w2qzr6y4uj8opl1mnbv5cxz9asd2fgh4jkl6qwe8rty@dev.azure.com/org/_git/r",
    ],
)
def test_a_value_holding_a_password_is_a_credential_whatever_its_name(value: str) -> None:
    """A URL with a password in its userinfo or a token as its user, or a connection string's
    password, makes the variable a credential, under any name."""
    assert credential_reason("SETTING", value) is not None
    assert credential_reason("SETTING") is None  # the name alone is nothing


@pytest.mark.parametrize(
    "value",
    [
        "redis://localhost:6379/0",
        "ssh://git@github.com:22/org/repo.git",
        "https://user@example.com/",
        "https://x-access-token@github.com/org/repo",
        "https://first.last-name_with-many-parts@example.com/",
        "https://npm_builder1@registry.example.com/",
        "https://pypi-readonly@pypi.example.com/simple",
        "https://user:@example.com/",
        "https://example.com:8443/a@b",
        "docker://alpine:3.20@sha256:0123abcd",
        "git@github.com:org/repo.git",
        "PWD=/home/me",
        "Server=db;Password=;",
        "password manager",
        "",
    ],
)
def test_a_value_without_a_password_is_not_a_credential(value: str) -> None:
    """A URL with a user (not a token) but no password, a port, a tag and digest, an empty
    password: kept."""
    assert credential_reason("SETTING", value) is None


def test_scrub_drops_a_url_with_a_password_whatever_its_name_and_says_why() -> None:
    """REDIS_URL, MONGODB_URI, AMQP_URL, CELERY_BROKER_URL with a password are left out and
    reported with why; one without a password stays; ``--env NAME`` passes one in."""
    environ = {
        "REDIS_URL": "redis://:secret@cache:6379/0",
        "MONGODB_URI": "mongodb://u:p@h/db",
        "AMQP_URL": "amqp://u:p@rabbit//",
        "CELERY_BROKER_URL": "redis://:pw@redis:6379/1",
        "CACHE_URL": "redis://cache:6379/0",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "http.extraHeader",
        "GIT_CONFIG_VALUE_0": "Authorization: Bearer ghp_x",
    }
    result = scrub(environ, parse_env_options(["AMQP_URL"]), PROXY)
    assert result.dropped == (
        "CELERY_BROKER_URL",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_KEY_0",
        "GIT_CONFIG_VALUE_0",
        "MONGODB_URI",
        "REDIS_URL",
    )
    assert result.kept == ("AMQP_URL",)
    assert result.environ["AMQP_URL"] == "amqp://u:p@rabbit//"
    assert result.environ["CACHE_URL"] == "redis://cache:6379/0"
    assert "password" in result.reasons["REDIS_URL"]
    assert "git configuration" in result.reasons["GIT_CONFIG_VALUE_0"]
    assert set(result.reasons) == {*result.dropped, *result.kept}


def test_scrub_drops_credentials_and_reports_them() -> None:
    """Credential-looking variables are left out, named in ``dropped``, sorted."""
    result = scrub({"PATH": "/bin", "GH_TOKEN": "t", "AWS_REGION": "eu"}, {}, PROXY)
    assert result.dropped == ("AWS_REGION", "GH_TOKEN")
    assert "GH_TOKEN" not in result.environ
    assert result.environ["PATH"] == "/bin"


def test_env_name_passes_a_credential_on() -> None:
    """``--env NAME`` passes the caller's value in, and says it was kept."""
    result = scrub({"GH_TOKEN": "t"}, parse_env_options(["GH_TOKEN"]), PROXY)
    assert result.environ["GH_TOKEN"] == "t"
    assert result.dropped == ()
    assert result.kept == ("GH_TOKEN",)


def test_env_name_value_sets_one() -> None:
    """``--env NAME=VALUE`` sets the variable, even one the caller does not have."""
    result = scrub({}, parse_env_options(["API_KEY=abc=def", "MODE="]), PROXY)
    assert result.environ["API_KEY"] == "abc=def"
    assert result.environ["MODE"] == ""


def test_proxy_variables_are_always_the_sandboxes() -> None:
    """The caller's proxy settings are replaced, both cases, and NO_PROXY covers loopback only."""
    result = scrub(
        {"HTTPS_PROXY": "http://corp:8080", "no_proxy": "*"},
        parse_env_options(["HTTPS_PROXY=http://evil:1"]),
        PROXY,
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        assert result.environ[name] == PROXY
    assert result.environ["NO_PROXY"] == result.environ["no_proxy"] == "localhost,127.0.0.1,::1"


@pytest.mark.parametrize("given", ["NO_PROXY=", "no_proxy=example.internal"])
def test_no_proxy_set_with_env_is_taken_in_both_spellings(given: str) -> None:
    """``--env NO_PROXY=`` sends the sandbox's loopback names through the proxy too (to reach
    this machine's server an ``--allow localhost:PORT`` lets through); the caller's own
    ``no_proxy`` still is not taken, and the proxy variables stay the sandbox's."""
    result = scrub({"no_proxy": "*"}, parse_env_options([given]), PROXY)
    value = given.split("=", 1)[1]
    assert result.environ["NO_PROXY"] == result.environ["no_proxy"] == value
    assert result.environ["HTTPS_PROXY"] == result.environ["http_proxy"] == PROXY


@pytest.mark.parametrize("option", ["", "=x", "A\0B", "A=x\0y"])
def test_bad_env_options_are_refused(option: str) -> None:
    """A malformed ``--env`` is a usage error naming it."""
    with pytest.raises(UsageError, match="--env"):
        parse_env_options([option])


names = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_abc0123456789", min_size=1, max_size=24)


@given(st.dictionaries(names, st.text(max_size=8), max_size=20), st.sets(names, max_size=5))
def test_no_unasked_credential_gets_in(environ: dict[str, str], asked: set[str]) -> None:
    """Whatever the environment, a credential-looking name is inside only when asked for, and
    every name left out is reported."""
    result = scrub(environ, dict.fromkeys(asked), PROXY)
    for name, value in result.environ.items():
        if name not in PROXY_VARIABLES and credential_reason(name, value) is not None:
            assert name in asked
    assert set(result.dropped) == {
        n
        for n, v in environ.items()
        if n not in PROXY_VARIABLES and credential_reason(n, v) and n not in asked
    }


@given(st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789*?", max_size=30))
def test_table_patterns_match_as_fnmatch_does(name: str) -> None:
    """A name's credential reason is that of the first table pattern it matches as a shell-style
    pattern, unless it matches one of the exceptions."""
    from fnmatch import fnmatchcase

    from airlock.sandbox.environment import CREDENTIAL_VARIABLES, NOT_CREDENTIAL_VARIABLES

    expected = next(
        (what for pattern, what in CREDENTIAL_VARIABLES if fnmatchcase(name, pattern)), None
    )
    if any(fnmatchcase(name, pattern) for pattern in NOT_CREDENTIAL_VARIABLES):
        expected = None
    assert credential_reason(name) == expected


@pytest.mark.parametrize(
    "name",
    [
        "SLACK_WEBHOOK",
        "DISCORD_WEBHOOK_URL",
        "DOCKERHUB_CREDS",
        "NEXUS_CRED",
        "DOCKERHUB_CREDS_PSW",
        "DB_PW",
        "LDAP_BINDPW",
        "ORG_GRADLE_PROJECT_signingKey",
        "TS_AUTHKEY",
        "TAILSCALE_AUTHKEY",
        "GITHUB_OAUTH",
        "GOOGLE_OAUTH_CLIENT",
        "AUTH_SALT",
        "BUNDLE_RUBYGEMS__PKG__GITHUB__COM",
        "BUNDLE_GEMS__CONTRIBSYS__COM",
        "VSS_NUGET_EXTERNAL_FEED_ENDPOINTS",
        "SSHPASS",
        "FASTLANE_SESSION",
        "SONAR_LOGIN",
        "ETCDCTL_USER",
        "KUBE_CONFIG_DATA",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        "KRB5CCNAME",
        "KRB5_CLIENT_KTNAME",
    ],
)
def test_more_credential_names(name: str) -> None:
    """Names tools use for credentials beyond the keywords: CI bindings, Bundler's hosts,
    webhooks, OpenTelemetry's headers, Kerberos' caches."""
    assert credential_reason(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "TOKENIZERS_PARALLELISM",
        "TIKTOKEN_CACHE_DIR",
        "PASSWORD_STORE_DIR",
        "PASSWORD_STORE_CLIP_TIME",
        "GPG_KEY",
        "GCM_CREDENTIAL_STORE",
        "STRIPE_PUBLISHABLE_KEY",
        "OS_AUTH_URL",
        "BUNDLE_PATH",
        "BUNDLE_WITHOUT",
        "OAUTHLIB_INSECURE_TRANSPORT",
        "WEBHOOK_EVENTS",
        "DOCKERHUB_CREDS_USR",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ],
)
def test_names_with_a_keyword_that_hold_no_credential(name: str) -> None:
    """Settings whose names hold a credential's keyword, or are near one, stay."""
    assert credential_reason(name, "1") is None


@pytest.mark.parametrize(
    "value",
    [
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
        "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\nlQdGBGT\n",
        '{"type": "service_account", "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIE"}',
        '{"spring.datasource.password": "hunter2"}',
        "-Dhttp.proxyUser=ci -Dhttp.proxyPassword=hunter2",
        "-Ddb.password=hunter2 -Xmx2g",
        "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core",
        "Endpoint=sb://ns.servicebus.windows.net/;SharedAccessKeyName=k;SharedAccessKey=c2Vj",
        "app:hunter2@db.example.com:5432/app",
        "ci:hunter2@proxy.example.com:3128",
        "jdbc:oracle:thin:scott/tiger@db.example.com:1521/ORCL",
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "sk-ant-api03-" + "a" * 40,
        "AKIAIOSFODNN7EXAMPLE",
        "xoxb-1234567890-abcdefghij",
        "Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.payload",
        "https://hooks.slack.com/services/T000/B000/XXXXXXXX",
        "https://discord.com/api/webhooks/123/abc",
    ],
)
def test_a_value_holding_a_key_or_token_is_a_credential(value: str) -> None:
    """Private keys, JSON and Java options with a password, Azure connection strings,
    user:password@host, tokens of known kinds and webhook URLs, under any name."""
    assert credential_reason("SETTING", value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        '{"user": "me", "theme": "dark"}',
        "-Xmx2g -Dfile.encoding=UTF-8",
        "alpine:3.20@sha256:0123abcd",
        "git@github.com:org/repo.git",
        "/home/me/.local/bin:/usr/bin",
        "https://github.com/org/repo",
        "sk-learn",
        "Bearer",
        "https://hooks.example.com/services/x",
    ],
)
def test_values_near_a_key_or_token_that_hold_none(value: str) -> None:
    """A certificate, JSON without a secret's key, Java options, an image's digest, an scp
    path, a search path, short words: kept."""
    assert credential_reason("SETTING", value) is None


@pytest.mark.parametrize(
    "value",
    [
        "sk-" + "a1B2" * 12,
        "sk-svcacct-" + "x" * 30,
        "sk_test_" + "a1B2" * 6,
        "ya29." + "a0AfH6SMB" * 3,
        "SG." + "a" * 22 + "." + "b" * 43,
        "glrt-" + "x" * 20,
        "LS0tLS1CRUdJTiBPUEVOU1NIIFBSSVZBVEUgS0VZLS0tLS0K",
    ],
)
def test_more_tokens_of_known_kinds(value: str) -> None:
    """OpenAI's older and service-account keys, Stripe's test keys, Google's OAuth access
    tokens, SendGrid's, GitLab runners', a PEM key in base64."""
    assert credential_reason("SETTING", value) is not None


HEX32 = "0123456789abcdef" * 2
BASIC = "Basic dXNlcm5hbWU6cGFzc3dvcmQ="  # username:password
AZURE_SAS = (
    "https://acct.blob.core.windows.net/c?sv=2022-11-02&ss=b&srt=co&sp=rl"
    "&se=2030-01-01T00:00:00Z&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdEF%3D"
)


@pytest.mark.parametrize(
    "value",
    [
        # HTTP authentication headers, and their values alone:
        BASIC,
        "Authorization: " + BASIC,
        "Authorization: token abc123def456abc123def456abc123def456",
        "Proxy-Authorization: Basic Y2k6aHVudGVyMg==",
        "X-Api-Key: 0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "x-auth-token: 8c1f6c0e-2a3b-4c5d-9e8f-0a1b2c3d4e5f",
        "Private-Token: AbCdEf0123456789",
        '{"X-Api-Key": "0f1e2d3c4b5a"}',
        "Bearer abc123def456",
        "bearer 0a1b2c3d4e5f6a7b8c9d",
        "Authorization: Bearer abc123",
        # structured:
        '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNzd29yZA=="}}}',
        '{\n  "auths": {\n    "ghcr.io": {\n      "auth": "Z2g6Z2hwX3h4eA=="\n    }\n  }\n}',
        AZURE_SAS,
        "sv=2022-11-02&ss=bfqt&srt=sco&sp=rwdlacupiytfx&sig=AbCdEfGhIjKlMnOpQrSt%2FUv%3D",
        "https://bucket.s3.amazonaws.com/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature="
        + HEX32 * 2,
        # tokens of known kinds:
        "ATATT3xFfGF0" + "T1a2B3c4D5e6" * 15 + "=0A1B2C3D",
        "lin_api_" + "a1B2c3D4e5" * 4,
        "shpat_" + HEX32,
        "shpss_" + HEX32,
        "dapi" + HEX32,
        "dapi" + HEX32 + "-2",
        "glsa_" + "a1B2c3D4" * 4 + "_0a1b2c3d",
        "sbp_" + "0a1b2c3d4e" * 4,
        "figd_" + "Ab1_Cd2-Ef" * 4,
        "ntn_" + "a1B2c3D4e5" * 4 + "f6G7h8",
        "dp.st.dev." + "a1B2c3D4e5" * 4,
        "dp.pt." + "a1B2c3D4e5" * 4 + "f6G",
        "AbCdEfGhIjKlMn.atlasv1." + "a1B2c3D4e5" * 7,
        "hvs.CAESI" + "a1B2c3D4e5" * 9,
        "xapp-1-A0123456789-1234567890123-" + HEX32 * 2,
        "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0",
        "https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw0/getMe",
        "SK" + HEX32,
        "key-" + HEX32,
        # Java options whose name ends with a password, a secret, a token or a key:
        "-Dmaven.repo.pass=x",
        "-Djavax.net.ssl.keyStorePassword=x",
        "-Xmx2g -Djavax.net.ssl.trustStorePassword=s3cr3t-Store",
        "-Dsonar.token=abc -Dfile.encoding=UTF-8",
        "-Daws.secretKey=abc",
        "-Dapi_key=abc",
        "-Dpassword=abc",
    ],
)
def test_credentials_found_by_review_are_credentials_whatever_the_name(value: str) -> None:
    """HTTP authentication headers (``Basic …``, ``Authorization: …``, ``X-Api-Key: …``, a bearer
    token), Docker's config.json, a signed URL (Azure's SAS), more tokens of known kinds and a
    Java option's password, secret, token or key: a credential under a neutral name."""
    assert credential_reason("FOO", value) is not None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PATH", "/home/me/.local/bin:/usr/local/bin:/usr/bin:/bin"),
        (
            "LS_COLORS",
            "rs=0:di=01;34:ln=01;36:mh=00:pi=40;33:so=01;35:do=01;35:bd=40;33;01:or=40;31;01"
            ":su=37;41:sg=30;43:ca=30;41:tw=30;42:ow=34;42:st=37;44:ex=01;32:*.tar=01;31",
        ),
        ("PS1", r"\[\e]0;\u@\h: \w\a\]${debian_chroot:+($debian_chroot)}\u@\h:\w\$ "),
        ("LANG", "en_US.UTF-8"),
        ("TERM", "xterm-256color"),
        ("EDITOR", "vim"),
        ("XDG_CURRENT_DESKTOP", "ubuntu:GNOME"),
        ("GIT_PAGER", "less -FRX"),
        ("GIT_AUTHOR_NAME", "Basic Example"),
        ("GIT_SSH_COMMAND", "ssh -o IdentitiesOnly=yes -i ~/.ssh/deploy"),
        ("NODE_OPTIONS", "--max-old-space-size=4096"),
        ("NPM_CONFIG_REGISTRY", "https://registry.npmjs.org/"),
        ("PYTHONWARNINGS", "ignore::DeprecationWarning"),
        ("PYTHONPATH", "/srv/app/src:/srv/app/lib"),
        ("JAVA_TOOL_OPTIONS", "-Dfile.encoding=UTF-8"),
        ("MAVEN_OPTS", "-Xmx2g"),
        (
            "JAVA_OPTS",
            "-Djavax.net.ssl.keyStore=/etc/app/keystore.p12 -Djavax.net.ssl.keyStoreType=PKCS12"
            " -Dsigning.keyId=24875D73 -Dhttp.nonProxyHosts=localhost",
        ),
        (
            "GRADLE_OPTS",
            "-Dorg.gradle.daemon=false -Dkotlin.compiler.execution.strategy=in-process",
        ),
        ("MODE", "Basic mode"),
        ("AUTH_METHOD", "Basic authentication"),
        ("NOTE", "Bearer tokens are accepted"),
        ("TEMPLATE", "key: value"),
        ("BLOB_URL", "https://acct.blob.core.windows.net/container/file.txt"),
        ("DOCKER_JSON", '{"auths": {}, "credsStore": "desktop"}'),
        ("BUILD_ID", HEX32),
        ("TASK", "SK-1234"),
        ("DESKTOP_ID", "SKETCH0123456789abcdef"),
    ],
)
def test_ordinary_variables_stay(name: str, value: str) -> None:
    """Everyday settings, those near a header's, a Java option's or a token's shape too, are
    passed on."""
    result = scrub({name: value}, {}, PROXY)
    assert result.dropped == ()
    assert result.environ[name] == value


def test_scrub_drops_credentials_under_neutral_names_and_says_why() -> None:
    """Under names no table row matches, an HTTP header, Docker's config.json, an Azure SAS URL,
    a token of a known kind and a Java option's password are left out, each with why; the
    settings beside them stay; ``--env NAME`` passes one in."""
    environ = {
        "PATH": "/usr/bin:/bin",
        "FOO": BASIC,
        "AUTH_HEADER": BASIC,
        "HDR": "Authorization: token abc123def456abc123def456abc123def456",
        "REGISTRY_JSON": '{"auths":{"registry.example.com":{"auth":"dXNlcjpwYXNzd29yZA=="}}}',
        "BLOB": AZURE_SAS,
        "DATABRICKS_HOST_TOKENISH": "dapi" + HEX32,
        "VAULT": "hvs.CAESI" + "a1B2c3D4e5" * 9,
        "MAVEN_OPTS": "-Xmx2g -Dmaven.repo.pass=hunter2",
        "JAVA_TOOL_OPTIONS": "-Dfile.encoding=UTF-8",
        "KEEP_ME": "Bearer abc123def456",
    }
    result = scrub(environ, parse_env_options(["KEEP_ME"]), PROXY)
    assert result.dropped == (
        "AUTH_HEADER",
        "BLOB",
        "DATABRICKS_HOST_TOKENISH",
        "FOO",
        "HDR",
        "MAVEN_OPTS",
        "REGISTRY_JSON",
        "VAULT",
    )
    assert result.kept == ("KEEP_ME",)
    assert result.environ["PATH"] == "/usr/bin:/bin"
    assert result.environ["JAVA_TOOL_OPTIONS"] == "-Dfile.encoding=UTF-8"
    assert "Authorization header" in result.reasons["AUTH_HEADER"]
    assert "Basic" in result.reasons["FOO"]
    assert "HTTP header" in result.reasons["HDR"]
    assert "config.json" in result.reasons["REGISTRY_JSON"]
    assert "sig=" in result.reasons["BLOB"]
    assert "known kind" in result.reasons["VAULT"]
    assert "Java option" in result.reasons["MAVEN_OPTS"]
    assert result.reasons["KEEP_ME"] == "a bearer token"
    assert set(result.reasons) == {*result.dropped, *result.kept}


# Review 44: settings an agent's sandbox needs that looked like credentials, and credentials
# under neutral names that got through.

KITTY_PUBLIC_KEY = "1:z1)xK6~1(xp)!Ghr3Q*hUhzgt7NXI1@nHd8b9l2"
MD5 = "d41d8cd98f00b204e9800998ecf8427e"
ALNUM = "a1B2c3D4e5F6g7H8i9J0" * 5  # 100 letters and digits
HEX = "0123456789abcdef" * 5  # 80 hex digits


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "32000"),
        ("MAX_THINKING_TOKENS", "16000"),
        ("MAX_MCP_OUTPUT_TOKENS", "50000"),
        ("TIKTOKEN_ENCODINGS_BASE", "/opt/tiktoken"),
        ("KITTY_PUBLIC_KEY", KITTY_PUBLIC_KEY),
        ("STARSHIP_SESSION_KEY", "4409235741219847"),
        ("HTTP_AUTH_MODE", "basic"),
        ("DATABASE_URL", "postgres://user@host/db"),
        ("DATABASE_URL", "postgres://localhost:5432/dev"),
        ("SONAR_SCANNER_OPTS", "-Dsonar.projectKey=my-org_my-project"),
        ("JAVA_OPTS_SONAR", "-Dsonar.projectKey=acme_web -Dsonar.organization=acme"),
        ("MCP_JSON", '{"type":"http","auth":"oauth"}'),
        ("MCP_CONFIG", '{"type": "http", "auth": "oauth", "url": "https://mcp.example"}'),
        ("CACHE_NAMESPACE", "key-" + MD5),
        ("BUILD_HASH", "key-" + MD5),
        ("PAGINATION_JSON", '{"next-token": "abc", "max-token": "4096"}'),
        ("API_DOCS", "Auth-Key: see wiki"),
        (
            "JAVA_TOOL_OPTIONS",
            "-Dfile.encoding=UTF-8 -Djavax.net.ssl.trustStore=/etc/pki/java/cacerts"
            " -Djavax.net.ssl.trustStorePassword=changeit",
        ),
        ("JAVA_OPTS", "-Djavax.net.ssl.trustStorePassword=changeit"),
    ],
)
def test_settings_that_looked_like_credentials_stay(name: str, value: str) -> None:
    """Counts of tokens (the agent's own settings), tiktoken's settings, a public key, a prompt's
    session id, an authentication's kind, a database URL without a password, a Sonar project's
    key, an MCP server's ``"auth": "oauth"``, a cache's key that is an MD5, a page's cursor, a
    header's prose, the JDK's default truststore password: passed on."""
    result = scrub({name: value}, {}, PROXY)
    assert result.dropped == ()
    assert result.environ[name] == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "postgres://user:hunter2@host/db"),
        ("DATABASE_URL", "postgres://host/db?user=u&password=hunter2"),
        ("JAVA_OPTS", "-Djavax.net.ssl.trustStorePassword=s3cr3t"),
        ("JAVA_OPTS", "-Djavax.net.ssl.trustStorePassword=changeit2"),
        ("JAVA_OPTS", "-Djavax.net.ssl.trustStorePassword=changeit -Dmaven.repo.pass=x"),
        ("JAVA_OPTS", "-Djavax.net.ssl.keyStorePassword=changeit"),
        ("JAVA_OPTS", "-Dsonar.projectKey=acme -DapiKey=abc"),
        ("JAVA_OPTS", "-Daws.secretKey=abc"),
        ("JAVA_OPTS", "-Daws.accessKey=abc"),
        ("JAVA_OPTS", "-Dapp.licenseKey=abc"),
        ("JAVA_OPTS", "-Djavax.net.ssl.keyStorePassword=abc"),
        ("MAILGUN", "key-" + MD5),
        ("SETTING", "key-" + MD5),
        ("REGISTRY_JSON", '{"auths": {"r.example.com": {"auth": "dXNlcjpwYXNzd29yZA=="}}}'),
        ("API_DOCS", "Auth-Key: 0f1e2d3c4b5a6978"),
        ("API_DOCS", "X-Api-Key: see-wiki-for-the-key"),
        ("HEADERS", "Authorization: Bearer abc123\nX-Team: platform"),
        ("SETTINGS_JSON", '{"token": "0f1e2d3c4b5a6978"}'),
        ("SETTINGS_JSON", '{"next-token": "0f1e2d3c4b5a6978"}'),
        ("KITTY_LIKE", "app:z1)xK6~1(xp)!Ghr3Q*hUhzgt7NXI1@db"),
    ],
)
def test_credentials_near_the_settings_that_stay_are_still_dropped(name: str, value: str) -> None:
    """A database URL with a password, a truststore password other than ``changeit`` (and any
    keystore's), a camelCase API, secret or access key, a Mailgun key under a name that says
    nothing of a hash, Docker's ``auth``, a header's credential, JSON's token, user:password@host:
    still dropped."""
    assert scrub({name: value}, {}, PROXY).dropped == (name,)


@pytest.mark.parametrize(
    "value",
    [
        # a JSON Web Token, three base64url parts:
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
        # a URL's query:
        "https://api.example.com/v1?api_key=" + ALNUM[:32],
        "wss://x.example/socket?v=2&access_token=" + ALNUM[:40],
        "https://example.com/feed?token=abc123",
        # an .npmrc line, a Token scheme, command lines:
        "//registry.npmjs.org/:_authToken=" + ALNUM[:36],
        "//npm.corp.example/:_authToken=" + ALNUM[:20],
        "Token " + HEX[:40],
        "token " + HEX[:20],
        "--password " + ALNUM[:12],
        "docker login --username me --password 'x' registry.example.com",
        "mysql -uroot -p" + ALNUM[:12] + " app",
        "mysqldump -h db -u backup -ps3cr3t --all-databases",
        # a Google OAuth refresh token:
        "1//0" + ALNUM[:60],
        "1//04" + ALNUM[:99],
        # tokens of known kinds:
        "sk-or-v1-" + HEX[:64],
        "sk-" + HEX[:32],
        "gsk_" + ALNUM[:52],
        "xai-" + ALNUM[:80],
        "pplx-" + ALNUM[:48],
        "whsec_" + ALNUM[:32],
        "AGE-SECRET-KEY-1" + "QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L" * 2,
        "sntrys_eyJpYXQiOjE2ODk" + ALNUM[:40],
        "sntryu_" + HEX[:64],
        "lsv2_pt_" + HEX[:32] + "_" + HEX[:10],
        "lsv2_sk_" + HEX[:32] + "_" + HEX[:10],
        "pcsk_" + ALNUM[:5] + "_" + ALNUM[:63],
        "r8_" + ALNUM[:37],
        "tvly-" + ALNUM[:32],
        "tvly-dev-" + ALNUM[:32],
        "ATBB" + ALNUM[:32],
        "PMAK-" + HEX[:24] + "-" + HEX[:34],
        "gldt-" + ALNUM[:20],
        "glcbt-64_" + ALNUM[:20],
    ],
)
def test_credentials_the_review_missed_are_dropped_under_neutral_names(value: str) -> None:
    """A JSON Web Token, a URL's ``api_key``/``access_token``/``token``, an ``.npmrc``
    ``_authToken``, ``Token <hex>``, ``--password``, ``mysql -p…``, a Google refresh token and
    more issuers' tokens: dropped whatever the name, and said why."""
    result = scrub({"SETTING": value}, {}, PROXY)
    assert result.dropped == ("SETTING",)
    assert result.reasons["SETTING"]


@pytest.mark.parametrize(
    "value",
    [
        "https://api.example.com/v1?token=",
        "https://api.example.com/v1?page_token=abc&token_type=bearer",
        "https://api.example.com/v1?api_key=$API_KEY",
        "//registry.npmjs.org/:_authToken=${NPM_TOKEN}",
        "Token count: 20",
        "tokens 0123456789",
        "docker login --username me --password-stdin",
        "--password $DB_PASSWORD",
        "mysql -uroot -p app",
        "mysql -h db -P 3306 -u root --protocol=tcp",
        "mysql -u root app | gzip -p 4",
        "mkdir -p build && cp -p a b",
        "mysqld --pid-file=/run/mysqld.pid",
        "mysql -p$MYSQL_PWD app",
        "eyJhbGciOiJIUzI1NiJ9",
        "sk-learn",
        "sk-" + HEX[:31],
        "task-" + MD5,
        "gsk_short",
        "r8_",
        "ATBB",
        "1//0",
        "1:2:3",
    ],
)
def test_values_near_the_new_patterns_that_hold_no_credential(value: str) -> None:
    """An empty or placeholder query value, a page's cursor, an npmrc line that names a variable,
    the word ``token``, ``--password-stdin``, ``mysql -p`` that prompts, other commands' ``-p``,
    half a JWT, short words after a token's prefix: kept."""
    assert credential_reason("SETTING", value) is None
