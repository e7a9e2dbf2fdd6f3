"""airlock run's inspection and gateway options, prepared for the proxy and the sandbox."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

import pytest

from airlock.cli._egress_options import add_arguments
from airlock.egress.ca import CA_VARIABLES
from airlock.egress.options import inspected_hosts, prepare
from airlock.errors import UsageError
from airlock.policy import decide
from tests.policy.helpers import context

TOKEN = "ghp_" + "Qw3Er5Ty7Ui9Op1As3Df5Gh7Jk9Lz1Xc3Vb5Nm7"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_prepare_inspection_and_gateway() -> None:
    """Hosts from flags and settings, a bundle the sandbox reads, git variables without the
    token, a running gateway; closing removes the bundle."""
    args = _args(
        "--inspect", "API.anthropic.com", "--repo", "octo/widgets:ro", "--secrets", "block"
    )
    prepared = prepare(
        args,
        decisions=decide(context()),
        environ={"GH_TOKEN": TOKEN},
        proxy_url="http://127.0.0.1:3128",
        inspect_setting=["statsig.anthropic.com"],
        now=dt.datetime.now(dt.UTC),
        model_hosts=["llm.example"],
    )
    try:
        assert prepared.inspection is not None
        assert prepared.inspection.hosts == {"api.anthropic.com", "statsig.anthropic.com"}
        assert "llm.example" in prepared.inspection.api_hosts
        assert prepared.inspection.secrets == "block"
        [bundle] = prepared.read_only_files
        assert bundle.read_bytes().count(b"BEGIN CERTIFICATE") >= 1
        assert b"PRIVATE KEY" not in bundle.read_bytes()
        assert {prepared.environ[name] for name in CA_VARIABLES} == {str(bundle)}
        assert prepared.gateway_address is not None
        assert prepared.environ["GIT_CONFIG_COUNT"].isdigit()
        assert all(TOKEN not in value for value in prepared.environ.values())
    finally:
        prepared.close()
    assert not bundle.exists()


def test_the_gateways_token_passed_on_is_found_by_its_value(tmp_path: Path) -> None:
    """A variable passed on whose value holds the gateway's token (from a token file here) is
    refused whatever its name; one that does not, or one not passed on, is not."""
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    prepared = prepare(
        _args("--repo", "octo/w", "--git-token-file", str(token_file)),
        decisions=decide(context()),
        environ={},
        proxy_url="http://127.0.0.1:3128",
        now=dt.datetime.now(dt.UTC),
    )
    try:
        inside = {"SOME_NAME": f"x{TOKEN}y", "OTHER": "x", "NOT_PASSED": TOKEN}
        prepared.refuse_token_inside(inside, ["OTHER", "NOT_GIVEN"])
        with pytest.raises(UsageError, match="--env SOME_NAME: holds the token") as refused:
            prepared.refuse_token_inside(inside, ["OTHER", "SOME_NAME"])
        assert TOKEN not in str(refused.value)
    finally:
        prepared.close()


def test_nothing_asked_nothing_prepared() -> None:
    """Without --inspect or --repo, there is no CA, no gateway and no variable."""
    prepared = prepare(
        _args(), decisions=decide(context()), environ={}, proxy_url="x", now=dt.datetime.now(dt.UTC)
    )
    assert (prepared.inspection, prepared.gateway_address, prepared.environ) == (None, None, {})


def test_repo_without_token_is_a_usage_error() -> None:
    """--repo without any token source says where to put one."""
    with pytest.raises(UsageError, match="GH_TOKEN"):
        prepare(
            _args("--repo", "octo/w"),
            decisions=decide(context()),
            environ={},
            proxy_url="x",
            now=dt.datetime.now(dt.UTC),
        )


@pytest.mark.parametrize("bad", ["https://api.anthropic.com", "api.anthropic.com:443", "a/b", ""])
def test_bad_inspect_hosts(bad: str) -> None:
    """An --inspect value that is not a bare host name is refused, naming the option."""
    with pytest.raises(UsageError, match="--inspect"):
        inspected_hosts([bad], None)


def test_bad_upstream_ca_is_a_usage_error(tmp_path: Path) -> None:
    """An --upstream-ca that is not PEM is refused before anything runs."""
    bad = tmp_path / "x.pem"
    bad.write_text("nope")
    with pytest.raises(UsageError, match="--upstream-ca"):
        prepare(
            _args("--inspect", "h.example", "--upstream-ca", str(bad)),
            decisions=decide(context()),
            environ={},
            proxy_url="x",
            now=dt.datetime.now(dt.UTC),
        )


def test_inspect_hosts_from_settings_files(tmp_path: Path) -> None:
    """airlock.inspect lists of the project and user files are unioned; a non-list is a problem."""
    import json

    from airlock.settings import load

    project = tmp_path / "p"
    home = tmp_path / "h"
    (project / ".claude").mkdir(parents=True)
    (home / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(
        json.dumps({"airlock": {"inspect": ["api.anthropic.com"]}})
    )
    (home / ".claude" / "settings.json").write_text(
        json.dumps({"airlock": {"inspect": ["statsig.anthropic.com"]}})
    )
    loaded = load(project, {"HOME": str(home)})
    assert set(loaded.inspect_hosts) == {"api.anthropic.com", "statsig.anthropic.com"}
    assert inspected_hosts(["x.example"], list(loaded.inspect_hosts)) == {
        "x.example",
        "api.anthropic.com",
        "statsig.anthropic.com",
    }
    (home / ".claude" / "settings.json").write_text(json.dumps({"airlock": {"inspect": "x"}}))
    problems = load(project, {"HOME": str(home)}).problems
    assert any("inspect" in problem.key for problem in problems)


def test_the_engines_model_hosts_are_the_vendor_apis_in_canonical_form() -> None:
    """ANTHROPIC_BASE_URL from the settings' env reaches the proxy through the engine
    (``model_hosts``); a spelling with a final dot or capitals is the same host."""
    prepared = prepare(
        _args("--inspect", "localhost"),
        decisions=decide(context()),
        environ={},
        proxy_url="http://127.0.0.1:3128",
        now=dt.datetime.now(dt.UTC),
        model_hosts=["LocalHost.", "Models.Example."],
    )
    try:
        assert prepared.inspection is not None
        assert {"localhost", "models.example"} <= prepared.inspection.api_hosts
    finally:
        prepared.close()


def test_only_the_engines_model_hosts_are_the_vendor_apis() -> None:
    """On Bedrock, an ``ANTHROPIC_BASE_URL`` in airlock's environment is not where the model
    requests go (the engine's model host is Bedrock's): its host is no vendor API host."""
    prepared = prepare(
        _args("--inspect", "localhost"),
        decisions=decide(context({"CLAUDE_CODE_USE_BEDROCK": "1", "AWS_REGION": "eu-west-1"})),
        environ={"ANTHROPIC_BASE_URL": "https://first-party.example/v1"},
        proxy_url="http://127.0.0.1:3128",
        now=dt.datetime.now(dt.UTC),
        model_hosts=["bedrock-runtime.eu-west-1.amazonaws.com"],
    )
    try:
        assert prepared.inspection is not None
        assert "first-party.example" not in prepared.inspection.api_hosts
        assert "bedrock-runtime.eu-west-1.amazonaws.com" in prepared.inspection.api_hosts
    finally:
        prepared.close()
