"""The sandbox's environment, reviewed: ``--env`` takes any name the environment can hold (a
credential airlock drops for its name, ``db-pass``, must be reachable), refuses only what no
process can be given, never quoting the value; a credential written inside another
variable's value (``PGPASSWORD=… pg_dump``, ``-e API_TOKEN=…``) or under a bare name
(``key``, ``pass``) is dropped, and the values near those rows that hold none stay."""

from __future__ import annotations

import pytest

from airlock.errors import UsageError
from airlock.sandbox import credential_reason, parse_env_options, scrub

PROXY = "http://127.0.0.1:3128"
SECRET = "hunter2-Zq81"


@pytest.mark.parametrize(
    "name",
    [
        "db-pass",
        "stripe.api-key",
        "app.secret_key",
        "1PASSWORD",
        "1X",
        "my token",
        "BASH_FUNC_f%%",
        "-x",
        "a\nb",
        "bad\udcffbyte",  # a byte that is no UTF-8, as Python reads it from argv and environ
    ],
)
def test_env_takes_any_name_the_environment_can_hold(name: str) -> None:
    """Passed on (``--env NAME``) and set (``--env NAME=VALUE``), by that exact name; one the
    credential table matches is named among those kept."""
    passed = scrub({name: SECRET}, parse_env_options([name]), PROXY)
    assert passed.environ[name] == SECRET
    assert passed.dropped == ()
    given = scrub({}, parse_env_options([f"{name}=v={SECRET}"]), PROXY)
    assert given.environ[name] == f"v={SECRET}"
    credential = credential_reason(name) is not None
    assert passed.kept == ((name,) if credential else ())
    assert (name in given.kept) == credential


def test_a_credential_with_another_separator_is_dropped_unless_asked_for() -> None:
    """``db-pass`` outside is dropped and named; ``--env db-pass`` passes it in, named kept,
    why it looks like a credential still told."""
    environ = {"db-pass": SECRET, "stripe.api-key": SECRET, "app.title": "shop"}
    scrubbed = scrub(environ, parse_env_options(["db-pass"]), PROXY)
    assert scrubbed.environ["db-pass"] == SECRET
    assert "stripe.api-key" not in scrubbed.environ
    assert scrubbed.dropped == ("stripe.api-key",)
    assert scrubbed.kept == ("db-pass",)
    assert scrubbed.reasons["db-pass"].startswith("a password")


@pytest.mark.parametrize(
    ("option", "said"),
    [
        ("", "--env '': no variable name given"),
        (f"={SECRET}", "--env =…: no variable name before the ="),
        (f"A\0B={SECRET}", "--env A\\x00B=…: a variable's name cannot hold a NUL character"),
        (f"A={SECRET}\0x", "--env A=…: the value holds a NUL character"),
    ],
)
def test_a_bad_env_is_refused_in_words_without_its_value(option: str, said: str) -> None:
    """What no process can be given (an empty name, a NUL; a NUL in a value made the run
    fail in bubblewrap's arguments instead): a usage error saying what, the value never in it."""
    with pytest.raises(UsageError) as refused:
        parse_env_options([option])
    assert said in str(refused.value)
    assert SECRET not in str(refused.value)
    assert "\0" not in str(refused.value)


@pytest.mark.parametrize("name", ["key", "KEY", "pass", "Pass", "pw", "auth", "PAT", "creds"])
def test_a_bare_credential_word_is_a_credential(name: str) -> None:
    """``key=…``, ``PASS=…``: the word alone names the secret as plainly as ``API_KEY``; the
    rows ask for a ``_`` before it, so these went in."""
    scrubbed = scrub({name: SECRET}, {}, PROXY)
    assert scrubbed.dropped == (name,)
    assert name not in scrubbed.environ


@pytest.mark.parametrize(
    "value",
    [
        f"PGPASSWORD={SECRET} pg_dump -h db",
        f"docker run --rm -e API_TOKEN={SECRET} app",
        f"--build-arg NPM_TOKEN={SECRET}",
        f"/usr/bin/env GITHUB_TOKEN={SECRET} gh pr list",
        f"() {{  export STRIPE_SECRET_KEY={SECRET}; }}",  # an exported shell function
        f"export API_KEY='{SECRET}'",
        f"NODE_ENV=test JWT_SECRET={SECRET} jest",
        f"DB_HOST=db\nPGPASSWORD={SECRET}\n",  # a .env file's text
        f"cmd; db-pass={SECRET}",
    ],
)
def test_a_credential_variable_set_inside_a_value_is_dropped(value: str) -> None:
    """Whatever the variable's name, a value that sets one whose name is a secret's: dropped,
    with why (the value itself nowhere in it)."""
    reason = credential_reason("RUN_ARGS", value)
    assert reason is not None
    assert SECRET not in reason
    scrubbed = scrub({"RUN_ARGS": value}, {}, PROXY)
    assert scrubbed.dropped == ("RUN_ARGS",)


@pytest.mark.parametrize(
    "value",
    [
        " -j4 --jobserver-auth=fifo:/tmp/GMfifo1",  # make's MAKEFLAGS: an option, no variable
        "rs=0:di=01;34:ln=01;36:*.key=01;32",  # LS_COLORS
        "*PASSWORD=*:*TOKEN=*",  # HISTIGNORE
        "TOKEN=$GITHUB_TOKEN KEY=${X} P_PASS=%PASS% S_SECRET={{ secrets.X }} T_TOKEN=<token>",
        "TOKENIZERS_PARALLELISM=false MAX_TOKENS=4096 USE_TOKEN=yes",
        "PASSWORD_FILE=/run/secrets/db SECRET_PATH=~/x TOKEN_DIR=./t",
        "PARTITION_KEY=userId AWS_REGION=eu-west-1 DOCKER_HOST=tcp://docker:2375",
        "https://api.example.com/v1?page_token=abc&token_type=bearer",
        "service.name=api,deployment.environment=prod",
        '() {  local token=$1; key="$2"; }',
        "AB_PW=x",  # too short to be a password
    ],
)
def test_only_a_value_that_sets_a_secret_is_dropped(value: str) -> None:
    """Beside one that sets a password (dropped), options, colour tables, references to other
    variables, counts, yes and no, files' paths, settings and a URL's query (read by its own
    row) stay: no secret is written out in them."""
    environ = {"RUN_ARGS": value, "BACKUP_CMD": f"PGPASSWORD={SECRET} pg_dump -h db"}
    scrubbed = scrub(environ, {}, PROXY)
    assert scrubbed.dropped == ("BACKUP_CMD",)
    assert scrubbed.environ["RUN_ARGS"] == value
    assert credential_reason("RUN_ARGS", value) is None
