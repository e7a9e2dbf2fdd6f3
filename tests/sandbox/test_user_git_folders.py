"""``airlock run --rw ~``: the hooks and template folders git's own configs name for every
repository stay read-only whatever sets them: a file included only under a condition
(``includeIf "gitdir:…"``, ``onbranch:``, ``hasconfig:remote.*.url:``), which git asked in
one place does not read, or the variables that give git config as if on its command line
(``GIT_CONFIG_COUNT``, ``GIT_CONFIG_PARAMETERS``)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from airlock.sandbox.repositories import given_config, user_git_rules
from tests.cli import airlock

HOOK = "#!/bin/sh\necho RAN > {ran}\n"


def _run(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), *args, env=env, timeout=180)


def _plant_hook(hook: Path, ran: Path) -> str:
    """A script that writes an executable hook at ``hook`` (its folders too) that leaves
    ``ran`` when run, and says whether it could."""
    text = HOOK.format(ran=ran).replace("\n", "\\n")
    return (
        f"(mkdir -p {hook.parent} && printf '{text}' > {hook} && chmod +x {hook}) 2>/dev/null "
        f"&& echo WROTE {hook}; "
    )


def _git(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    environ = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("GIT_") and name not in ("XDG_CONFIG_HOME",)
    }
    return subprocess.run(
        ["git", "-c", "user.name=a", "-c", "user.email=a@b", *args],
        cwd=cwd,
        env={**environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1"},
        capture_output=True,
        text=True,
        check=True,
    )


def test_a_hooks_folder_set_under_a_condition_cannot_be_written(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """The reviewer's case: ~/.gitconfig includes ~/.gitconfig-work under
    ``includeIf "gitdir:~/work/"``, which sets ``core.hooksPath = ~/work-hooks`` (there); and
    under ``hasconfig:remote.*.url:`` (from the included file, two deep) a
    ``init.templateDir`` that is missing. Under --rw ~ (the workspace no repository, where no
    condition holds) the hook cannot be written nor the template folder made; afterwards
    ``git commit`` outside in ~/work/r runs no hook."""
    (home / ".gitconfig").write_text('[includeIf "gitdir:~/work/"]\n\tpath = ~/.gitconfig-work\n')
    (home / ".gitconfig-work").write_text(
        "[core]\n\thooksPath = ~/work-hooks\n"
        '[includeIf "hasconfig:remote.*.url:https://example.com/**"]\n\tpath = .gitconfig-origin\n'
    )
    (home / ".gitconfig-origin").write_text("[init]\n\ttemplateDir = ~/.origin-templates\n")
    (home / "work-hooks").mkdir()
    ran = home / "ran"
    script = (
        _plant_hook(home / "work-hooks" / "pre-commit", ran)
        + _plant_hook(home / ".origin-templates" / "hooks" / "post-checkout", ran)
        + "echo ok"
    )
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "ok" in done.stdout, done.stdout
    assert list((home / "work-hooks").iterdir()) == []
    assert not (home / ".origin-templates").exists()
    work_tree = home / "work" / "r"
    work_tree.mkdir(parents=True)
    _git("init", "-q", ".", cwd=work_tree, home=home)
    _git("commit", "-q", "--allow-empty", "-m", "x", cwd=work_tree, home=home)
    assert not ran.exists()


def test_a_hooks_folder_given_in_the_environment_cannot_be_made(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """``GIT_CONFIG_COUNT`` gives ``core.hooksPath = ~/env-hooks`` and
    ``GIT_CONFIG_PARAMETERS`` (as ``git -c`` sets it) includes ~/.gitconfig-given, which sets
    ``init.templateDir = ~/given-templates``: both missing, neither can be made under --rw ~."""
    (home / ".gitconfig-given").write_text("[init]\n\ttemplateDir = ~/given-templates\n")
    env = {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.hooksPath",
        "GIT_CONFIG_VALUE_0": "~/env-hooks",
        "GIT_CONFIG_PARAMETERS": f"'include.path'='{home}/.gitconfig-given'",
    }
    ran = home / "ran"
    script = (
        _plant_hook(home / "env-hooks" / "pre-commit", ran)
        + _plant_hook(home / "given-templates" / "hooks" / "post-checkout", ran)
        + "echo ok"
    )
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script, env=env)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "ok" in done.stdout, done.stdout
    assert not (home / "env-hooks").exists()
    assert not (home / "given-templates").exists()


def test_a_file_the_environments_config_includes_cannot_be_written(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """``GIT_CONFIG_PARAMETERS`` includes ~/team/given.inc (there) and ``GIT_CONFIG_COUNT``
    ~/team/later.inc (missing): under --rw ~ code inside can neither
    add a ``core.fsmonitor`` to the first nor make the second, which the user's git outside
    reads whenever its shell gives it those variables."""
    (home / "team").mkdir(parents=True)
    given = home / "team" / "given.inc"
    given.write_text("[diff]\n\trenames = true\n")
    later = home / "team" / "later.inc"
    env = {
        "GIT_CONFIG_PARAMETERS": f"'include.path'='{given}'",
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "include.path",
        "GIT_CONFIG_VALUE_0": "~/team/later.inc",
    }
    script = "".join(
        f"printf '[core]\\n\\tfsmonitor = touch PWNED\\n' >> {path} 2>/dev/null && echo WROTE; "
        for path in (given, later)
    )
    done = _run(tmp_path, "--rw", "~", "--", "sh", "-c", script + "echo ok", env=env)
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout and "ok" in done.stdout, done.stdout
    assert "fsmonitor" not in given.read_text()
    assert not later.exists()


def test_the_environments_config_is_read_as_git_quotes_it(home: Path) -> None:
    """``GIT_CONFIG_PARAMETERS`` as git itself writes it for ``git -c`` (quotes, ``!`` and
    spaces in a value; a key with no value), then ``GIT_CONFIG_COUNT``'s pairs, up to the
    first missing key (where git stops)."""
    printed = subprocess.run(
        [
            *("git", "-c", "core.hooksPath=/hooks/it's here!", "-c", "include.path=~/inc"),
            *("-c", "core.bare", "-c", 'alias.given=!printf %s "$GIT_CONFIG_PARAMETERS"'),
            "given",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    environ = {
        "GIT_CONFIG_PARAMETERS": printed,
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "init.templateDir",
        "GIT_CONFIG_VALUE_0": "/templates",
        "GIT_CONFIG_VALUE_1": "/not/read",
    }
    assert given_config(environ) == [
        ("core.hooksPath", "/hooks/it's here!"),
        ("include.path", "~/inc"),
        ("alias.given", '!printf %s "$GIT_CONFIG_PARAMETERS"'),
        ("init.templateDir", "/templates"),
    ]
    rules = user_git_rules(home, home / "project", environ, "why")
    assert [(rule.path, rule.exists) for rule in rules] == [
        (Path("/hooks"), False),  # the first missing folder on the way
        (Path("/templates"), False),
    ]
