"""What a project's ``.envrc`` makes direnv read: found as direnv would, and read-only inside."""

from __future__ import annotations

import os
from pathlib import Path

from airlock.sandbox.direnv import FILES, path_folders, read_by
from tests.cli import run_script


def _envrc(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / ".envrc"
    path.write_text(text)
    return path


def test_the_files_direnv_reads_are_found_where_it_reads_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    envrc = _envrc(
        tmp_path / "p",
        "# source_env commented\n"
        "PATH_add bin\n"
        "source_env_if_exists .envrc.local\n"
        "dotenv\n"
        "dotenv_if_exists .env.secret ; source ./scripts/env.sh\n"
        'if [ -f x ]; then . "$PWD/lib.sh"; fi\n'
        "use flake .#dev\n"
        "use nix -p hello\n"
        "use nix shell2.nix\n"
        "source_env $UNKNOWN/x\n"
        "source_env ~/shared.envrc\n"
        "watch_file source\n"
        'export A="two\nlines source_env not-a-command"\n'
        "source_env \\\n  continued.envrc\n",
    )
    p = tmp_path / "p"
    assert read_by([envrc], home) == [
        p / ".envrc.local",
        p / ".env",
        p / ".env.secret",
        p / "scripts" / "env.sh",
        p / "lib.sh",
        p / "flake.nix",
        p / "flake.lock",
        p / "shell2.nix",
        home / "shared.envrc",
        p / "continued.envrc",
    ]


def test_scripts_are_followed_and_a_folder_means_its_envrc(tmp_path: Path) -> None:
    envrc = _envrc(tmp_path / "p", "source_env ../shared\nsource_up\n")
    _envrc(tmp_path / "shared", "source_env_if_exists ./more.sh\nsource_env ../p/.envrc\n")
    (tmp_path / "shared" / "more.sh").write_text("dotenv .env.more\n")
    _envrc(tmp_path, "")  # what source_up finds: the nearest parent's
    found = [Path(os.path.realpath(path)) for path in read_by([envrc], tmp_path / "home")]
    assert found == [
        tmp_path / "shared" / ".envrc",
        tmp_path / ".envrc",
        tmp_path / "shared" / "more.sh",
        tmp_path / "shared" / ".env.more",
    ]


def test_a_name_sourced_without_a_folder_is_looked_for_on_path_first(tmp_path: Path) -> None:
    """``source helper.sh``: the shell reads the first ``helper.sh`` on ``PATH``, where the
    ``.envrc`` has just put ``bin``; both that one and the folder's own are read."""
    envrc = _envrc(tmp_path, "PATH_add bin\nsource helper.sh\n")
    assert read_by([envrc], tmp_path) == [tmp_path / "helper.sh", tmp_path / "bin" / "helper.sh"]


def test_a_hostile_envrc_is_bounded(tmp_path: Path) -> None:
    lines = "".join(f"source_env_if_exists f{number}\n" for number in range(FILES * 3))
    envrc = _envrc(tmp_path, lines + "echo 'unclosed\n" + "source_env /proc/self/environ\n")
    found = read_by([envrc, tmp_path / "missing" / ".envrc"], tmp_path)
    assert len(found) == FILES
    assert found[0] == tmp_path / "f0"


def test_what_an_envrc_reads_cannot_be_written_inside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """The root's and a subfolder's ``.envrc``: what they load (``.envrc.local`` missing,
    ``.env`` there, a nix shell) is read-only inside; other files are not; nothing is left in
    the workspace after the run, and the ``.env`` is as it was."""
    _envrc(project, "source_env_if_exists .envrc.local\ndotenv\n")
    (project / ".env").write_text("A=1\n")
    _envrc(project / "sub", "use nix\n")
    (project / "sub" / "shell.nix").write_text("{}\n")
    targets = [".envrc.local", ".env", "sub/shell.nix", "sub/default.nix", "free.txt"]
    script = " ; ".join(
        f"(echo 'PROMPT_COMMAND=evil' >> {path}) 2>/dev/null && echo wrote {path}"
        for path in targets
    )
    done = run_script(tmp_path, script + " ; true")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:-1] == ["wrote free.txt"], done.stdout
    assert (project / ".env").read_text() == "A=1\n"
    assert not (project / ".envrc.local").exists()
    assert not (project / "sub" / "default.nix").exists()


def test_the_folders_an_envrc_puts_on_path(tmp_path: Path) -> None:
    home = tmp_path / "home"
    envrc = _envrc(
        tmp_path / "p",
        "PATH_add bin tools/bin\npath_add MANPATH man\npath_add PATH scripts\n"
        "load_prefix ./prefix\nlayout node\nlayout python\nsource_env .envrc.local\n",
    )
    (tmp_path / "p" / ".envrc.local").write_text("PATH_add ~/local/bin\n")
    p = tmp_path / "p"
    assert path_folders([envrc], home) == [
        p / "bin",
        p / "tools" / "bin",
        p / "scripts",
        p / "prefix" / "bin",
        p / "prefix" / "sbin",
        p / "node_modules" / ".bin",
        home / "local" / "bin",
    ]
    assert read_by([envrc], home) == [p / ".envrc.local"]  # a folder on PATH is not read


def test_a_program_made_on_an_envrcs_path_in_place_of_a_command_is_set_aside(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    """``bin/git`` and ``node_modules/.bin/ls`` made inside, where the ``.envrc`` puts them
    first on ``PATH``, are set aside and named; a program of a new name stays and is named
    too; a file that is no program, and a program there before the run, stay unnamed."""
    _envrc(project, "PATH_add bin\nlayout node\n")
    (project / "bin").mkdir()
    (project / "bin" / "mine").write_text("#!/bin/sh\n")
    done = run_script(
        tmp_path,
        "printf '#!/bin/sh\\necho pwned\\n' > bin/git && chmod +x bin/git && "
        "mkdir -p node_modules/.bin && cp bin/git node_modules/.bin/ls && "
        "echo ok > node_modules/.bin/not-a-command-anywhere && "
        "printf '#!/bin/sh\\n' > bin/fresh-tool && chmod +x bin/fresh-tool && echo done",
    )
    assert done.returncode == 0, done.stderr
    assert "done" in done.stdout
    assert not (project / "bin" / "git").exists()
    assert not (project / "node_modules" / ".bin" / "ls").exists()
    assert (project / "node_modules" / ".bin" / "not-a-command-anywhere").exists()
    assert (project / "bin" / "mine").exists()
    [run] = list((config_dir / "airlock" / "set-aside").iterdir())
    assert "pwned" in (run / "on-path" / (project / "bin" / "git").relative_to("/")).read_text()
    assert "in place of" in done.stderr and "bin/git" in done.stderr, done.stderr
    assert (project / "bin" / "fresh-tool").exists()
    [named] = [line for line in done.stderr.splitlines() if "program(s) made" in line]
    assert "(fresh-tool)" in named and "1 program(s)" in named, named
    assert "not-a-command-anywhere" not in done.stderr and "mine" not in named


def test_a_run_says_when_envrcs_read_more_than_it_protects(
    tmp_path: Path, project: Path, config_dir: Path
) -> None:
    lines = "".join(f"source_env_if_exists f{number}\n" for number in range(FILES + 1))
    _envrc(project, lines)
    done = run_script(tmp_path, "(echo x > f0) 2>/dev/null || echo protected")
    assert done.returncode == 0, done.stderr
    assert "protected" in done.stdout
    assert f"the first {FILES}" in done.stderr, done.stderr


def test_what_a_nix_shell_imports_is_read_too(tmp_path: Path) -> None:
    """``use nix``: the files ``shell.nix`` names by relative paths (an imported devshell, a
    hook read with ``builtins.readFile``, a folder's ``default.nix``), and theirs in turn."""
    envrc = _envrc(tmp_path, "use nix\n")
    (tmp_path / "nix").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "shell.nix").write_text(
        "{ pkgs ? import <nixpkgs> {} }: pkgs.mkShell {\n"
        "  inputsFrom = [ (import ./nix/devshell.nix {}) ];\n"
        "  shellHook = builtins.readFile ./hook.sh;\n"
        '  url = "https://example.com/a/b"; gone = ./missing.nix;\n}\n'
    )
    (tmp_path / "nix" / "devshell.nix").write_text("import ../lib\n")
    (tmp_path / "lib" / "default.nix").write_text("{}\n")
    (tmp_path / "hook.sh").write_text("echo hi\n")
    found = [Path(os.path.realpath(path)) for path in read_by([envrc], tmp_path / "home")]
    assert found == [
        tmp_path / "shell.nix",
        tmp_path / "default.nix",
        tmp_path / "nix" / "devshell.nix",
        tmp_path / "hook.sh",
        tmp_path / "lib" / "default.nix",
    ]


def test_a_nix_file_without_imports_is_not_read_as_a_shell_script(tmp_path: Path) -> None:
    """A ``shell.nix`` naming no file by a relative path adds nothing: its text (``source
    = …;``, ``dotenv``) is Nix, not direnv's commands."""
    envrc = _envrc(tmp_path, "use nix\n")
    (tmp_path / "shell.nix").write_text("{ }: {\n  source = builtins.getEnv;\n}\ndotenv\n")
    found = [path.name for path in read_by([envrc], tmp_path / "home")]
    assert found == ["shell.nix", "default.nix"]
