"""``airlock flows`` end to end, as a subprocess with a temporary HOME and project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airlock.policy import FlowId
from tests.cli import airlock
from tests.conftest import write_json

CONTRACT_FIELDS = {"id", "state", "reasons", "destination", "what", "retention"}


def test_json_contract() -> None:
    """--json prints provider and one object per flow with the contract's fields."""
    result = airlock("flows", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["provider"] == "first_party"
    assert [flow["id"] for flow in data["flows"]] == [str(f) for f in FlowId]
    for flow in data["flows"]:
        assert set(flow) >= CONTRACT_FIELDS
        assert isinstance(flow["reasons"], list) and flow["reasons"]


@pytest.mark.parametrize(
    ("env", "flow", "state"),
    [
        ({"DISABLE_TELEMETRY": "1"}, "metrics", "off"),
        ({"CLAUDE_CODE_USE_BEDROCK": "1"}, "transcript_share", "local_archive"),
        ({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, "webfetch_preflight", "on"),
        ({"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}, "auto_update", "off"),
    ],
)
def test_json_follows_the_process_environment(env: dict[str, str], flow: str, state: str) -> None:
    """The decisions printed follow the variables of the calling process."""
    data = json.loads(airlock("flows", "--json", env=env).stdout)
    assert {f["id"]: f["state"] for f in data["flows"]}[flow] == state


def test_json_reads_project_and_user_settings(project: Path, config_dir: Path) -> None:
    """Settings in the current directory's .claude and in HOME's .claude are in force."""
    write_json(project / ".claude" / "settings.json", {"skipWebFetchPreflight": True})
    write_json(config_dir / "settings.json", {"env": {"DISABLE_ERROR_REPORTING": "1"}})
    states = {f["id"]: f["state"] for f in json.loads(airlock("flows", "--json").stdout)["flows"]}
    assert states["webfetch_preflight"] == "off"
    assert states["error_reporting"] == "off"


def test_invalid_settings_reported_on_stderr_and_json_still_printed(project: Path) -> None:
    """A bad file is reported on stderr with path and key; stdout still has the decisions."""
    path = write_json(project / ".claude" / "settings.json", {"cleanupPeriodDays": "thirty"})
    result = airlock("flows", "--json")
    assert result.returncode == 0
    assert str(path) in result.stderr and "cleanupPeriodDays" in result.stderr
    assert json.loads(result.stdout)["provider"] == "first_party"


def test_invalid_managed_settings_said_loudly(managed_dir: Path) -> None:
    """Unusable managed settings: stderr says it fails closed, and the JSON shows every optional flow off."""
    (managed_dir / "managed-settings.json").write_text("{oops")
    result = airlock("flows", "--json")
    assert "MANAGED SETTINGS ARE INVALID" in result.stderr
    data = json.loads(result.stdout)
    assert data["fail_closed"] is True
    assert {f["id"]: f["state"] for f in data["flows"]}["metrics"] == "off"


def test_table_lists_every_flow() -> None:
    """The default output is a table naming every flow and its state."""
    result = airlock("flows")
    assert result.returncode == 0
    for flow in FlowId:
        assert str(flow) in result.stdout


@pytest.mark.parametrize("columns", ["60", "80", "119"])
def test_a_narrow_terminal_shows_each_flow_whole(columns: str) -> None:
    """Where the six-column table would cut its cells to a word or two (``destinat…``), each
    flow is a block of labelled lines: every flow, its state, and its destination, what
    leaves whole (the characters in order, however the lines wrap or a long URL folds)."""
    result = airlock("flows", "--json")
    flows = json.loads(result.stdout)["flows"]
    result = airlock("flows", env={"COLUMNS": columns})
    assert result.returncode == 0, result.stderr
    assert "…" not in result.stdout
    assert all(len(line) <= int(columns) for line in result.stdout.splitlines())
    lines = [line.strip() for line in result.stdout.splitlines()]
    text = "".join(result.stdout.split())
    for flow in flows:
        assert f"{flow['id']}  {flow['state']}" in lines
        for field in ("destination", "what"):
            assert "".join(flow[field].split()) in text, (flow["id"], field)


def test_a_wide_terminal_shows_the_table() -> None:
    result = airlock("flows", env={"COLUMNS": "160"})
    assert result.returncode == 0, result.stderr
    assert "┃ flow" in result.stdout and "what leaves" in result.stdout


def test_explain_gives_every_reason(project: Path) -> None:
    """--explain FLOW prints the state and every reason, naming the file."""
    path = write_json(project / ".claude" / "settings.local.json", {"env": {"DO_NOT_TRACK": "1"}})
    result = airlock("flows", "--explain", "metrics")
    assert result.returncode == 0
    assert "metrics: off" in result.stdout
    assert "DO_NOT_TRACK" in result.stdout and path.name in result.stdout.replace("\n", "")


def test_a_projects_settings_are_shown_as_text_in_the_table_and_explain(project: Path) -> None:
    """A cloned project's settings name the model's base URL: markup in it (``[/bold]``) does
    not end the table with an error, and an escape sequence in it is shown as ``\\x1b``,
    never sent to the terminal."""
    url = "https://a[/bold]b.example/\x1b]8;;x"
    write_json(project / ".claude" / "settings.json", {"env": {"ANTHROPIC_BASE_URL": url}})
    for args in ((), ("--explain", "model_requests")):
        result = airlock("flows", *args, env={"COLUMNS": "250"})
        assert result.returncode == 0, result.stderr
        assert "\x1b" not in result.stdout
        assert "https://a[/bold]b.example/\\x1b]8;;x" in result.stdout


def test_explain_unknown_flow_is_a_usage_error() -> None:
    """An unknown flow name exits 2 and lists the valid ones."""
    result = airlock("flows", "--explain", "telemetry")
    assert result.returncode == 2
    assert "model_requests" in result.stderr


def test_graph_svg_draws_solid_dashed_and_grey(tmp_path: Path) -> None:
    """--graph draws an SVG: solid required edges, dashed optional ones, grey for what is off."""
    out = tmp_path / "flows.svg"
    result = airlock("flows", "--graph", str(out), env={"DISABLE_TELEMETRY": "1"})
    assert result.returncode == 0, result.stderr
    svg = out.read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert "stroke-dasharray" in svg
    assert "#b0b0b0" in svg
    assert "metrics: off" in svg and "model_requests: on" in svg


def test_graph_dot_source(tmp_path: Path) -> None:
    """--graph FILE.dot writes the Graphviz source, with dashed and solid styles."""
    out = tmp_path / "flows.dot"
    assert airlock("flows", "--graph", str(out)).returncode == 0
    source = out.read_text()
    assert "style=dashed" in source and "style=solid" in source


def test_graph_unknown_format(tmp_path: Path) -> None:
    """An unknown diagram format is refused with the valid ones."""
    result = airlock("flows", "--graph", str(tmp_path / "x.bmp"))
    assert result.returncode == 2 and ".svg" in result.stderr


def test_help_explains() -> None:
    """--help describes the command and its options."""
    result = airlock("flows", "--help")
    assert result.returncode == 0
    assert "--explain" in result.stdout and "--graph" in result.stdout


def test_json_lists_settings_problems(project: Path) -> None:
    """--json carries every settings problem too, for scripts that do not read stderr."""
    path = write_json(project / ".claude" / "settings.json", {"feedbackSurveyRate": 3})
    problems = json.loads(airlock("flows", "--json").stdout)["settings_problems"]
    assert problems == [
        {
            "path": str(path),
            "key": "feedbackSurveyRate",
            "value": "3",
            "expected": "must be between 0 and 1",
        }
    ]


def test_missing_settings_file_is_an_error(tmp_path: Path) -> None:
    """--settings naming a file that does not exist exits 2 and names it."""
    result = airlock("flows", "--json", "--settings", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "nope.json" in result.stderr and result.stdout == ""


def test_graph_into_missing_folder_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """Writing the diagram where it cannot go gives a one-line error naming the path."""
    result = airlock("flows", "--graph", str(tmp_path / "no" / "such" / "g.svg"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "g.svg" in result.stderr


def test_closed_stdout_is_an_error() -> None:
    """With standard output closed, airlock says so and exits 2, without a traceback."""
    result = subprocess.run(
        [sys.executable, "-m", "airlock", "flows", "--json"],
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=60,
        check=False,
        pass_fds=(),
        close_fds=True,
        preexec_fn=lambda: os.close(1),
    )
    assert result.returncode == 2
    assert "standard output is closed" in result.stderr


def test_broken_pipe_ends_quietly_with_141() -> None:
    """When the reader goes away early (``airlock flows --json | head -1``), the command
    ends as a program killed by SIGPIPE does: exit 141 (128 + 13), nothing said."""
    with subprocess.Popen(
        [sys.executable, "-m", "airlock", "flows", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as reader_gone:
        assert reader_gone.stdout is not None and reader_gone.stderr is not None
        reader_gone.stdout.close()
        stderr = reader_gone.stderr.read().decode()
        assert reader_gone.wait(timeout=60) == 141
    assert stderr == ""
