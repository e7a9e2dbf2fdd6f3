"""What the sandbox sees of the file system: the path rules, as data, and the plan they make.

Theory of operation
-------------------
The whole system is mounted read-only, then a private ``/tmp``, ``/var/tmp`` and ``/run`` (no
host socket lives on where code inside can find it), a fresh ``/dev`` and ``/proc``. On top
come the rules, each a :class:`Mount` of one kind on one absolute path:

- ``WRITE``: bound read-write (the workspace, the agent's state, ``--rw``, ``allowWrite``);
- ``READ``: bound read-only (``--ro``, ``denyWrite``, and every path that
  would let code written inside run outside later: :data:`PROTECTED_IN_WORKSPACE`,
  :data:`PROTECTED_IN_CONFIG_DIR` in the agent's config dir and in ``~/.claude``,
  :data:`PROTECTED_IN_HOME`); a protected path that does not exist yet gets an empty
  read-only placeholder, so it cannot be created either, and so does a missing one of
  :data:`CREDENTIAL_PATHS` (``~/.ssh/authorized_keys``, ``~/.aws/config`` made inside would be
  used outside later);
- ``HIDE``: an empty read-only placeholder over it (:data:`CREDENTIAL_PATHS`, ``--hide``,
  ``denyRead``, and every Unix socket the host has bound).

A missing path's placeholder is made only where code inside could create the path (the
nearest rule above it is a ``WRITE``: the home under ``--rw ~``, a workspace that is or holds
the home), so a normal run leaves nothing in the home; those made are removed after the run.

A ``SHOW`` binds back, read-only, what the private ``/tmp`` hides and the sandbox needs (a
home or a Python there); any other rule on its path wins over it. Mounts are applied parent
before child, so the most specific rule wins; on the same path the stricter one (``HIDE``
over ``READ`` over ``WRITE`` over ``SHOW``). Paths are made absolute and symlinks
resolved before planning, so a rule lands on what the path really names. Each folder between
a writable rule and a stricter one under it is bound onto itself, so it cannot be renamed
away to free the protected path's name.
"""

from __future__ import annotations

import enum
import errno
import itertools
import os
import re
import stat
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from airlock.errors import SandboxError
from airlock.sandbox.agent_state import STATE_FILE

PROTECTED_IN_WORKSPACE: tuple[str, ...] = (
    ".git/hooks",
    ".git/config",
    ".git/commondir",
    ".gitmodules",
    ".envrc",
    ".vscode",
    ".idea",
    ".mcp.json",
    ".claude/settings.json",
    ".claude/settings.local.json",
    ".claude/commands",
    ".claude/agents",
    ".claude/hooks",
)
"""Read-only even in the workspace, missing or not: each runs code, or says what runs, outside
later (``.envrc`` when direnv enters the folder; ``.git/commondir`` makes git read the config
and hooks of the folder it names)."""

ZSH_STARTUP_FILES: tuple[str, ...] = (".zshrc", ".zshenv", ".zprofile", ".zlogin", ".zlogout")
"""The files zsh reads at its start and end, in the home or in the folder ``ZDOTDIR`` names
(:func:`zdotdir_rules`)."""

SHELL_STARTUP_FILES: tuple[str, ...] = (
    ".bashrc",
    ".bash_aliases",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    *ZSH_STARTUP_FILES,
)
"""Read-only in the workspace when they are there. A shell reads them from the home only, so a
missing one in a project folder runs nothing; in the home (a workspace that is the home
included) missing ones are covered too (:data:`PROTECTED_IN_HOME`). ``.bash_aliases`` is
sourced by Debian's and Ubuntu's default ``.bashrc``."""

LEFTHOOK_FILES: tuple[str, ...] = (
    *(
        f"{folder}{dot}lefthook{local}.{extension}"
        for folder in ("", ".config/")
        for dot in ("", ".")
        for local in ("", "-local")
        for extension in ("yml", "yaml", "json", "jsonc", "toml")
    ),
    ".lefthook",
    ".lefthook-local",
)
"""Every file lefthook reads its configuration from (and its scripts' folders)."""

HOOK_MANAGER_FILES: tuple[str, ...] = (".pre-commit-config.yaml", *LEFTHOOK_FILES, ".husky")
"""Read-only in the workspace when they are there: what the git hooks of pre-commit, lefthook
and husky run at the user's next ``git commit`` (the hooks installed in ``.git/hooks`` or in
``core.hooksPath`` read them from the work tree). With lefthook in use (one of its files
there), a missing one is covered too: lefthook merges a ``lefthook-local`` file it finds."""

VERSION_FILES: tuple[str, ...] = (
    ".tool-versions",
    ".node-version",
    ".nvmrc",
    ".python-version",
    ".ruby-version",
    ".go-version",
    ".java-version",
    ".bun-version",
    "rust-toolchain",
    "rust-toolchain.toml",
)
"""Files naming a tool's version for a folder, which mise (and asdf, nvm, pyenv, rustup)
read there: a ``path:`` version, or a toolchain ``path``, names the programs that run."""

TOOL_MANAGER_FILES: tuple[str, ...] = (
    "mise.toml",
    ".mise.toml",
    "mise.local.toml",
    ".mise.local.toml",
    "mise/config.toml",
    "mise/config.local.toml",
    ".mise/config.toml",
    ".mise/config.local.toml",
    ".config/mise.toml",
    ".config/mise/config.toml",
    ".config/mise/config.local.toml",
    ".config/mise/conf.d",
    "mise/conf.d",
    ".mise/conf.d",
    ".rtx.toml",
    *VERSION_FILES,
)
"""Read-only in the workspace when they are there: what mise (and asdf, for
``.tool-versions``) reads when the user's shell enters the folder, where mise trusts a
config by its path, not its content: ``[hooks]`` and ``[env] _.source`` run in the user's
shell, and a ``path:`` version puts the folder it names on ``PATH`` (in the version files
of other tools too, which mise reads when asked to); rustup's toolchain file,
whose ``path`` names the ``cargo`` and ``rustc`` that any Rust command there (an editor's
included) runs."""

PROTECTED_GLOBS_IN_WORKSPACE: tuple[str, ...] = (
    ".claude/settings*.json",
    "mise.*.toml",
    ".mise.*.toml",
    ".config/mise/config.*.toml",
    "mise/config.*.toml",
    ".mise/config.*.toml",
)
"""Existing files matching these are read-only too (``settings.backup.json`` and friends;
mise's files for one ``MISE_ENV``)."""

PROTECTED_IN_CONFIG_DIR: tuple[str, ...] = (
    "settings.json",
    "settings.local.json",
    "commands",
    "agents",
    "plugins",
    "skills",
    "hooks",
    "local",
    "CLAUDE.md",
    "rules",
    "output-styles",
    ".config.json",
    "chrome",
)
"""Read-only, missing or not, in the agent's config dir (``$CLAUDE_CONFIG_DIR``, else
``~/.claude``) and in ``~/.claude`` when the config dir is elsewhere (unset the variable and
the agent reads it again), writable otherwise: settings (hooks, the status line, helpers),
commands, agents, plugins (hooks, MCP servers), skills and the hook scripts settings name
(``hooks/``, by convention) all say what runs outside later; ``local/`` holds the agent
itself when installed there (``claude migrate-installer``: the user's ``claude`` runs it);
the user's memory (``CLAUDE.md``, ``rules/``) and output styles are instructions every later
session outside follows, as commands and skills are; ``.config.json`` is the agent's state
file of earlier versions, which it still reads instead of ``~/.claude.json`` when it is there
(with MCP servers it starts: a folder stands at a missing one, which it passes over);
``chrome/`` holds ``chrome-native-host``, which the browser's native messaging manifest names
and the browser starts for Claude in Chrome."""

FILES_IN_CONFIG_DIR = frozenset({"settings.json", "settings.local.json", "CLAUDE.md"})
"""The files among :data:`PROTECTED_IN_CONFIG_DIR`: a missing one's placeholder is an empty
file, which the agent reads as no settings (a folder there made it warn at every start that
its settings did not load). In the workspace a missing protected file's placeholder stays a
folder: git does not list an empty folder, where an empty file would show as a new file the
command could commit."""

PRIVATE_IN_CONFIG_DIR: tuple[str, ...] = ("shell-snapshots", "session-env")
"""Folders of the agent's config dir that hold what its running sessions source before each
command they run (a session's shell snapshot, its environment): inside, an empty folder of
the sandbox's own stands there when they exist, so the agent inside keeps its own, and code
inside cannot add a line to a file a session running outside at the same time sources."""

PROTECTED_GLOBS_IN_CONFIG_DIR: tuple[str, ...] = ("settings*.json",)
"""Existing files matching these are read-only there too (``settings.backup.json`` and
friends)."""

PROTECTED_IN_HOME: tuple[str, ...] = (
    *SHELL_STARTUP_FILES,
    ".gitconfig",
    ".config/git",
    ".hgrc",
    ".config/hg",
    ".config/mise",
    ".tool-versions",
    ".cargo/env",
    ".cargo/env.fish",
    ".nvm/nvm.sh",
    ".nvm/bash_completion",
    ".sdkman/bin/sdkman-init.sh",
    ".ghcup/env",
    ".rye/env",
    ".deno/env",
    ".asdf/asdf.sh",
    ".fzf.bash",
    ".fzf.zsh",
    ".oh-my-zsh",
    ".p10k.zsh",
    ".bashrc.d",
    ".config/zsh",
    ".config/fish",
    ".config/autostart",
    ".config/systemd",
    ".local/share/systemd",
    ".local/share/dbus-1",
    ".local/share/applications",
    ".config/environment.d",
    ".pam_environment",
    ".xsession",
    ".xsessionrc",
    ".xprofile",
    "bin",
    ".local/bin",
    ".local/lib",
    ".mcp.json",
    ".gemini/extensions",
    ".gemini/policies",
    ".gemini/commands",
    ".gemini/skills",
    ".gemini/agents",
    ".gemini/trustedFolders.json",
    ".gemini/tmp/bin",
    ".codex/rules",
    ".codex/hooks",
    ".agents/skills",
    ".config/direnv",
    ".direnvrc",
    ".vimrc",
    ".exrc",
    ".vim",
    ".config/nvim",
    ".local/share/nvim",
    ".emacs",
    ".emacs.d",
    ".config/emacs",
    ".tmux.conf",
    ".config/tmux",
    ".yarnrc",
    ".yarnrc.yml",
    ".bunfig.toml",
    ".bazelrc",
    ".config/pip/pip.conf",
    ".pip/pip.conf",
    ".inputrc",
    ".lessfilter",
    ".gdbinit",
    ".config/gdb",
    ".psqlrc",
    ".Rprofile",
    ".ghci",
    ".irbrc",
    ".pryrc",
    ".screenrc",
    ".xinitrc",
    ".pythonrc.py",
    ".config/kitty",
    ".config/wezterm",
    ".wezterm.lua",
    ".config/alacritty",
    ".config/alacritty.toml",
    ".alacritty.toml",
    ".config/ghostty",
    ".config/starship.toml",
)
"""Read-only in the home, missing or not, even when a rule makes the home writable (``--rw ~``,
``allowWrite``, a workspace that is or holds the home): shell start-up files and the
scripts installers have them source (cargo's ``env``, nvm's, SDKMAN's, ghcup's, asdf's,
fzf's, Oh My Zsh), zsh's usual ``ZDOTDIR`` (``~/.config/zsh``; the one the environment names
is :func:`zdotdir_rules`'), fish's (``config.fish``, ``conf.d``, functions), git's, Mercurial's and
mise's configuration (hooks, aliases, extensions; the folders git's own config names for
every repository, its ``core.hooksPath`` and ``init.templateDir``, are
:func:`airlock.sandbox.repositories.user_git_rules`'), Gemini's and Codex's (extensions,
policies, commands, skills, subagents, rules, hooks' scripts; the skills both read from
``~/.agents/skills``; the ``rg`` Gemini CLI runs from ``~/.gemini/tmp/bin``), programs
and variables set at log-in (``environment.d``, ``.pam_environment``, an X session's files),
what the user's service managers start (systemd's user units, in ``~/.config/systemd`` and
``~/.local/share/systemd``, D-Bus's session services, the desktop's autostart entries and
its ``.desktop`` launchers),
``~/bin`` and ``~/.local/bin`` (Debian's ``.profile`` puts them on ``PATH``: a ``git`` written
there would run in the place of the real one; the other folders of ``PATH`` under the home
are :func:`path_rules`'), Python's user site (``~/.local/lib``: a ``.pth`` file there runs at
every start of Python), direnv's own library (run at every folder it enters), the editors'
start-up files (Vim's, Neovim's with its data folder of plugins, Emacs's), tmux's, and what the build tools run at every build (Yarn's
``yarnPath``, Bun's preloads, Bazel's ``.bazelrc``; pip's config, whose index names the
packages installed, and what their set-up runs; cargo's and Gradle's are
:data:`PROTECTED_IN_TOOL_FOLDERS`), and what interactive tools read at their start
(readline's ``.inputrc``, whose macros type commands; ``less``'s ``.lessfilter``, run on
every file it shows; gdb's, psql's, R's, GHCi's, irb's and pry's, screen's, an X session's,
the terminals' (kitty's, WezTerm's, Alacritty's, Ghostty's: they start programs), Starship's
prompt (its custom modules run a command at every prompt), a Python start-up file)."""

TOOL_FOLDERS: tuple[str, ...] = (
    ".gradle/init.d",
    ".vscode/extensions",
    ".vscode-server/extensions",
    ".ipython/profile_default/startup",
    ".sbt/1.0/plugins",
    ".julia/config",
    ".pyenv/versions",
    ".rustup/toolchains",
    ".nvm/versions",
)
"""The folders among :data:`PROTECTED_IN_TOOL_FOLDERS`."""

PROTECTED_IN_TOOL_FOLDERS: tuple[str, ...] = (
    ".cargo/config",
    ".cargo/config.toml",
    ".gradle/init.gradle",
    ".gradle/init.gradle.kts",
    ".gradle/gradle.properties",
    ".ghc/ghci.conf",
    ".config/Code/User/settings.json",
    ".config/Code/User/tasks.json",
    *TOOL_FOLDERS,
)
"""Read-only in the home like :data:`PROTECTED_IN_HOME`, when the tool's folder that holds one
is there (``~/.cargo``, ``~/.gradle``, ``~/.config/Code``, …): cargo's ``config`` (its runners
and wrappers), Gradle's init scripts and JVM options, VS Code's user settings and tasks (a
task can run when a folder opens) and its extensions (run when it starts), IPython's start-up
scripts, sbt's global plugins, Julia's ``config/startup.jl``, GHCi's ``ghci.conf``, and the
interpreters and tools the version managers' shims run
(pyenv's, rustup's and nvm's installed versions). Where the tool's folder is missing, the tool is not
installed, and a placeholder there would keep the tool from making its folder at all (cargo's
registry, Gradle's caches) in a run with a writable home."""

FOLDERS_IN_HOME = frozenset(
    {
        ".config/git",
        ".config/hg",
        ".config/mise",
        ".oh-my-zsh",
        ".bashrc.d",
        ".config/zsh",
        ".config/fish",
        ".config/autostart",
        ".config/systemd",
        ".local/share/systemd",
        ".local/share/dbus-1",
        ".local/share/applications",
        ".config/environment.d",
        "bin",
        ".local/bin",
        ".local/lib",
        ".gemini/extensions",
        ".gemini/policies",
        ".gemini/commands",
        ".gemini/skills",
        ".gemini/agents",
        ".codex/rules",
        ".codex/hooks",
        ".agents/skills",
        ".config/direnv",
        ".vim",
        ".config/nvim",
        ".emacs.d",
        ".config/emacs",
        ".config/tmux",
        ".config/gdb",
        ".config/kitty",
        *TOOL_FOLDERS,
    }
)
"""The folders among :data:`PROTECTED_IN_HOME` and :data:`PROTECTED_IN_TOOL_FOLDERS`: a
missing one's placeholder is an empty folder; every other's is an empty file, as its program
reads it (git reads an empty ``.gitconfig``, cargo an empty ``.cargo/config``; they fail on a
folder there)."""

CREDENTIAL_FOLDERS = frozenset(
    {"~/.ssh", "~/.aws", "~/.config/gcloud", "~/.azure", "~/.kube", "~/.config/gh", "~/.gnupg"}
)
"""The folders among :data:`CREDENTIAL_PATHS` (the others are files: a missing one's
placeholder is an empty file)."""

AGENT_STATE: tuple[str, ...] = ("~/.claude", "~/.codex", "~/.gemini")
"""The agents' own state: writable, so an agent works as usual (the reference agent's state
file, ``~/.claude.json``, is read-only: it keeps it in its config dir for the run,
:func:`airlock.sandbox.agent_state.staging`)."""

CODEX = ".codex"
"""Codex's folder in the home, unless ``CODEX_HOME`` names another (:func:`codex_folder`)."""


def codex_folder(
    home: Path, environ: Mapping[str, str], cwd: Path, workspace: Path
) -> tuple[Path | None, str]:
    """The folder ``CODEX_HOME`` names for Codex's state and configuration, when it is not
    ``~/.codex``, and why a ``CODEX_HOME`` given is not taken (else ``""``).

    Read as Codex reads it: a relative path from the folder the command starts in (``cwd``),
    no ``~``. Taken only when it is a folder that is there (Codex wants one) and neither the
    system's root nor a folder holding the home or the workspace. What airlock does for
    ``~/.codex`` (its ``rules`` and ``hooks`` read-only, its configuration put back after the
    run, its skills and prompts looked at) it does there; it is writable inside when it is in
    the home (:func:`codex_writable`), as ``~/.codex`` is."""
    text = environ.get("CODEX_HOME", "")
    if not text:
        return None, ""
    folder = cwd / text
    real = resolve(folder)
    if real == resolve(home / CODEX):
        return None, ""
    try:
        folder_there = real.is_dir()
    except OSError as error:  # behind a folder airlock may not enter
        return None, f"CODEX_HOME {text}: cannot be looked at ({error.strerror})"
    if not folder_there:
        return None, f"CODEX_HOME {text}: not a folder that is there"
    if real == Path("/") or resolve(home).is_relative_to(real):
        return None, f"CODEX_HOME {text}: holds the home"
    if resolve(workspace).is_relative_to(real) and real != resolve(workspace):
        return None, f"CODEX_HOME {text}: holds the workspace"
    return folder, ""


def codex_writable(codex: Path, home: Path) -> bool:
    """Whether Codex's folder is writable inside with its state: when it is in the home (the
    rest of the system stays read-only unless ``--rw`` opens it) and holds none of the home's
    protected paths (``CODEX_HOME=~/.local`` would open the other folders of ``PATH`` there,
    as the agents' state is)."""
    real = resolve(codex)
    return real.is_relative_to(resolve(home)) and not any(
        resolve(home / name).is_relative_to(real) for name in PROTECTED_IN_HOME
    )


def codex_names(names: Iterable[str]) -> list[str]:
    """Those of ``names`` (paths in the home) that are in Codex's folder, relative to it."""
    return [name[len(CODEX) + 1 :] for name in names if name.startswith(CODEX + "/")]


def home_paths(names: Iterable[str], home: Path, codex: Path | None) -> list[Path]:
    """``names`` (paths in the home) in the home, and those in Codex's folder in the folder
    ``CODEX_HOME`` names too, when it names one (:func:`codex_folder`)."""
    names = list(names)
    found = [home / name for name in names]
    if codex is not None:
        found += [codex / name for name in codex_names(names)]
    return found


CREDENTIAL_PATHS: tuple[str, ...] = (
    "~/.ssh",
    "~/.aws",
    "~/.config/gcloud",
    "~/.azure",
    "~/.kube",
    "~/.docker/config.json",
    "~/.netrc",
    "~/.git-credentials",
    "~/.config/gh",
    "~/.gnupg",
    "~/.npmrc",
    "~/.pypirc",
    "~/.config/git/credentials",
    "~/.cargo/credentials.toml",
    "~/.cargo/credentials",
    "~/.terraform.d/credentials.tfrc.json",
    "~/.vault-token",
    "~/.pgpass",
    "~/.my.cnf",
)
"""Hidden: an empty placeholder stands where each is. A missing one gets an empty read-only
placeholder where code inside could create it (the home writable): ``~/.ssh/authorized_keys``
lets anyone in, ``~/.ssh/config`` (``ProxyCommand``) and ``~/.aws/config``
(``credential_process``) run commands outside later."""

SELF_COMMONDIR = Path(__file__).with_name("git-commondir")
"""A file holding ``.``: bound read-only at a repository's missing ``commondir``. Git reads a
``commondir`` when there is one, and fails on an empty one or a folder; ``.`` names the git
folder itself, as no ``commondir`` does, and code inside cannot write another."""

PRIVATE_TMPFS: tuple[str, ...] = ("/tmp", "/var/tmp", "/run")  # noqa: S108 - mounted over, not used
"""Fresh and empty inside (``/var/run`` is a link to ``/run`` on every current distribution)."""

SANDBOX_OWN: tuple[str, ...] = ("/dev", "/proc", *PRIVATE_TMPFS)
"""The sandbox's own folders. A bind of one of them, or of a folder holding one (``/``,
``/var``), would put the host's in its place, with everything under it (bubblewrap binds
recursively): the host's processes in ``/proc``, its sockets in ``/run`` and ``/tmp``."""


class Kind(enum.IntEnum):
    """What a mount does; on one path, the higher value wins."""

    SHOW = 0
    """Read-only, only to bring back what a private ``/tmp`` hides (a home, a Python under
    ``/tmp``): any other rule on the same path wins."""
    WRITE = 1
    READ = 2
    HIDE = 3


@dataclass(frozen=True, slots=True)
class Mount:
    """One rule on one absolute path: what it does and why (shown by ``--explain`` and tests)."""

    kind: Kind
    path: Path
    why: str
    exists: bool
    is_dir: bool
    """Whether it is a folder: a missing path's placeholder always is (git ignores an empty
    folder, where an empty file would be added to the next commit)."""
    source: Path | None = None
    """A ``WRITE`` bound from this folder instead of the path itself (a new repository's
    holding folder, :func:`airlock.sandbox.repositories.hold`)."""
    named: Path | None = field(default=None, compare=False)
    """The path as the rule was given, when symbolic links on the way made :attr:`path` differ
    (``~/.bashrc -> dotfiles/bashrc``): the rule stands on what the links name, and a link in
    a writable folder could be replaced from inside, so the run puts them back after
    (:func:`links_on_the_way`)."""
    private: bool = False
    """A ``WRITE`` on an empty folder of the sandbox's own (a file system in memory) instead
    of the path: the command writes there as usual, and what is there stays out of its
    reach (:data:`PRIVATE_IN_CONFIG_DIR`)."""
    credentials: bool = field(default=False, compare=False)
    """A ``HIDE`` of a credential store (:func:`hide_credentials`): the user's own ``--ro``
    or ``--rw`` on it, or on a path in it, opens it as asked, and the run says so."""
    asked: bool = field(default=False, compare=False)
    """The user's own ``--ro`` or ``--rw`` (or ``allowWrite`` of their own settings) on a
    credential store airlock hides, or on a path in one (``--ro ~/.ssh/known_hosts``): it
    stands under the hidden folder, read-only too, where another read-only rule under a hidden
    folder is dropped (:func:`plan`); a project's settings never make one."""
    shown: bool = field(default=False, compare=False)
    """A ``READ`` that shows the host's path where the sandbox's private ``/tmp``, ``/var/tmp``
    or ``/run`` (:data:`PRIVATE_TMPFS`) would hide it: the user's own ``--ro`` (a folder they
    want in sight), or one on the path of a rule that binds it in anyway (a ``WRITE``, a
    ``SHOW``). Any other ``READ`` there binds nothing (:func:`plan`): it keeps the command
    from writing the host's path, which the private folder does already, and must not show
    what that folder hides (an ``.envrc`` or a settings file's ``denyWrite``, which come with
    a project, naming ``/tmp/krb5cc_1000``, a Kerberos ticket, or ``/run/user/1000``)."""


def resolve(path: Path) -> Path:
    """``path`` made absolute with every symlink resolved, as far as it exists."""
    return Path(os.path.realpath(path))


def expand(text: str, home: Path, cwd: Path) -> Path:
    """A path given on the command line: ``~/`` is the home, a relative path is under ``cwd``."""
    if text == "~" or text.startswith("~/"):
        return home / text[2:]
    return cwd / text


def sandbox_own_in(folder: Path) -> list[str]:
    """The folders of :data:`SANDBOX_OWN` that ``folder`` (absolute, resolved) is or holds
    (``/`` and ``/var`` hold some); compared as text, with no path built."""
    text = str(folder)
    holder = text.rstrip("/") + "/"  # "/" for the root folder
    return [own for own in SANDBOX_OWN if own == text or own.startswith(holder)]


def mount(kind: Kind, path: Path, why: str, folder: bool = True, shown: bool = False) -> Mount:
    """A :class:`Mount` on what ``path`` names, symlinks resolved.

    A missing path is covered where it would be created: at its first missing ancestor (an
    empty folder stands there; an empty file when that is the path itself and ``folder`` is
    false: a file its program reads), or on an ancestor that exists but is not a folder (a
    worktree's ``.git`` file). ``shown``: :attr:`Mount.shown` (a ``READ`` of the user's own).

    A run makes about 150 of these before bubblewrap can start: the path is worked on as text
    (what it names looked at once, with :func:`_mode`), and made a ``Path`` once.

    Raises:
        SandboxError: a ``HIDE`` of the root folder (nothing would be left to run); any other
            rule on one of :data:`SANDBOX_OWN` or a folder holding one (``/``, ``/var``).
    """
    text = os.path.realpath(path)
    real = Path(text)
    if kind is Kind.HIDE and _parent(text) == text:
        raise SandboxError(
            f"{why}: hides the whole system ({path}), so nothing could run; hide the folders "
            "that hold what must not be seen"
        )
    covered = sandbox_own_in(real) if kind is not Kind.HIDE else []
    if covered:  # a link in a clone (.vscode -> ../../..) is named: the user removes it
        through = f", which {path} names through a link," if path.absolute() != real else ""
        raise SandboxError(
            f"{why}: binding {real}{through} would put the host's {', '.join(covered)} in place "
            "of the sandbox's own (the host's processes, sockets and temporary files); name "
            "the folders you need inside it (the rest of the system is read-only inside already)"
        )
    named = path if path.absolute() != real else None
    mode = _mode(text)
    if mode is not None:
        return Mount(kind, real, why, True, stat.S_ISDIR(mode), named=named, shown=shown)
    existing = _parent(text)
    while (mode := _mode(existing)) is None:
        existing = _parent(existing)
    if not stat.S_ISDIR(mode):
        return Mount(kind, Path(existing), why, True, False, named=named, shown=shown)
    name = text[len(existing) :].lstrip("/").split("/", 1)[0]
    first_missing = f"{existing.rstrip('/')}/{name}"
    if _looped(first_missing):  # nothing can stand there, and nothing it names can be bound
        raise SandboxError(
            f"{why}: {first_missing} is a symbolic link that leads back to itself (a loop of "
            f"links{f', on the way to {path}' if first_missing != str(path) else ''}), so "
            "nothing can be bound there; remove the link, or make it name what it stands for"
        )
    is_dir = folder or first_missing != text
    return Mount(kind, Path(first_missing), why, False, is_dir, named=named, shown=shown)


def _looped(text: str) -> bool:
    """Whether ``text`` is a symbolic link in a loop (``.vscode -> .vscode``): ``realpath``
    stops at such a link and leaves it in the path, where a missing path would end in what a
    link names."""
    try:
        os.stat(text)  # noqa: PTH116 - text: no Path made for a path that is not there
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _parent(text: str) -> str:
    """The folder holding the absolute path ``text`` (``/`` for ``/`` itself)."""
    return os.path.dirname(text)  # noqa: PTH120 - text: no Path made for each step up


_NOTHING_THERE = frozenset({errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP})
"""What ``stat`` says when nothing is there to bind, as ``Path.exists`` reads it."""


def _mode(text: str) -> int | None:
    """The mode of what ``text`` names (links followed), or ``None`` when nothing is there.

    Raises:
        OSError: any other failure (a folder on the way that cannot be searched), as
            ``Path.exists`` raises it.
    """
    try:
        return os.stat(text).st_mode  # noqa: PTH116 - text: no Path made for each look
    except OSError as error:
        if error.errno in _NOTHING_THERE:
            return None
        raise


def read_only_map(rules: Iterable[Mount]) -> dict[Path, bool]:
    """Each rule's path, and whether code inside cannot write there (for :func:`read_only_at`)."""
    return {rule.path: rule.kind is not Kind.WRITE for rule in rules}


def read_only_at(path: Path, rules: Mapping[Path, bool]) -> bool:
    """Whether the nearest rule at or above ``path`` (of :func:`read_only_map`) makes it
    read-only inside; with none, it is (the rest of the system is read-only)."""
    for folder in (path, *path.parents):
        if folder in rules:
            return rules[folder]
    return True


def links_on_the_way(rules: Iterable[Mount]) -> dict[Path, str]:
    """Every symbolic link on the way to what a read-only or hidden rule was given as
    (:attr:`Mount.named`), with what it points at, the links on the way to what those point at
    included (``.git/hooks/pre-commit -> ../../scripts/pre-commit``, then ``scripts ->
    tools``): the rule stands on the last target, so code inside could replace a link that is
    in a writable folder (``--rw ~`` and a ``~/.ssh -> dotfiles/ssh``) by a folder of its own,
    unprotected. At most :data:`LINKS_FOLLOWED` links are followed from each rule."""
    links: dict[Path, str] = {}
    for rule in rules:  # a private folder too: swapped, the outside one is the command's
        if rule.named is not None and (rule.kind > Kind.WRITE or rule.private):
            _note_links(rule.named.absolute(), links)
    return links


def links_to(path: Path) -> list[Path]:
    """Each symbolic link met on the way to ``path`` (absolute), in the order the kernel meets
    them (:func:`_note_links`), each at its folder's real path."""
    links: dict[Path, str] = {}
    _note_links(path, links)
    return list(links)


LINKS_FOLLOWED = 40
"""As many as the kernel follows in one path (``SYMLOOP_MAX``)."""


def _note_links(path: Path, links: dict[Path, str]) -> None:
    """Note in ``links`` each link met on the way to ``path``, the kernel's way: component by
    component, each link's target followed from the folder that holds it."""
    pending: list[Path] = [path]
    followed = 0
    while pending and followed < LINKS_FOLLOWED:
        parts = pending.pop().parts
        folder = Path(parts[0])
        for index, name in enumerate(parts[1:], start=1):
            step = resolve(folder) / name  # the folder has no link left: this may be one
            if not step.is_symlink():
                folder = step
                continue
            followed += 1
            try:
                target = links.setdefault(step, str(step.readlink()))
            except OSError:
                return
            pending.append(step.parent.joinpath(target, *parts[index + 1 :]))
            break


SETTINGS_IN_WORKSPACE = (".claude/settings.json", ".claude/settings.local.json")
"""The agent's project settings among :data:`PROTECTED_IN_WORKSPACE`: in a ``.claude`` folder
that is there, the agent reads a folder at a missing one as settings that did not load, and
warns at every start; an empty file there it reads as none."""


def workspace_rules(
    workspace: Path, git_held: bool = False, files: frozenset[str] = frozenset()
) -> Iterator[Mount]:
    """The workspace, writable, less the paths that would run code outside later.

    ``git_held``: the workspace's missing ``.git`` is bound to a holding folder outside it
    (:func:`airlock.sandbox.repositories.hold`), made safe after the run: no rule under it.
    ``files``: the missing ones whose placeholder is an empty file rather than a folder
    (:data:`SETTINGS_IN_WORKSPACE` that git would not list as new files: an empty folder is
    never listed, an empty file would be, and could be committed).
    """
    yield mount(Kind.WRITE, workspace, "the workspace")
    why = "runs code outside later (in the workspace)"
    for name in PROTECTED_IN_WORKSPACE:
        if name == ".git/commondir" and not git_held:
            yield commondir_rule(workspace / ".git", why)
        elif not (git_held and name.startswith(".git/")):
            yield mount(Kind.READ, workspace / name, why, folder=name not in files)
    lefthook = any(os.path.lexists(workspace / name) for name in LEFTHOOK_FILES)
    for name in (*SHELL_STARTUP_FILES, *HOOK_MANAGER_FILES, *TOOL_MANAGER_FILES):
        if (workspace / name).exists() or (lefthook and name in LEFTHOOK_FILES):
            yield mount(Kind.READ, workspace / name, why)
    for pattern in PROTECTED_GLOBS_IN_WORKSPACE:
        for found in sorted(workspace.glob(pattern)):
            yield mount(Kind.READ, found, why)


def commondir_rule(git_folder: Path, why: str) -> Mount:
    """Read-only ``commondir`` of ``git_folder``: bound to itself when there is one, to
    :data:`SELF_COMMONDIR` when the folder has none (git keeps working inside), a placeholder
    where the folder is missing."""
    path = git_folder / "commondir"
    if os.path.lexists(path) or not git_folder.is_dir() or git_folder.is_symlink():
        return mount(Kind.READ, path, why)
    return Mount(Kind.READ, resolve(git_folder) / "commondir", why, False, False, SELF_COMMONDIR)


SYSTEM_SECRETS: tuple[str, ...] = (
    "/etc/shadow",
    "/etc/shadow-",
    "/etc/gshadow",
    "/etc/gshadow-",
    "/etc/ssh/ssh_host_*_key",
    "/etc/security/opasswd",
    "/etc/ssl/private",
    "/etc/pki/tls/private",
    "/etc/letsencrypt",
    "/etc/krb5.keytab",
    "/etc/ipsec.secrets",
    "/etc/swanctl/private",
    "/etc/wireguard",
    "/etc/openvpn",
    "/etc/ppp/chap-secrets",
    "/etc/ppp/pap-secrets",
    "/etc/NetworkManager/system-connections",
    "/etc/wpa_supplicant",
    "/etc/kubernetes/*.conf",
    "/etc/kubernetes/pki",
    "/etc/rancher/k3s/k3s.yaml",
    "/var/lib/rancher/k3s/server/token",
    "/var/lib/rancher/k3s/server/tls",
    "/etc/docker/certs.d",
    "/var/lib/docker",
    "/var/lib/tailscale",
    "/etc/mysql/debian.cnf",
    "/etc/postfix/sasl_passwd",
    "/etc/postfix/sasl_passwd.db",
    "/var/lib/samba/private",
)
"""Hidden when there: what only root can read on the host (password hashes, old ones too, the
host's SSH keys, its TLS keys and certificate accounts, its Kerberos keytab, VPN and Wi-Fi
secrets, a cluster's admin configs and keys, containers' files, a database's maintenance
password, a mail relay's), which a run as root could otherwise read inside: the command
stays uid 0, the owner of every such file."""


def system_rules() -> Iterator[Mount]:
    """Hide each of :data:`SYSTEM_SECRETS` that exists (a file, or a folder whole)."""
    for pattern in SYSTEM_SECRETS:
        folder, _, name = pattern.rpartition("/")
        for path in sorted(Path(folder).glob(name)):
            if path.is_file() or path.is_dir():
                yield mount(Kind.HIDE, path, "the host's own secrets")


def home_rules(
    home: Path,
    config_dir: Path,
    airlock_state: Iterable[Path],
    codex: Path | None = None,
) -> Iterator[Mount]:
    """The agents' state writable, credentials hidden, airlock's own state hidden (its audit
    log and the final hashes must not be rewritten from inside, nor locked, nor read). The home is read-only with
    the rest of the system, and bound read-only again when it is under a private folder.
    The home's own files are the user's: one that links out of the home into the private
    ``/tmp`` (a dotfiles checkout there) is bound in as the home is (:attr:`Mount.shown`).
    ``~/.claude.json`` is read-only, missing or not, in a writable home too: the agent saves
    it by a new file renamed over it, which the home never allows inside, so for the run it
    keeps it in its config dir (:func:`airlock.sandbox.agent_state.staging`); written inside,
    it would be taken after the run for the agent outside's.

    Missing protected and credential paths get a rule too: :func:`plan` keeps its placeholder
    only where code inside could create the path (the home, or the folder that would hold
    it, writable)."""
    yield from visible([home], "the home folder")
    for name in PROTECTED_IN_HOME:  # the user's own: in sight where a link leads to /tmp
        why = "runs code outside later (in the home)"
        yield mount(Kind.READ, home / name, why, name in FOLDERS_IN_HOME, shown=True)
    for name in PROTECTED_IN_TOOL_FOLDERS:
        if resolve(home / name).parent.exists():
            why = "runs code outside later (in the home)"
            yield mount(Kind.READ, home / name, why, name in FOLDERS_IN_HOME, shown=True)
    for text in AGENT_STATE:
        if resolve(home / text[2:]).exists():
            yield mount(Kind.WRITE, home / text[2:], "the agent's own state")
    why = "the agent's state file: kept in its config dir inside, carried back after"
    yield mount(Kind.READ, home / STATE_FILE, why, folder=False)
    if codex is not None:  # CODEX_HOME: as ~/.codex
        if codex_writable(codex, home):
            yield mount(Kind.WRITE, codex, "Codex's own state (CODEX_HOME)")
        for name in codex_names(PROTECTED_IN_HOME):
            why = "runs code outside later (in CODEX_HOME)"
            yield mount(Kind.READ, codex / name, why, folder=f"{CODEX}/{name}" in FOLDERS_IN_HOME)
    if resolve(config_dir).exists():
        yield mount(Kind.WRITE, config_dir, "the agent's config dir")
    yield from config_dir_rules(config_dir, "runs code outside later (in the agent's config dir)")
    default = home / ".claude"
    if resolve(default) != resolve(config_dir):
        yield from config_dir_rules(default, "runs code outside later (in ~/.claude)")
    for text in CREDENTIAL_PATHS:
        path = home / text[2:]
        if resolve(path).exists():
            yield hide_credentials(path, "credentials")
        else:
            why = "credentials (missing: must not be made inside)"
            yield mount(Kind.READ, path, why, folder=text in CREDENTIAL_FOLDERS)
    for path in airlock_state:  # not even read: a lock taken on the log would hold its writes
        yield mount(Kind.HIDE, path, "airlock's own state (audit log, final hashes)")
    default = default_state(home)
    if default.is_dir() and all(default != resolve(path) for path in airlock_state):
        yield mount(Kind.HIDE, default, "airlock's own state (the default config dir's)")


def hide_credentials(path: Path, why: str) -> Mount:
    """The ``HIDE`` of a credential store at ``path`` (:attr:`Mount.credentials`)."""
    return replace(mount(Kind.HIDE, path, why), credentials=True)


def zdotdir_rules(home: Path, environ: Mapping[str, str]) -> Iterator[Mount]:
    """Read-only, missing or not, as :data:`PROTECTED_IN_HOME` in the home: zsh's start-up
    files (:data:`ZSH_STARTUP_FILES`) in the folder ``ZDOTDIR`` names, where zsh reads them
    instead of the home's, when it is a folder of the home (``~/.config/zsh``, the usual
    one, is protected whole by the list). Elsewhere they are read-only with the rest of the
    system, unless a ``--rw`` opens their folder; a relative ``ZDOTDIR`` names no fixed folder.
    """
    text = environ.get("ZDOTDIR", "")
    if not text.startswith("/"):
        return
    folder, home_real = resolve(Path(text)), resolve(home)
    if folder == home_real or not folder.is_relative_to(home_real):
        return  # the home's own are in the list
    why = "runs code outside later (zsh's start-up files, in ZDOTDIR)"
    for name in ZSH_STARTUP_FILES:  # as named: a link on the way is put back after the run
        yield mount(Kind.READ, Path(text) / name, why, folder=False)


def default_state(home: Path) -> Path:
    """The real path of airlock's own state for the runs that use the default config dir
    (``~/.claude/airlock``): hidden inside, and never opened for writing, whatever config dir
    a run uses."""
    return resolve(home / ".claude" / "airlock")


def in_own_state(path: Path, state: Path, home: Path) -> bool:
    """Whether ``path`` is in airlock's own state: the run's (``state``) or the default config
    dir's (:func:`default_state`)."""
    real = resolve(path)
    return any(real.is_relative_to(folder) for folder in (resolve(state), default_state(home)))


def agent_state_paths(home: Path, config_dir: Path, codex: Path | None = None) -> list[Path]:
    """The agents' own state that is there (:data:`AGENT_STATE`, the agent's config dir, the
    folder ``CODEX_HOME`` names when in the home), symbolic links resolved: writable inside
    (:func:`home_rules`), by design."""
    found = [resolve(home / text[2:]) for text in AGENT_STATE] + [resolve(config_dir)]
    if codex is not None and codex_writable(codex, home):
        found.append(resolve(codex))
    return [path for path in found if path.exists()]


PATH_FOLDERS = 64
"""At most this many folders of ``PATH`` are looked at by :func:`path_rules`."""


def path_rules(
    search_path: str,
    home: Path,
    workspace: Path,
    opened: Iterable[Path] = (),
    agent_state: Iterable[Path] = (),
) -> Iterator[Mount]:
    """Read-only: each folder of ``search_path`` (the ``PATH`` variable) under the home. A
    program written there (``~/.cargo/bin/git``, ``~/.npm-global/bin/ls``) would run in the
    place of the real one outside later. One that holds the workspace is read-only around it
    (the workspace's own rule, nearer, keeps it writable); a missing one gets a placeholder
    only where its folder is there (``~/go/bin`` with no ``~/go``: ``go`` may still make
    ``~/go`` for its modules).

    Left as they are: relative entries (no fixed folder); the home itself; those in the
    workspace when it is a folder of the home (a project's own ``.venv/bin`` is its work; a
    workspace that is or holds the home does not exempt them); those in ``agent_state``
    (writable by design); those under a folder that one of ``opened`` (the user's own
    ``--rw`` paths) names or holds, when that is a folder under the home (``--rw ~/.cargo``
    lets ``cargo install`` write ``~/.cargo/bin``; ``--rw ~`` opens none of them); every one
    when the home holds the sandbox's own folders (``HOME=/``). At most
    :data:`PATH_FOLDERS` distinct folders are looked at."""
    home_real, inside = resolve(home), resolve(workspace)
    if sandbox_own_in(home_real):
        return
    exempt = list(agent_state)
    exempt += [real for real in map(resolve, opened) if real.is_relative_to(home_real)]
    exempt = [folder for folder in exempt if folder != home_real]
    if inside != home_real and inside.is_relative_to(home_real):
        exempt.append(inside)
    seen: set[Path] = set()
    for entry in search_path.split(os.pathsep):
        if not entry.startswith("/"):
            continue
        real = resolve(Path(entry))
        if real in seen or real == home_real or not real.is_relative_to(home_real):
            continue
        seen.add(real)
        if len(seen) > PATH_FOLDERS:
            return
        if any(real.is_relative_to(folder) for folder in exempt):
            continue
        if real.exists() or real.parent.exists():  # given as named: a link on the way is kept
            yield mount(
                Kind.READ, Path(entry), "runs code outside later (a folder of PATH in the home)"
            )


def config_dir_rules(folder: Path, why: str) -> Iterator[Mount]:
    """:data:`PROTECTED_IN_CONFIG_DIR` of ``folder``, read-only, missing ones included; the
    existing folders of :data:`PRIVATE_IN_CONFIG_DIR`, the sandbox's own; and the existing
    files matching :data:`PROTECTED_GLOBS_IN_CONFIG_DIR`."""
    for name in PROTECTED_IN_CONFIG_DIR:
        yield mount(Kind.READ, folder / name, why, folder=name not in FILES_IN_CONFIG_DIR)
    for name in PRIVATE_IN_CONFIG_DIR:
        private = mount(
            Kind.WRITE, folder / name, "the sandbox's own (sessions outside source theirs)"
        )
        if private.exists and private.is_dir:
            yield replace(private, private=True)
    for pattern in PROTECTED_GLOBS_IN_CONFIG_DIR:
        for found in sorted(folder.glob(pattern)):
            yield mount(Kind.READ, found, why)


SOCKET_ENTRIES = 5_000
"""How many entries :func:`socket_rules` reads at most, in all, looking for sockets that moved
since they were bound."""

_UNIX_ENTRY = re.compile(rb"^[0-9a-fA-F]+: ")


def socket_rules(proc_net_unix: bytes) -> Iterator[Mount]:
    """Every Unix socket bound on the host, hidden (``/proc/net/unix`` lists them, as bytes:
    a path need not be text, and may hold a line break).

    The table names the path each socket was bound at. One no longer there was renamed,
    linked elsewhere and unlinked (OpenSSH's control master binds ``PATH.RANDOM``, links it
    to ``PATH`` and removes the first), or its folder moved: every socket in the folder it
    was bound in, or else below the nearest folder still there (two levels), is hidden
    instead, at most :data:`SOCKET_ENTRIES` entries read in all; a folder left unread past
    that is hidden whole.

    Abstract sockets belong to the host's network namespace, which the sandbox leaves; those
    in ``/tmp`` and ``/run`` are gone with those folders, unless a rule binds their folder
    back (:func:`plan` keeps only the rules for sockets still in sight).
    """
    seen: set[Path] = set()
    looked: set[Path] = set()
    budget = [SOCKET_ENTRIES]
    for path in _socket_paths(proc_net_unix):
        real = resolve(path)
        if _is_socket(real):
            found = [Mount(Kind.HIDE, real, SOCKET_WHY, True, False)]
        elif real.parent in looked:
            continue
        else:
            found = _moved_sockets(real, looked, budget)
        for rule in found:
            if rule.path not in seen:
                seen.add(rule.path)
                yield rule


def _socket_paths(table: bytes) -> Iterator[Path]:
    """The paths of ``/proc/net/unix`` (abstract and unnamed sockets left out): a line that
    does not start an entry goes on the path of the one before (a path holding a line break)."""
    entries: list[bytes] = []
    for line in table.split(b"\n")[1:]:
        if _UNIX_ENTRY.match(line) or not entries:
            entries.append(line)
        else:
            entries[-1] += b"\n" + line
    for entry in entries:
        fields = entry.split(None, 7)
        if len(fields) == 8 and fields[7].startswith(b"/"):
            yield Path(os.fsdecode(fields[7]))


def _is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(path.lstat().st_mode)
    except OSError:
        return False


def _moved_sockets(path: Path, looked: set[Path], budget: list[int]) -> list[Mount]:
    """Hide rules for the sockets in ``path``'s folder, or two levels below its nearest
    folder still there when that folder is gone (``budget``: the entries left to read, shared
    by all). A folder the budget leaves unread is hidden whole (fail closed: a host socket
    could be in it); one this user cannot search is passed over (nor can the command)."""
    folder, depth = path.parent, 1
    try:
        while not folder.is_dir():
            if folder == folder.parent:
                return []
            folder, depth = folder.parent, 2
    except OSError:  # a folder on the way this user cannot search
        return []
    if folder == Path(folder.anchor):
        return []  # the whole system is not walked for one socket
    rules: list[Mount] = []
    queue = [(folder, depth)]
    while queue:
        current, left = queue.pop()
        if current in looked:
            continue
        if budget[0] <= 0:
            rules += _hidden_whole(current)
            continue
        looked.add(current)
        try:
            with os.scandir(current) as entries:
                for entry in entries:
                    budget[0] -= 1
                    if budget[0] <= 0:
                        rules += _hidden_whole(current)
                        break
                    if entry.is_dir(follow_symlinks=False):
                        if left > 1:
                            queue.append((Path(entry.path), left - 1))
                    elif not entry.is_file(follow_symlinks=False) and _is_socket(Path(entry.path)):
                        rules.append(Mount(Kind.HIDE, Path(entry.path), SOCKET_WHY, True, False))
        except OSError:
            continue
    return rules


SOCKET_WHY = "a host Unix socket"


def _hidden_whole(folder: Path) -> list[Mount]:
    """A folder too large to look through for a moved socket, hidden whole (what must stay in
    sight under it is bound back: :func:`plan`); none for one holding the sandbox's own."""
    why = f"{SOCKET_WHY} may have moved here (more entries than airlock reads)"
    try:
        return [mount(Kind.HIDE, folder, why)]
    except SandboxError:
        return []


def visible(paths: Iterable[Path], why: str, hidden: Iterable[Path] = ()) -> Iterator[Mount]:
    """Read-only binds for paths that a private ``/tmp``, ``/var/tmp`` or ``/run`` would hide
    (a home or a Python under ``/tmp``), or one of the ``hidden`` folders (a Python under a
    hidden home); nothing for the others, read-only already."""
    covers: list[str | Path] = [*PRIVATE_TMPFS, *hidden]
    for path in paths:
        real = resolve(path)
        try:
            there = real.exists()
        except OSError:  # a folder on the way that cannot be searched: nothing to show
            continue
        if there and any(real.is_relative_to(base) for base in covers):
            yield Mount(Kind.SHOW, real, why, True, real.is_dir())


def user_rules(
    kind: Kind, texts: Iterable[str], option: str, home: Path, cwd: Path
) -> Iterator[Mount]:
    """``--rw``, ``--ro`` and ``--hide``: ``~/`` under the home, relative paths under ``cwd``.

    Raises:
        SandboxError: a ``--rw`` or ``--ro`` path that does not exist (it cannot be bound); a
            path holding a NUL character (no path can: a ``--hide`` of one would hide nothing).
    """
    for text in texts:
        if "\0" in text:
            raise SandboxError(
                f"{option} {text!r}: holds a NUL character, which no path can hold; give the "
                "path as it is"
            )
        path = expand(text, home, cwd)
        if not (path.exists() or path.is_symlink()):
            if kind is Kind.HIDE:
                continue  # nothing there to hide; a missing path cannot be created in a read-only place
            raise SandboxError(
                f"{option} {text}: no such file or folder ({path}); create it or leave it out"
            )
        rule = mount(kind, path, f"{option} {text}")
        yield replace(rule, shown=True) if kind is Kind.READ else rule


def hide_note(said: str, text: str, path: Path, workspace: Path) -> str:
    """What to say of a path to hide (``--hide``, ``sandbox.filesystem.denyRead``), named in
    messages as ``said`` (the option or key and the entry ``text``, which names ``path``):
    ``""`` when it is there. A missing one hides nothing (a typo, a space at either end of
    the entry): said, so that it is not taken for hidden.

    Raises:
        SandboxError: ``path`` is the workspace (absolute, resolved), where the command runs:
            hiding it leaves the command nowhere to start (bubblewrap fails, or, under a
            private ``/tmp``, the hide is dropped and the workspace is an empty folder).
    """
    if os.path.realpath(path) == str(workspace):  # a folder above it: bound back inside
        raise SandboxError(
            f"{said}: that is the workspace ({workspace}), where the command runs; hide what "
            "is inside it instead"
        )
    if os.path.lexists(path):
        return ""
    spaced = " (the entry begins or ends with a space)" if text != text.strip() else ""
    return f"{said}: no such file or folder ({path}){spaced}, so nothing to hide there"


def plan(rules: Iterable[Mount]) -> list[Mount]:
    """The rules in the order to apply them: parent before child; on one path, the strictest.

    The placeholder of a missing path is kept only where code inside could create that path
    (the nearest rule above it is a ``WRITE``); elsewhere nothing can be created anyway. A
    ``HIDE`` is kept only where the path is still in sight: not under a private folder
    (``/tmp``, …) or another ``HIDE``, unless a nearer rule binds it back. Under a hidden
    folder (empty and read-only inside) what must stay in sight is bound back (the workspace,
    the agent's state, the Python that starts the sandbox under a hidden home), and a
    read-only rule is dropped: hiding wins, nothing under it is shown; but for one the user
    asked for in a hidden credential store (:attr:`Mount.asked`). A read-only rule in a
    private folder with nothing binding the host's in at or above it is dropped too, but for
    the user's own ``--ro`` (:attr:`Mount.shown`): the private folder hides the host's path,
    and a read-only bind would show it.
    """
    strictest: dict[Path, Mount] = {}
    shown: set[Path] = set()  # paths a rule binds in from the host
    for rule in rules:
        known = strictest.get(rule.path)
        if known is None or rule.kind > known.kind:
            strictest[rule.path] = rule
        if rule.kind in (Kind.WRITE, Kind.SHOW) or rule.shown:
            shown.add(rule.path)
    for path in shown:  # a stricter rule on the same path shows it too, read-only
        if strictest[path].kind is Kind.READ and not strictest[path].shown:
            strictest[path] = replace(strictest[path], shown=True)
    for pinned in _pins(strictest):
        strictest.setdefault(pinned.path, pinned)
    kept = [rule for rule in strictest.values() if _needed(rule, strictest)]
    return sorted(kept, key=lambda rule: (len(rule.path.parts), str(rule.path)))


def _pins(rules: Mapping[Path, Mount]) -> list[Mount]:
    """Writable binds of each folder between a ``WRITE`` rule and another rule under it: a
    stricter one, or another ``WRITE`` (a config dir two folders down in the workspace).

    A mount point cannot be renamed or removed, so code inside cannot move ``.claude`` or
    ``.git`` away (their protected paths go with them) and create the protected path anew,
    nor move away the folder that holds a writable bind with protected or hidden paths in it
    (the agent's config dir, with airlock's own state) and make a new one at its path.
    """
    pins: list[Mount] = []
    for rule in rules.values():
        if rule.kind < Kind.WRITE:
            continue
        between: list[Path] = []
        for parent in rule.path.parents:
            if parent in rules:
                if rules[parent].kind is Kind.WRITE:
                    why = f"kept in place: it holds {rule.path.name} ({rule.why})"
                    pins += [Mount(Kind.WRITE, path, why, True, True) for path in between]
                break
            between.append(parent)
    return pins


def _needed(rule: Mount, rules: Mapping[Path, Mount]) -> bool:
    above = next((rules[p] for p in rule.path.parents if p in rules), None)
    if not rule.exists:
        return above is not None and above.kind is Kind.WRITE
    if rule.kind is Kind.READ and above is not None and above.kind is Kind.HIDE:
        return rule.asked  # the hidden folder shows nothing, and nothing can be made in it
    if rule.kind is Kind.READ and not rule.shown and _out_of_sight(rule.path, rules):
        return False  # the private folder keeps it from the command already: not shown
    if rule.kind is not Kind.HIDE:
        return True
    if above is not None:
        return above.kind is not Kind.HIDE
    return not any(rule.path.is_relative_to(base) for base in PRIVATE_TMPFS)


def _out_of_sight(path: Path, rules: Mapping[Path, Mount]) -> bool:
    """Whether ``path`` is in one of :data:`PRIVATE_TMPFS` with no rule binding the host's in
    (a ``WRITE``, a ``SHOW``, a shown ``READ``: :attr:`Mount.shown`) above it: there the
    command sees the sandbox's own empty folder, not the host's."""
    if not any(path.is_relative_to(base) for base in PRIVATE_TMPFS):
        return False
    for folder in path.parents:
        above = rules.get(folder)
        if above is not None and (above.kind in (Kind.WRITE, Kind.SHOW) or above.shown):
            return False
    return True


LINKED_ENTRIES = 1_000
"""How many entries of each read-only or hidden folder :func:`linked_elsewhere` looks at."""


def linked_elsewhere(rules: Iterable[Mount]) -> list[tuple[Path, Mount, int]]:
    """The files a read-only or hiding rule keeps (the file it names, or those right in the
    folder it names, at most :data:`LINKED_ENTRIES` a folder) that have other names too (hard
    links, ``st_nlink`` above 1): each file, its rule and its count of names. A bind is of the
    file, not of a name, and another name in a folder the command can write (a hook linked
    from ``tools/``, a key from the workspace) lets it change or read what the rule keeps."""
    found = []
    for rule in rules:
        if rule.kind not in (Kind.READ, Kind.HIDE) or not rule.exists or rule.source:
            continue
        candidates = [rule.path]
        if rule.is_dir:
            try:
                with os.scandir(rule.path) as entries:
                    kept = itertools.islice(entries, LINKED_ENTRIES)
                    candidates = [Path(entry.path) for entry in kept]
            except OSError:
                continue
        for path in candidates:
            try:
                status = path.lstat()
            except OSError:
                continue
            if stat.S_ISREG(status.st_mode) and status.st_nlink > 1:
                found.append((path, rule, status.st_nlink))
    return found
