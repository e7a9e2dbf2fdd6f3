"""Where tools keep credentials: hidden inside the sandbox, wherever the caller's variables put them.

:data:`~airlock.sandbox.paths.CREDENTIAL_PATHS` are the credentials that also run code outside
later (``~/.ssh/config``, ``~/.aws/config``): a missing one is kept from being made inside.
The stores here are only read by their tools (a registry's password, a CLI's token, a
browser's cookies, a shell's history): each is hidden when it is there, and nothing is done
for a missing one. A store is looked for

- in the home (``HOME``), and in the home the account database names for the user airlock
  runs as, when that differs (a run with ``HOME`` set elsewhere), and for the user who ran
  ``sudo`` (``SUDO_USER``): their credentials are on the same machine;
- where the caller's variables move it (:data:`STORE_VARIABLES`: ``KUBECONFIG``,
  ``GOOGLE_APPLICATION_CREDENTIALS``, ``GNUPGHOME``, ``HISTFILE``, ``XDG_CONFIG_HOME`` for
  every ``~/.config`` store and credential path, ``XDG_DATA_HOME``, ``XDG_CACHE_HOME``, …);
- where a symbolic link in a hidden folder leads (``~/.aws/credentials ->
  ~/dotfiles/aws/credentials``): hiding the folder hides the link, not what it names.

The user's own ``--ro PATH`` or ``--rw PATH`` naming a store shows it (a build that needs
Maven's ``settings.xml`` for its mirrors); ``--hide`` hides any other.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from airlock.sandbox.paths import CREDENTIAL_PATHS, Mount, hide_credentials, resolve

SECRET_STORES: tuple[str, ...] = (
    # package registries and build tools
    "~/.m2/settings.xml",
    "~/.m2/settings-security.xml",
    "~/.sbt/.credentials",
    "~/.sbt/credentials",
    "~/.ivy2/.credentials",
    "~/.jfrog",
    "~/.gradle/gradle.properties",
    "~/.nuget/NuGet/NuGet.Config",
    "~/.gem/credentials",
    "~/.local/share/gem/credentials",
    "~/.bundle/config",
    "~/.yarnrc.yml",
    "~/.config/pip/pip.conf",
    "~/.pip/pip.conf",
    "~/.config/pypoetry/auth.toml",
    "~/.config/composer/auth.json",
    "~/.composer/auth.json",
    "~/.pub-cache/credentials.json",
    "~/.config/dart/pub-credentials.json",
    "~/.terraformrc",
    # code hosts and their CLIs
    "~/.cache/git/credential",  # git credential-cache's socket: its daemon hands out passwords
    "~/.git-credential-cache",  # the same, where git made it before 2.13
    "~/.config/hub",
    "~/.config/glab-cli",
    "~/.config/github-copilot",
    # containers and clusters
    "~/.config/containers/auth.json",
    "~/.config/helm/registry",
    "~/.config/helm/repositories.yaml",
    "~/.docker/key.pem",
    "~/.docker/contexts/tls",
    "~/.docker/desktop",
    "~/.docker/run",
    "~/.minikube",
    "~/.colima",
    "~/.lima",
    "~/.rd",
    # clouds and hosting platforms
    "~/.config/doctl",
    "~/.config/hcloud",
    "~/.config/linode-cli",
    "~/.oci",
    "~/.s3cfg",
    "~/.boto",
    "~/.config/rclone/rclone.conf",
    "~/.pulumi/credentials.json",
    "~/.config/configstore/firebase-tools.json",
    "~/.local/share/com.vercel.cli/auth.json",
    "~/.config/netlify/config.json",
    "~/.netlify/config.json",
    "~/.fly/config.yml",
    "~/.wrangler/config",
    "~/.config/.wrangler/config",
    "~/.cloudflared",
    "~/.config/ngrok/ngrok.yml",
    "~/.ngrok2/ngrok.yml",
    "~/.config/stripe/config.toml",
    "~/.circleci/cli.yml",
    "~/.sentryclirc",
    # databases and data platforms
    "~/.databrickscfg",
    "~/.dbt/profiles.yml",
    "~/.snowflake",
    "~/.snowsql/config",
    "~/.pg_service.conf",
    "~/.mylogin.cnf",
    # machine learning
    "~/.cache/huggingface/token",
    "~/.cache/huggingface/stored_tokens",
    "~/.huggingface/token",
    "~/.kaggle/kaggle.json",
    "~/.config/kaggle/kaggle.json",
    # keys, password managers, agents' sockets
    "~/.config/sops/age/keys.txt",
    "~/.passage/identities",
    "~/.password-store",
    "~/.local/share/keyrings",
    "~/.config/op",
    "~/.config/1Password",
    "~/.config/Bitwarden",
    "~/.config/Bitwarden CLI",
    "~/.1password",
    "~/.bitwarden-ssh-agent.sock",
    "~/.authinfo",
    "~/.authinfo.gpg",
    "~/.config/httpie/sessions",
    "~/.config/airlock/collector.key",
    "~/.pki/nssdb",
    "~/.tsh",
    "~/.step",
    "~/.mc/config.json",
    "~/.android/adbkey",
    "~/.config/JetBrains",
    "~/.local/share/JetBrains/c.kdbx",
    "~/.config/openstack/clouds.yaml",
    "~/.config/openstack/secure.yaml",
    "~/.msmtprc",
    "~/.config/msmtp",
    "~/.vault_pass.txt",
    "~/.ansible/vault_pass.txt",
    "~/.curlrc",
    "~/.wgetrc",
    # histories (a pasted `export TOKEN=…`, `mysql -p…`)
    "~/.bash_history",
    "~/.zsh_history",
    "~/.histfile",
    "~/.local/share/fish/fish_history",
    "~/.python_history",
    "~/.psql_history",
    "~/.mysql_history",
    "~/.sqlite_history",
    "~/.node_repl_history",
    "~/.irb_history",
    "~/.rediscli_history",
    "~/.local/share/atuin",
    # browsers, mail and chat (cookies, saved passwords, sessions)
    "~/.mozilla",
    "~/snap/firefox",
    "~/.thunderbird",
    "~/.config/google-chrome",
    "~/.config/chromium",
    "~/.config/BraveSoftware",
    "~/.config/microsoft-edge",
    "~/.config/vivaldi",
    "~/.config/opera",
    "~/.config/Slack",
    "~/.config/discord",
    "~/.config/Signal",
    "~/.local/share/TelegramDesktop",
    # editors' stored sign-ins
    "~/.config/Code/User/globalStorage",
    "~/.config/Code - Insiders/User/globalStorage",
    "~/.config/VSCodium/User/globalStorage",
    "~/.config/Cursor/User/globalStorage",
)
"""Credential stores, by where their tools keep them in the home: hidden when there."""

AGENT_CREDENTIALS: tuple[str, ...] = (
    "~/.claude/.credentials.json",
    "~/.claude.json",
    "~/.codex/auth.json",
    "~/.gemini/oauth_creds.json",
    "~/.gemini/google_accounts.json",
)
"""The agents' own sign-ins: hidden in every home but ``HOME`` (the agent inside signs in
with ``HOME``'s, its state there is writable by design; the account's real home, when
``HOME`` is set elsewhere, and ``SUDO_USER``'s hold other sign-ins)."""

STORE_VARIABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("KUBECONFIG", ("",)),
    ("AWS_SHARED_CREDENTIALS_FILE", ("",)),
    ("AWS_CONFIG_FILE", ("",)),
    ("GOOGLE_APPLICATION_CREDENTIALS", ("",)),
    ("CLOUDSDK_CONFIG", ("",)),
    ("AZURE_CONFIG_DIR", ("",)),
    ("NETRC", ("",)),
    ("NPM_CONFIG_USERCONFIG", ("",)),
    ("PGPASSFILE", ("",)),
    ("PGSERVICEFILE", ("",)),
    ("BOTO_CONFIG", ("",)),
    ("RCLONE_CONFIG", ("",)),
    ("TF_CLI_CONFIG_FILE", ("",)),
    ("SOPS_AGE_KEY_FILE", ("",)),
    ("PASSAGE_IDENTITIES_FILE", ("",)),
    ("PASSWORD_STORE_DIR", ("",)),
    ("HF_TOKEN_PATH", ("",)),
    ("KRB5CCNAME", ("",)),
    ("KRB5_CLIENT_KTNAME", ("",)),
    ("KRB5_KTNAME", ("",)),
    ("GNUPGHOME", ("",)),
    ("GH_CONFIG_DIR", ("",)),
    ("DOCKER_CONFIG", ("config.json",)),
    ("DOCKER_CERT_PATH", ("key.pem",)),
    ("CARGO_HOME", ("credentials.toml", "credentials")),
    ("HF_HOME", ("token", "stored_tokens")),
    ("KAGGLE_CONFIG_DIR", ("kaggle.json",)),
    ("PULUMI_HOME", ("credentials.json",)),
    ("GRADLE_USER_HOME", ("gradle.properties",)),
    ("HISTFILE", ("",)),
    ("ANSIBLE_VAULT_PASSWORD_FILE", ("",)),
    ("OS_CLIENT_CONFIG_FILE", ("",)),
)
"""Variables that move a credential store: the file or folder each names (``""``), or what in
the folder it names is one. ``KUBECONFIG`` is a list (``:``-separated); ``KRB5CCNAME`` and the
keytab variables may start with a type (``FILE:``, ``DIR:``). ``XDG_CONFIG_HOME`` and
``XDG_DATA_HOME`` move every store under ``~/.config`` and ``~/.local/share``."""

XDG_FOLDERS: tuple[tuple[str, str], ...] = (
    ("XDG_CONFIG_HOME", ".config/"),
    ("XDG_DATA_HOME", ".local/share/"),
    ("XDG_CACHE_HOME", ".cache/"),
)
"""Variables that move the stores (and :data:`CREDENTIAL_PATHS`) under a home folder."""

LINKS_IN_STORES = 200
"""At most this many entries of each hidden store folder are looked at for links out of it."""

STORE_DEPTH = 6
"""How deep in a hidden store folder links are looked for."""

WHY = "a credential store"


def homes(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """``home``, then the account database's home of the user airlock runs as and of
    ``SUDO_USER``, where they differ (resolved; each once)."""
    import pwd

    found = [home]
    names: list[str | int] = [os.getuid()]
    if environ.get("SUDO_USER"):
        names.append(environ["SUDO_USER"])
    for name in names:
        try:
            entry = pwd.getpwuid(name) if isinstance(name, int) else pwd.getpwnam(name)
        except KeyError:
            continue
        if entry.pw_dir and entry.pw_dir != "/":
            found.append(Path(entry.pw_dir))
    unique: dict[Path, Path] = {}
    for folder in found:
        unique.setdefault(resolve(folder), folder)
    return list(unique.values())


def store_paths(home_folders: Iterable[Path], environ: Mapping[str, str], cwd: Path) -> list[Path]:
    """Every place a credential store may be, for these homes and variables (absolute)."""
    paths: list[Path] = []
    for index, home in enumerate(home_folders):
        paths += [home / text[2:] for text in SECRET_STORES]
        if index:  # the first home's are the sandbox's own rules (paths.home_rules)
            paths += [home / text[2:] for text in (*CREDENTIAL_PATHS, *AGENT_CREDENTIALS)]
    for variable, prefix in XDG_FOLDERS:
        base = environ.get(variable, "")
        if Path(base).is_absolute():
            paths += [
                Path(base) / text[2 + len(prefix) :]
                for text in (*SECRET_STORES, *CREDENTIAL_PATHS)
                if text[2:].startswith(prefix)
            ]
    for variable, inside in STORE_VARIABLES:
        for named in _named_paths(variable, environ.get(variable, "")):
            folder = cwd / named  # a relative path is read from where the command starts
            paths += [folder / part if part else folder for part in inside]
    return paths


def _named_paths(variable: str, value: str) -> list[str]:
    """The paths a variable's value names: a list for ``KUBECONFIG``, a type prefix dropped
    (``FILE:/tmp/krb5cc_1000``); none for a type that names no file (``KEYRING:…``)."""
    if not value:
        return []
    items = value.split(os.pathsep) if variable == "KUBECONFIG" else [value]
    named = []
    for item in items:
        kind, colon, rest = item.partition(":")
        if colon and kind.isalpha() and kind.isupper() and variable.startswith("KRB5"):
            if kind not in ("FILE", "DIR", "WRFILE"):
                continue
            item = rest
        if item:
            named.append(str(Path(item).expanduser()))
    return named


def store_rules(
    home_folders: Iterable[Path],
    environ: Mapping[str, str],
    cwd: Path,
    shown: Iterable[Path] = (),
) -> Iterator[Mount]:
    """Hide each credential store that is there (:func:`store_paths`), and what the links in a
    hidden folder lead to; not those the user's own ``--ro``/``--rw`` name (``shown``)."""
    keep = {resolve(path) for path in shown}
    seen: set[Path] = set()
    folders = list(home_folders)
    hidden_already = [folders[0] / text[2:] for text in CREDENTIAL_PATHS] if folders else []
    for path in [*hidden_already, *store_paths(folders, environ, cwd)]:
        if not os.path.lexists(path):  # most are missing: one look each (start-up time)
            continue
        real = resolve(path)
        if real in seen or real in keep or not os.path.lexists(real):
            continue
        seen.add(real)
        if real == Path(real.anchor):
            continue  # a variable naming "/": nothing would be left to run
        if path not in hidden_already:  # those are paths.home_rules'
            yield hide_credentials(path, WHY)
        if real.is_dir():
            for target in links_out_of(real):
                if target not in seen and target not in keep and target != Path(target.anchor):
                    seen.add(target)
                    yield hide_credentials(target, f"{WHY} (a link in {path} leads there)")


def links_out_of(folder: Path) -> list[Path]:
    """What the symbolic links in ``folder`` (:data:`STORE_DEPTH` deep, the first
    :data:`LINKS_IN_STORES` entries) lead to outside it, resolved; those that exist."""
    targets: list[Path] = []
    pending = [(folder, 0)]
    looked = 0
    while pending and looked < LINKS_IN_STORES:
        current, depth = pending.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            looked += 1
            if looked > LINKS_IN_STORES:
                break
            if entry.is_symlink():
                target = resolve(Path(entry.path))
                if not target.is_relative_to(folder) and target.exists():
                    targets.append(target)
            elif entry.is_dir(follow_symlinks=False) and depth + 1 < STORE_DEPTH:
                pending.append((Path(entry.path), depth + 1))
    return targets


def credential_store_rules(
    home: Path, environ: Mapping[str, str], cwd: Path, shown: Iterable[Path] = ()
) -> list[Mount]:
    """:func:`store_rules` for the caller's homes (:func:`homes`)."""
    return list(store_rules(homes(home, environ), environ, cwd, shown))
