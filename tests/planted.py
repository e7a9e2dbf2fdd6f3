"""What code inside a sandbox with a writable home would plant there to run, or let someone
in, outside later: shared by the launcher's tests and ``airlock run``'s."""

PLANTED_IN_HOME = (
    ".ssh/authorized_keys",
    ".ssh/config",
    ".aws/config",
    ".docker/config.json",
    ".kube/config",
    ".bash_aliases",
    ".bash_logout",
    ".zlogin",
    ".zlogout",
    ".config/fish/config.fish",
    ".config/fish/conf.d/evil.fish",
    "bin/git",
    ".local/bin/git",
    ".claude/settings.json",
    ".claude/plugins/evil/hooks.json",
    ".claude/skills/evil/SKILL.md",
    ".claude/CLAUDE.md",
    ".claude/rules/evil.md",
    ".claude/output-styles/evil.md",
    ".local/lib/python3.11/site-packages/evil.pth",
    ".config/direnv/direnvrc",
    ".vimrc",
    ".config/nvim/init.lua",
    ".emacs.d/init.el",
    ".cargo/config.toml",
    ".gradle/init.d/evil.gradle",
    ".yarnrc.yml",
)
"""Paths under the home, each made with its folders by the tests' scripts (cargo's and Gradle's
with ``~/.cargo`` and ``~/.gradle`` there: those are protected where the tool is installed)."""
