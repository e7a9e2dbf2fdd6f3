"""Where credential stores are looked for: the homes, the variables that move them, the links
out of a hidden folder."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

from airlock.sandbox.paths import Kind
from airlock.sandbox.stores import homes, links_out_of, store_paths, store_rules


def test_kerberos_caches_by_type_and_kubeconfigs_as_a_list(tmp_path: Path) -> None:
    """``FILE:`` and ``DIR:`` name files; ``KEYRING:`` names none; KUBECONFIG is a list;
    a relative path is read from where the command starts."""
    environ = {
        "KRB5CCNAME": "KEYRING:persistent:1000",
        "KRB5_CLIENT_KTNAME": "FILE:/etc/client.keytab",
        "KUBECONFIG": f"/a/config{os.pathsep}relative/config",
    }
    paths = store_paths([], environ, tmp_path)
    assert Path("/etc/client.keytab") in paths
    assert Path("/a/config") in paths
    assert tmp_path / "relative" / "config" in paths
    assert not any("persistent" in str(path) for path in paths)


def test_xdg_config_home_moves_the_config_stores(tmp_path: Path) -> None:
    """``XDG_CONFIG_HOME`` and ``XDG_DATA_HOME`` move the stores under ``~/.config`` and
    ``~/.local/share``; a relative one is ignored (the specification ignores it too)."""
    paths = store_paths([], {"XDG_CONFIG_HOME": "/x/conf", "XDG_DATA_HOME": "rel"}, tmp_path)
    assert Path("/x/conf/hub") in paths
    assert Path("/x/conf/airlock/collector.key") in paths
    assert not any(str(path).startswith(str(tmp_path)) for path in paths)


def test_homes_add_the_account_home_and_sudo_users(tmp_path: Path) -> None:
    """The account database's home of the user airlock runs as, and of SUDO_USER, besides
    HOME; each once."""
    own = Path(pwd.getpwuid(os.getuid()).pw_dir)
    found = homes(tmp_path, {"SUDO_USER": pwd.getpwuid(os.getuid()).pw_name})
    assert found[0] == tmp_path
    if own != Path("/"):
        assert own in found
    assert len(found) == len({path.resolve() for path in found})


def test_a_store_named_twice_is_one_rule_and_the_root_none(tmp_path: Path) -> None:
    """A variable naming ``/`` hides nothing (nothing would be left to run)."""
    (tmp_path / "kube").write_text("x")
    environ = {
        "KUBECONFIG": f"{tmp_path / 'kube'}{os.pathsep}{tmp_path / 'kube'}",
        "GNUPGHOME": "/",
    }
    rules = list(store_rules([], environ, tmp_path))
    assert [(rule.kind, rule.path) for rule in rules] == [(Kind.HIDE, tmp_path / "kube")]


def test_links_out_of_a_folder(tmp_path: Path) -> None:
    """Links to files and folders outside, resolved; one inside and a broken one are not."""
    folder, outside = tmp_path / "store", tmp_path / "outside"
    (folder / "deeper").mkdir(parents=True)
    outside.mkdir()
    (outside / "key").write_text("k")
    (folder / "deeper" / "key").symlink_to(outside / "key")
    (folder / "all").symlink_to(outside)
    (folder / "self").symlink_to(folder / "deeper")
    (folder / "broken").symlink_to(tmp_path / "missing")
    assert sorted(links_out_of(folder)) == sorted([outside / "key", outside])


def test_the_agents_sign_ins_are_hidden_in_the_other_homes_only(tmp_path: Path) -> None:
    """``HOME``'s own agent sign-ins stay (the agent inside uses them); those in the other
    homes (the account's real home, ``SUDO_USER``'s) are hidden, with the newer stores."""
    home, other = tmp_path / "home", tmp_path / "account"
    for folder in (home, other):
        (folder / ".claude").mkdir(parents=True)
        (folder / ".claude" / ".credentials.json").write_text("{}")
        (folder / ".codex").mkdir()
        (folder / ".codex" / "auth.json").write_text("{}")
        (folder / ".tsh").mkdir()
    hidden = {rule.path for rule in store_rules([home, other], {}, tmp_path)}
    assert other / ".claude" / ".credentials.json" in hidden
    assert other / ".codex" / "auth.json" in hidden
    assert home / ".claude" / ".credentials.json" not in hidden
    assert home / ".codex" / "auth.json" not in hidden
    assert {home / ".tsh", other / ".tsh"} <= hidden
