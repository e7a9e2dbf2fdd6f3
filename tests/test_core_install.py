"""The core installs and runs without any extra: ``import airlock`` and ``airlock flows`` work
in an interpreter that has only the core's dependencies, and each capability that needs an
extra says which to install."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import tomllib
import venv
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import airlock
from airlock.extras import EXTRAS

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(airlock.__file__).resolve().parent.parent

DISTRIBUTIONS = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "httptools": "httptools",
    "opentelemetry-sdk": "opentelemetry.sdk",
    "opentelemetry-exporter-otlp-proto-http": "opentelemetry.exporter.otlp.proto.http",
    "graphviz": "graphviz",
    "uvloop": "uvloop",
    "cryptography": "cryptography",
    "sqlalchemy": "sqlalchemy",
    "alembic": "alembic",
    "psycopg": "psycopg",
    "boto3": "boto3",
    "opentelemetry-proto": "opentelemetry.proto",
    "sentry-sdk": "sentry_sdk",
    "brotli": "brotli",
}
"""Each extra's distribution and the module airlock imports from it."""

HEAVY = ("starlette", "uvicorn", "uvloop", "opentelemetry-sdk", "graphviz")
"""What the issue names: the core installs without a web server, uvloop, OpenTelemetry's SDK
or Graphviz."""


def _project() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as file:
        project: dict[str, object] = tomllib.load(file)["project"]
    return project


def _name(requirement: Requirement) -> str:
    return requirement.name.lower().replace("_", "-")


def _closure(requirements: list[str]) -> set[str]:
    """Every distribution a core install brings, through the installed packages' metadata."""
    seen: set[str] = set()
    queue = [Requirement(text) for text in requirements]
    while queue:
        requirement = queue.pop()
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = _name(requirement)
        if name in seen:
            continue
        seen.add(name)
        queue += [Requirement(text) for text in importlib.metadata.requires(name) or []]
    return seen


def test_the_extras_in_pyproject_match_the_table() -> None:
    """pyproject's serve, otel, graph and run extras bring the modules airlock.extras checks;
    all is every one of them, and dev includes all."""
    extras = _project()["optional-dependencies"]
    assert isinstance(extras, dict)
    for extra, modules in EXTRAS.items():
        names = {_name(Requirement(text)) for text in extras[extra]}
        assert {DISTRIBUTIONS[name] for name in names} >= set(modules), extra
    assert extras["all"] == ["airlock[serve,otel,graph,run]"]
    assert "airlock[all]" in extras["dev"]


def test_the_core_needs_no_extra() -> None:
    """A core install, with everything it pulls in, brings no web server, uvloop,
    OpenTelemetry SDK or Graphviz, nor any other extra's package."""
    dependencies = _project()["dependencies"]
    assert isinstance(dependencies, list)
    closure = _closure(dependencies)
    assert closure.isdisjoint(HEAVY)
    assert closure.isdisjoint(DISTRIBUTIONS), closure & set(DISTRIBUTIONS)


@pytest.fixture(scope="module")
def core_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh interpreter that sees airlock's source and the core's dependencies only (linked
    from this environment's packages: quick, and without the network)."""
    where = tmp_path_factory.mktemp("core-venv")
    venv.EnvBuilder(with_pip=False, symlinks=True).create(where)
    python = where / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    dependencies = _project()["dependencies"]
    assert isinstance(dependencies, list)
    for name in _closure(dependencies):
        distribution = importlib.metadata.distribution(name)
        tops = {Path(str(path)).parts[0] for path in distribution.files or ()}
        for top in tops - {".."}:
            source = Path(str(distribution.locate_file(top)))
            if source.exists() and not (site / top).exists():
                (site / top).symlink_to(source)
    (site / "airlock-src.pth").write_text(f"{SRC}\n")
    return python


def _run(python: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd)}
    environ["AIRLOCK_MANAGED_SETTINGS_DIR"] = str(cwd)
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, cwd=cwd, env=environ, timeout=60
    )


def test_the_core_interpreter_has_no_extra(core_python: Path, tmp_path: Path) -> None:
    """The interpreter the next tests use really lacks every extra's module."""
    for module in sorted(set(DISTRIBUTIONS.values())):
        found = _run(
            core_python,
            "-c",
            f"import importlib.util as u; print(u.find_spec({module.split('.')[0]!r}))",
            cwd=tmp_path,
        )
        assert found.stdout.strip() == "None", module


def test_airlock_flows_runs_on_the_core(core_python: Path, tmp_path: Path) -> None:
    """import airlock and airlock flows --json work, with the same JSON as here."""
    result = _run(core_python, "-m", "airlock", "flows", "--json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    here = _run(Path(sys.executable), "-m", "airlock", "flows", "--json", cwd=tmp_path)
    assert json.loads(result.stdout) == json.loads(here.stdout)


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        pytest.param(("-m", "airlock", "serve", "--blocklist", "list.txt"), "serve", id="serve"),
        pytest.param(("-m", "airlock", "flows", "--graph", "out.svg"), "graph", id="graph"),
        pytest.param(("-c", "import airlock.collector"), "serve", id="collector_package"),
        pytest.param(("-c", "import airlock.egress"), "run", id="egress_package"),
        pytest.param(("-m", "airlock", "run", "--", "true"), "run", id="run"),
        pytest.param(("-m", "airlock", "audit"), "run", id="audit"),
        pytest.param(
            (
                "-c",
                "from airlock.survey.otel import emit_rating; from airlock.survey.answers import "
                "Rating; emit_rating(Rating.GOOD, 'http://127.0.0.1:9/v1/logs', now_ns=0, version='0')",
            ),
            "otel",
            id="survey_otel_only",
        ),
    ],
)
def test_a_capability_without_its_extra_names_it(
    core_python: Path, tmp_path: Path, args: tuple[str, ...], extra: str
) -> None:
    """Using a capability whose extra is missing fails with a message naming the extra and the
    pip command, never a bare ModuleNotFoundError."""
    (tmp_path / "list.txt").write_text("example.com\n")
    result = _run(core_python, *args, cwd=tmp_path)
    assert result.returncode != 0
    assert f"pip install 'airlock[{extra}]'" in result.stderr
    assert "ModuleNotFoundError" not in result.stderr
    if args[:2] == ("-m", "airlock"):  # the command line says it in one line, no traceback
        assert "Traceback" not in result.stderr
