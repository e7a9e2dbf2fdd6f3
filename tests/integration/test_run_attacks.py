"""``airlock run`` attacked from inside: each variant tries to get around a rule, and must fail."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli import run_script

RENAME_AND_RECREATE = [
    # (what exists before, the attack run inside, the file that must not appear afterwards)
    pytest.param(
        {".claude/settings.json": "{}"},
        "mv .claude .claude_old; mkdir -p .claude && echo evil > .claude/settings.json",
        ".claude/settings.json",
        id="rename .claude, recreate settings.json",
    ),
    pytest.param(
        {".claude/settings.json": "{}"},
        "mv .claude .claude_old; mkdir -p .claude/commands && echo evil > .claude/commands/x.md",
        ".claude/commands/x.md",
        id="rename .claude, recreate commands",
    ),
    pytest.param(
        {".git/config": "[core]\n", ".git/hooks/README": ""},
        "mv .git .git_old; mkdir -p .git/hooks && echo evil > .git/hooks/post-checkout",
        ".git/hooks/post-checkout",
        id="rename .git, recreate hooks",
    ),
    pytest.param(
        {".git/config": "[core]\n"},
        "rm -rf .git 2>/dev/null; mv .git .gone; ln -s /tmp/x .git; mkdir -p .git/hooks; "
        "echo evil > .git/hooks/post-checkout",
        ".git/hooks/post-checkout",
        id="replace .git with a symlink",
    ),
    pytest.param(
        {".git/config": "[core]\n"},
        "mv .git .git_old; mkdir .git && echo '[core] fsmonitor = evil' > .git/config",
        ".git/config",
        id="rename .git, recreate config",
    ),
]


@pytest.mark.parametrize(("before", "attack", "must_not_appear"), RENAME_AND_RECREATE)
def test_a_protected_path_cannot_be_freed_by_renaming_its_folder(
    tmp_path: Path, project: Path, before: dict[str, str], attack: str, must_not_appear: str
) -> None:
    """Moving the folder that holds a protected path away does not let code inside recreate it."""
    for name, text in before.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    original = {name: (project / name).read_text() for name in before}
    done = run_script(tmp_path, attack)
    assert done.returncode != 125, done.stderr
    target = project / must_not_appear
    assert "evil" not in (target.read_text() if target.is_file() else ""), done.stdout + done.stderr
    for name, text in original.items():
        assert (project / name).read_text() == text, name


GIT_CODE_PATHS = [
    # files that make git run a program later: hooks, the config's fsmonitor, and a commondir
    # pointing at another folder, whose config and hooks git then reads instead
    pytest.param(".git/hooks/pre-commit", id="hook"),
    pytest.param(".git/config", id="config"),
    pytest.param(".git/commondir", id="commondir"),
]


@pytest.mark.parametrize("name", GIT_CODE_PATHS)
def test_a_file_git_runs_code_from_cannot_be_written(
    tmp_path: Path, project: Path, name: str
) -> None:
    """Code inside cannot write a git file that would make git run a program outside later."""
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    before = (project / name).read_bytes() if (project / name).exists() else None
    done = run_script(tmp_path, f"echo ../evil > {name} && echo WROTE")
    assert "WROTE" not in done.stdout, done.stdout + done.stderr
    after = (project / name).read_bytes() if (project / name).exists() else None
    assert after == before


def test_the_kernels_settings_cannot_be_written_from_inside(tmp_path: Path) -> None:
    """``/proc/sys`` (``kernel.core_pattern`` would name a program the kernel runs as root
    outside every namespace) is read-only inside, as root too, where the command stays uid 0;
    the host's key names and timers are not shown. The value written back is the one there,
    so a failure of this test changes nothing."""
    pattern = Path("/proc/sys/kernel/core_pattern").read_text()
    ratelimit = Path("/proc/sys/kernel/printk_ratelimit").read_text()
    done = run_script(
        tmp_path,
        f"(printf '%s' '{pattern.strip()}' > /proc/sys/kernel/core_pattern) 2>/dev/null "
        "&& echo WROTE; "
        f"(echo {ratelimit.strip()} > /proc/sys/kernel/printk_ratelimit) 2>/dev/null "
        "&& echo WROTE; "
        "wc -c < /proc/keys; mount | grep -c ' /proc/sys ' ; echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout, done.stdout
    keys, mounted, end = done.stdout.split()
    assert (keys, end) == ("0", "done")
    assert int(mounted) >= 1  # read-only by a mount of its own
    assert Path("/proc/sys/kernel/core_pattern").read_text() == pattern
    assert Path("/proc/sys/kernel/printk_ratelimit").read_text() == ratelimit


def test_the_audit_login_uid_cannot_be_taken_from_inside(tmp_path: Path) -> None:
    """An unset audit login uid (a service's, a container's) could be set once by any process:
    inside, it is the sandbox's own user's already, and writing another fails."""
    if not Path("/proc/self/loginuid").exists():
        pytest.fail("this kernel has no audit login uid; the test needs one")
    done = run_script(
        tmp_path,
        "(echo 12345 > /proc/self/loginuid) 2>/dev/null && echo WROTE; "
        "cat /proc/self/loginuid; echo; id -u",
    )
    assert done.returncode == 0, done.stderr
    assert "WROTE" not in done.stdout, done.stdout
    login, user = done.stdout.split()
    assert login != "4294967295"  # set: no process may take it any more
    assert login != "12345"
    if Path("/proc/self/loginuid").read_text().strip() == "4294967295":
        assert login == user
