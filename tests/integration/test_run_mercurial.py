"""``airlock run``: what Mercurial would run outside later cannot be written inside, or is set
aside after the run (a real ``hg``, real sandboxes)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from airlock.sandbox.mercurial import included
from airlock.sandbox.repositories import scan_workspace
from airlock.sandbox.written import WATCHED, snapshot
from tests.cli import run_script

HG = shutil.which("hg")  # installed by scripts/setup.sh --dev


def _hg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert HG is not None, "the tests need Mercurial: bash scripts/setup.sh --dev"
    return subprocess.run(
        [HG, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def _hook(marker: Path) -> str:
    """An ``hgrc`` whose hook, run by any ``hg status``, makes ``marker``."""
    return f"[hooks]\npre-status = touch {marker}\n"


def test_the_walk_notes_hg_folders_without_entering_them(tmp_path: Path) -> None:
    (tmp_path / ".hg" / "store" / "data" / ".vscode").mkdir(parents=True)
    (tmp_path / "sub" / ".hg").mkdir(parents=True)
    (tmp_path / "sub" / ".hg" / "hgrc").write_text("[ui]\n")
    scan = scan_workspace(tmp_path, WATCHED)
    assert set(scan.hg) == {tmp_path / ".hg", tmp_path / "sub" / ".hg"}
    assert scan.named == ()  # the store's .vscode is not a project's setting
    seen = snapshot(tmp_path, scan=scan)
    assert set(seen.entries) == {tmp_path / "sub" / ".hg" / "hgrc"}


def test_includes_are_followed_relative_to_the_file_that_names_them(tmp_path: Path) -> None:
    (tmp_path / "repo" / ".hg").mkdir(parents=True)
    (tmp_path / "repo" / ".hg" / "hgrc").write_text(
        "[ui]\n%include ../../shared.rc\n%include /proc/self/environ\n"
    )
    (tmp_path / "shared.rc").write_text("%include more/next.rc\n%include shared.rc\n")
    found = included([tmp_path / "repo" / ".hg" / "hgrc", tmp_path / "repo" / ".hg" / "none"])
    assert [path.resolve() for path in found] == [
        tmp_path / "shared.rc",
        tmp_path / "more" / "next.rc",
    ]


def test_a_repositorys_config_and_what_it_includes_are_read_only_inside(
    tmp_path: Path, project: Path
) -> None:
    """The root's and a nested repository's config, missing or not, a share-safe repository's
    ``hgrc-not-shared``, an included file and a missing included one: none can be written
    inside; ``hg`` works there; no placeholder is left after the run."""
    project.mkdir(exist_ok=True)
    assert _hg("init", "-q", ".", cwd=project).returncode == 0
    (project / "sub").mkdir()
    assert _hg("init", "-q", ".", cwd=project / "sub").returncode == 0
    (project / "shared.rc").write_text("[ui]\n")
    (project / "sub" / ".hg" / "hgrc").write_text("%include ../../shared.rc\n%include extra.rc\n")
    attempts = [
        ".hg/hgrc",
        ".hg/hgrc-not-shared",
        "sub/.hg/hgrc",
        "shared.rc",
        "sub/.hg/extra.rc",
    ]
    script = " ; ".join(
        f"(printf '[hooks]\\npre-status=true\\n' >> {path} 2>/dev/null && echo wrote {path})"
        for path in attempts
    )
    done = run_script(tmp_path, f"{script} ; hg status -q && echo hg-works")
    assert done.returncode == 0, done.stderr
    assert "wrote" not in done.stdout, done.stdout
    assert "hg-works" in done.stdout, done.stderr
    assert not (project / ".hg" / "hgrc").exists()  # the placeholder is gone
    assert not (project / "sub" / ".hg" / "extra.rc").exists()
    assert (project / "shared.rc").read_text() == "[ui]\n"
    assert "set aside" not in done.stderr


def test_a_repository_made_inside_runs_nothing_outside_later(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """A repository made inside with a hook, a ``sharedpath`` added to the root's, and a
    ``.hg`` link to a folder of one's own: set aside after the run, so the user's ``hg``
    there runs no hook."""
    project.mkdir(exist_ok=True)
    assert _hg("init", "-q", ".", cwd=project).returncode == 0
    marker = tmp_path / "ran-outside"
    done = run_script(
        tmp_path,
        f"hg init -q new && printf '{_hook(marker)}' > new/.hg/hgrc && "
        "echo /tmp > .hg/sharedpath && "
        "mkdir -p linked/own && cp -r new/.hg linked/own/store && "
        "ln -s own/store linked/.hg && echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    assert marker.exists() is False  # the hook ran inside only, where /tmp is private
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert "pre-status" in (run / "new" / ".hg" / "hgrc").read_text()
    assert (run / ".hg" / "sharedpath").exists()
    assert (run / "linked" / ".hg").is_symlink()
    for moved in ("new/.hg/hgrc", ".hg/sharedpath", "linked/.hg"):
        assert moved in done.stderr, done.stderr
    for folder in (project / "new", project, project / "linked"):
        _hg("status", cwd=folder)
    assert not marker.exists(), "a hook written inside ran outside"


def test_the_users_hg_config_is_read_only_in_a_writable_home(
    tmp_path: Path, project: Path, home: Path
) -> None:
    """Mercurial's and mise's user configs, and the scripts shell start-up files source
    (cargo's env, nvm's): read-only even with the home writable."""
    (home / ".config").mkdir(parents=True, exist_ok=True)
    (home / ".cargo").mkdir()
    (home / ".cargo" / "env").write_text("export PATH=$HOME/.cargo/bin:$PATH\n")
    done = run_script(
        tmp_path,
        "for path in ~/.hgrc ~/.config/hg/hgrc ~/.config/mise/config.toml ~/.cargo/env "
        "~/.nvm/nvm.sh; do "
        "(mkdir -p $(dirname $path) 2>/dev/null; echo '[hooks]' > $path) 2>/dev/null "
        "&& echo wrote $path; done; true",
        "--rw",
        "~",
    )
    assert done.returncode == 0, done.stderr
    assert "wrote" not in done.stdout, done.stdout
    assert not (home / ".hgrc").exists() or (home / ".hgrc").stat().st_size == 0
    assert (home / ".cargo" / "env").read_text().startswith("export PATH")


def test_a_shares_source_and_a_worktrees_main_repository_stay_read_only_under_rw(
    tmp_path: Path, project: Path
) -> None:
    """The workspace is an ``hg share`` and holds a git worktree; their sources are opened
    with ``--rw`` (to commit there): the source's hgrc and the main repository's git config
    and hooks stay read-only inside."""
    source = tmp_path / "source"
    source.mkdir()
    assert _hg("init", "-q", ".", cwd=source).returncode == 0
    (source / ".hg" / "hgrc").write_text("[ui]\n")
    project.mkdir(exist_ok=True)
    shared = _hg(
        "--config",
        "extensions.share=",
        "share",
        "-q",
        str(source),
        str(project / "hg"),
        cwd=tmp_path,
    )
    assert shared.returncode == 0, shared.stderr
    main = tmp_path / "main"
    subprocess.run(["git", "init", "-q", str(main)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(main),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    subprocess.run(
        ["git", "-C", str(main), "worktree", "add", "-q", str(project / "wt")], check=True
    )
    targets = [
        source / ".hg" / "hgrc",
        main / ".git" / "config",
        main / ".git" / "hooks" / "post-checkout",
    ]
    script = " ; ".join(
        f"(echo '[hooks]' >> {path}) 2>/dev/null && echo WROTE {path}" for path in targets
    )
    done = run_script(tmp_path, script + " ; echo done", "--rw", str(source), "--rw", str(main))
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert (source / ".hg" / "hgrc").read_text() == "[ui]\n"


def test_what_an_hgrc_runs_and_includes_through_a_link_stays_put(
    tmp_path: Path, project: Path
) -> None:
    """A hook's script and an extension's file the hgrc names, and an included file reached
    through a link: read-only inside; a link replaced inside is put back."""
    project.mkdir(exist_ok=True)
    assert _hg("init", "-q", ".", cwd=project).returncode == 0
    (project / "tools" / "hg").mkdir(parents=True)
    (project / "tools" / "hg" / "common.rc").write_text("[ui]\n")
    (project / "conf").symlink_to("tools/hg")
    (project / "scripts").mkdir()
    (project / "scripts" / "check.sh").write_text("#!/bin/sh\n")
    (project / "ext.py").write_text("# an extension\n")
    (project / ".hg" / "hgrc").write_text(
        "%include ../conf/common.rc\n[hooks]\nprecommit = sh scripts/check.sh --fast\n"
        "[extensions]\nmine = ext.py\n"
    )
    targets = ["conf/common.rc", "scripts/check.sh", "ext.py"]
    script = " ; ".join(
        f"(echo evil >> {path}) 2>/dev/null && echo WROTE {path}" for path in targets
    )
    script += " ; rm conf && mkdir conf && echo '[hooks]' > conf/common.rc ; echo done"
    done = run_script(tmp_path, script)
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout and "WROTE" not in done.stdout, done.stdout
    assert (project / "conf").is_symlink()  # put back after the run
    assert (project / "tools" / "hg" / "common.rc").read_text() == "[ui]\n"


def test_past_the_walks_bound_on_hg_folders_the_run_says_so(tmp_path: Path) -> None:
    for number in range(302):
        (tmp_path / f"d{number}" / ".hg").mkdir(parents=True)
    scan = scan_workspace(tmp_path, WATCHED)
    assert len(scan.hg) == 300
    assert ".hg folders past the first 300" in scan.cut
    assert not snapshot(tmp_path, scan=scan).complete  # the run says what it did not check
