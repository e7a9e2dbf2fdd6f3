"""``airlock run``: the files where tools keep credentials are not readable inside, wherever the
home, the caller's variables or a symbolic link put them; the user's own ``--ro`` shows one."""

from __future__ import annotations

import subprocess
from pathlib import Path

from airlock.sandbox.stores import SECRET_STORES
from tests.cli import run_script

MARK = "STORED-SECRET-5f1c"


def _plant(path: Path) -> None:
    """A store as its tool keeps it: a file holding the mark, or a folder with one inside."""
    if path.suffix or (path.name.startswith(".") and "." not in path.name[1:]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"password={MARK}\n")
    else:
        path.mkdir(parents=True, exist_ok=True)
        (path / "stored").write_text(f"token={MARK}\n")


def _read_all(paths: list[Path]) -> str:
    """A script that prints every file under each path (and says it ran)."""
    names = " ".join(f"'{path}'" for path in paths)
    return f'for p in {names}; do find "$p" -type f -exec cat {{}} + 2>/dev/null; done; echo ran'


def _run(tmp_path: Path, script: str, *options: str, env: dict[str, str] | None = None) -> str:
    done: subprocess.CompletedProcess[str] = run_script(tmp_path, script, *options, env=env)
    assert done.returncode == 0, done.stderr
    assert "ran" in done.stdout, done.stderr
    return done.stdout


def test_every_store_in_the_home_is_hidden(tmp_path: Path, home: Path) -> None:
    """Each of SECRET_STORES planted in the home reads as nothing inside; a file beside them
    reads as it is."""
    stores = [home / text[2:] for text in SECRET_STORES]
    for path in stores:
        _plant(path)
    (home / "notes.txt").write_text(f"visible {MARK[::-1]}\n")
    out = _run(tmp_path, _read_all([*stores, home / "notes.txt"]))
    assert MARK not in out
    assert MARK[::-1] in out  # the control: the home itself is readable


def test_stores_where_the_variables_put_them(tmp_path: Path, project: Path) -> None:
    """KUBECONFIG's list, GNUPGHOME given relative, KRB5CCNAME with its type, DOCKER_CONFIG's
    config.json, CARGO_HOME's credentials, XDG_CONFIG_HOME's stores and credential paths
    (gh's hosts.yml), XDG_CACHE_HOME's, the shell history HISTFILE names."""
    elsewhere = project / "elsewhere"
    files = {
        "KUBECONFIG": elsewhere / "kube" / "config",
        "GNUPGHOME": elsewhere / "gnupg" / "private-keys-v1.d" / "key",
        "KRB5CCNAME": elsewhere / "krb5cc_1000",
        "DOCKER_CONFIG": elsewhere / "docker" / "config.json",
        "CARGO_HOME": elsewhere / "cargo" / "credentials.toml",
        "XDG_CONFIG_HOME": elsewhere / "xdg" / "hub",
        "XDG_CONFIG_HOME gh": elsewhere / "xdg" / "gh" / "hosts.yml",
        "XDG_CACHE_HOME": elsewhere / "cache" / "huggingface" / "token",
        "HISTFILE": elsewhere / "history",
    }
    for path in files.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{MARK}\n")
    env = {
        "KUBECONFIG": f"{project / 'missing'}:{files['KUBECONFIG']}",
        "GNUPGHOME": "elsewhere/gnupg",
        "KRB5CCNAME": f"FILE:{files['KRB5CCNAME']}",
        "DOCKER_CONFIG": str(elsewhere / "docker"),
        "CARGO_HOME": str(elsewhere / "cargo"),
        "XDG_CONFIG_HOME": str(elsewhere / "xdg"),
        "XDG_CACHE_HOME": str(elsewhere / "cache"),
        "HISTFILE": str(elsewhere / "history"),
    }
    (elsewhere / "cargo" / "config.toml").write_text(f"# {MARK[::-1]}\n")
    out = _run(tmp_path, _read_all([elsewhere]), env=env)
    assert MARK not in out
    assert MARK[::-1] in out  # cargo's own config is no credential: still there


def test_what_a_link_in_a_hidden_folder_leads_to(tmp_path: Path, home: Path) -> None:
    """Dotfiles kept elsewhere and linked in (``~/.aws/credentials -> ~/dotfiles/aws``): the
    file the link names is hidden at its own path too, for CREDENTIAL_PATHS and stores alike."""
    dotfiles = home / "dotfiles"
    dotfiles.mkdir(parents=True)
    (dotfiles / "aws").write_text(f"aws_secret_access_key={MARK}\n")
    (dotfiles / "snowflake").write_text(f"password={MARK}\n")
    (dotfiles / "readme").write_text(f"{MARK[::-1]}\n")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").symlink_to(dotfiles / "aws")
    (home / ".snowflake").mkdir()
    (home / ".snowflake" / "connections.toml").symlink_to(dotfiles / "snowflake")
    out = _run(tmp_path, _read_all([dotfiles]))
    assert MARK not in out
    assert MARK[::-1] in out


def test_the_users_own_ro_shows_a_store(tmp_path: Path, home: Path) -> None:
    """``--ro ~/.m2/settings.xml``: the user asked for it (a build's mirrors), so it is there,
    read-only; the store beside it stays hidden."""
    settings = home / ".m2" / "settings.xml"
    _plant(settings)
    _plant(home / ".m2" / "settings-security.xml")
    script = (
        f"cat {settings}; cat {home}/.m2/settings-security.xml; "
        f"echo x >> {settings} 2>/dev/null && echo WROTE; echo ran"
    )
    out = _run(tmp_path, script, "--ro", "~/.m2/settings.xml")
    assert out.count(MARK) == 1
    assert "WROTE" not in out


def test_git_credential_caches_socket_bound_during_the_run_is_out_of_reach(
    tmp_path: Path, home: Path, project: Path
) -> None:
    """git's credential-cache daemon, started on the host while a run is under way (a
    ``git push`` in another terminal), binds its socket in ``~/.cache/git/credential``, left
    there by its earlier use, and hands its passwords to whoever connects: the folder is
    hidden, so a socket bound there after the run began is not reached from inside."""
    import socket
    import threading

    folder = home / ".cache" / "git" / "credential"
    folder.mkdir(parents=True, mode=0o700)
    project.mkdir(exist_ok=True)
    started, bound = project / "started", project / "bound"  # the workspace: seen both sides
    served: list[bytes] = []
    stop = threading.Event()

    def daemon() -> None:  # binds once the command has started, as the cache's daemon would
        while not started.exists():
            if stop.wait(0.02):
                return
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(folder / "socket"))
            server.listen(1)
            server.settimeout(3)  # the probe connects at once, if it can
            bound.touch()
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.sendall(f"password={MARK}\n".encode())
                served.append(b"served")

    thread = threading.Thread(target=daemon, daemon=True)
    thread.start()
    probe = (
        "import socket, time, pathlib\n"
        f"pathlib.Path({str(started)!r}).touch()\n"
        f"while not pathlib.Path({str(bound)!r}).exists(): time.sleep(0.02)\n"
        "s = socket.socket(socket.AF_UNIX)\n"
        f"try: s.connect({str(folder / 'socket')!r}); print(s.recv(100).decode())\n"
        "except OSError as e: print('unreached', e.errno)\n"
    )
    try:
        done = run_script(
            tmp_path, 'python3 -c "$PROBE"; echo ran', env={"PROBE": probe}, cwd=project
        )
    finally:
        stop.set()
        thread.join(15)
    assert done.returncode == 0, done.stderr
    assert MARK not in done.stdout and "unreached" in done.stdout, done.stdout + done.stderr
    assert served == []
