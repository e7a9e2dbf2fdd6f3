"""The programs the agent's settings and a project's .mcp.json name."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from airlock.sandbox.paths import Kind
from airlock.sandbox.programs import (
    LINE_BYTES,
    NAMED_PROGRAMS,
    NESTED_BYTES,
    STATE_PROJECTS,
    WORDS_LOOKED_AT,
    Named,
    commands,
    named_commands,
    named_paths,
    program_rules,
    server_commands,
    state_commands,
)


def _files(*paths: Path) -> None:
    """Each path as a small file, its folders made."""
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")


def _named_as(home: Path, workspace: Path, *cases: tuple[str, list[Path]]) -> None:
    """Each command line of ``cases`` names its files, those only, in order."""
    for line, named in cases:
        assert named_paths([line], home, workspace) == named, line


def test_commands_of_hooks_status_line_and_helpers() -> None:
    settings = {
        "apiKeyHelper": "~/bin/key.sh",
        "statusLine": {"type": "command", "command": "~/.claude/statusline.sh"},
        "hooks": {
            "PostToolUse": [{"matcher": "Edit", "hooks": [{"type": "command", "command": "a b"}]}],
            "Stop": "not a list",
        },
    }
    assert list(commands(settings)) == ["~/bin/key.sh", "~/.claude/statusline.sh", "a b"]


def test_server_commands_join_command_and_args() -> None:
    mcp = {"mcpServers": {"x": {"command": "node", "args": ["tools/s.js", "--x"]}, "y": {}}}
    assert list(server_commands(mcp)) == ["node tools/s.js --x"]


def test_named_paths_are_files_that_are_there(tmp_path: Path) -> None:
    """``~``, ``$CLAUDE_PROJECT_DIR``, relative and absolute paths; not words without a ``/``,
    options with ``=``, or paths to nothing."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".claude").mkdir(parents=True)
    (workspace / "scripts").mkdir(parents=True)
    status = home / ".claude" / "status.sh"
    start = workspace / "scripts" / "start.sh"
    status.write_text("x")
    start.write_text("x")
    lines = [
        "~/.claude/status.sh",
        'bash "$CLAUDE_PROJECT_DIR"/scripts/start.sh',
        f"python {start} --out=scripts/start.sh",
        "node missing/server.js",
        "echo 'unclosed",
    ]
    assert named_paths(lines, home, workspace) == [status, start]


def test_program_rules_from_settings_and_mcp_json(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "tools").mkdir(parents=True)
    (workspace / "tools" / "server.js").write_text("//")
    (workspace / ".mcp.json").write_text(
        json.dumps({"mcpServers": {"x": {"command": "node", "args": ["tools/server.js"]}}})
    )
    rules, left, _ = program_rules([{}], tmp_path, workspace)
    assert [(rule.kind, rule.path) for rule in rules] == [
        (Kind.READ, workspace / "tools" / "server.js")
    ]
    assert left == 0


def test_paths_inside_quoted_commands_bare_names_and_home(tmp_path: Path) -> None:
    """``sh -c "scripts/b.sh --fix"``, ``bash check.sh`` (a file in the workspace),
    ``$HOME/…``; a missing path with a ``/`` whose folder is there (it could be made)."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".claude").mkdir(parents=True)
    (workspace / "scripts").mkdir(parents=True)
    quoted, bare, status = (
        workspace / "scripts" / "b.sh",
        workspace / "check.sh",
        home / ".claude" / "s.sh",
    )
    for path in (quoted, bare, status):
        path.write_text("x")
    lines = [
        'sh -c "scripts/b.sh --fix"',
        "bash check.sh",
        "bash $HOME/.claude/s.sh",
        "scripts/new.sh",
    ]
    assert named_paths(lines, home, workspace) == [
        quoted,
        bare,
        status,
        workspace / "scripts" / "new.sh",
    ]


def test_the_users_own_rw_keeps_a_program_writable(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    (workspace / "mcp").mkdir(parents=True)
    (workspace / "mcp" / "server.py").write_text("x")
    settings = {"apiKeyHelper": "python mcp/server.py"}
    assert program_rules([settings], tmp_path, workspace)[0]
    assert (
        program_rules([settings], tmp_path, workspace, [workspace / "mcp" / "server.py"])[0] == []
    )


def test_named_commands_whatever_the_layout() -> None:
    """A line, a program with its args (and the folder it runs in), a list of words, Codex's
    ``notify``, Gemini's tool discovery; values that are not commands are passed over."""
    config = {
        "notify": ["python3", "/h/.codex/notify.py"],
        "mcp_servers": {"docs": {"command": "node", "args": ["srv.js", 3], "cwd": "mcp"}},
        "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "bash x.sh"}]}]},
        "tools": {"discoveryCommand": "bin/discover"},
        "other": {"command": 7, "notify": [1, 2], "args": ["a"]},
    }
    assert sorted(named_commands(config), key=str) == sorted(
        [
            ("python3 /h/.codex/notify.py", None),
            ("node srv.js 3", "mcp"),
            ("bash x.sh", None),
            ("bin/discover", None),
        ],
        key=str,
    )
    assert list(named_commands(None)) == []


def test_the_state_files_servers_read_from_their_projects(tmp_path: Path) -> None:
    """``~/.claude.json``: the user's servers read relative paths from the workspace (no
    placeholders: they run in any project), a project's from that project's folder or its
    ``cwd``; a project key that is no absolute path is passed over."""
    home, workspace, other = tmp_path / "home", tmp_path / "ws", tmp_path / "other"
    state = {
        "mcpServers": {"u": {"command": "node", "args": ["u.js"]}},
        "projects": {
            str(other): {"mcpServers": {"p": {"command": "node", "args": ["p.js"], "cwd": "srv"}}},
            "relative": {"mcpServers": {"r": {"command": "r"}}},
        },
    }
    assert state_commands(state, workspace, home) == (
        [Named("node u.js", workspace, False, 0), Named("node p.js", other / "srv", True, 2)],
        0,
    )


def test_the_workspaces_own_projects_come_before_the_bound(tmp_path: Path) -> None:
    """Past the bound of projects read, the workspace's own are read all the same, and the
    others left are counted."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    servers = {"mcpServers": {"s": {"command": "s.js"}}}
    projects = {str(tmp_path / f"p{n}"): servers for n in range(STATE_PROJECTS + 5)}
    projects[str(workspace / "sub")] = servers
    named, left = state_commands({"projects": projects}, workspace, home)
    assert named[0].folder == workspace / "sub" and len(named) == STATE_PROJECTS + 1
    assert left == 5


def test_program_rules_from_the_other_agents_files(tmp_path: Path) -> None:
    """Codex's notify program in ``~/.codex``, a Gemini server's script in the workspace, a
    project server of ``~/.claude.json`` in another project; broken and huge files name
    nothing."""
    home, workspace, other = tmp_path / "home", tmp_path / "ws", tmp_path / "other"
    for folder in (home / ".codex", home / ".gemini", workspace / ".codex", other):
        folder.mkdir(parents=True)
    notify, server, kept = home / ".codex" / "notify.py", workspace / "g.js", other / "p.js"
    for path in (notify, server, kept):
        path.write_text("x")
    (home / ".codex" / "config.toml").write_text(f'notify = ["python3", "{notify}"]\n')
    (home / ".gemini" / "settings.json").write_text(
        json.dumps({"mcpServers": {"g": {"command": "node", "args": ["g.js"]}}})
    )
    (workspace / ".codex" / "config.toml").write_text("notify = [\n")
    (home / ".claude.json").write_text(
        json.dumps({"projects": {str(other): {"mcpServers": {"p": {"command": "p.js"}}}}})
    )
    rules, left, problems = program_rules([{}], home, workspace, (), [home / ".claude.json"])
    assert sorted(rule.path for rule in rules) == sorted([notify, server, kept])
    assert {rule.kind for rule in rules} == {Kind.READ} and left == 0
    assert problems == [
        f"{workspace / '.codex' / 'config.toml'}: not valid TOML ({problems[0].split('(', 1)[1]}"
    ]


def test_a_fifo_or_a_folder_where_a_file_is_read_names_nothing(tmp_path: Path) -> None:
    """A FIFO at ``~/.claude.json`` or ``~/.codex/config.toml`` (made by an earlier run, or
    by anyone) is not waited on; a folder there names nothing either."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".codex").mkdir(parents=True)
    (home / ".gemini" / "settings.json").mkdir(parents=True)
    workspace.mkdir()
    os.mkfifo(home / ".claude.json")
    os.mkfifo(home / ".codex" / "config.toml")
    rules, left, problems = program_rules([{}], home, workspace, (), [home / ".claude.json"])
    assert (rules, left) == ([], 0)
    assert [problem.split(": ", 1)[1] for problem in problems] == ["not a regular file"] * 3


def test_geminis_project_variable_and_settings_with_comments(tmp_path: Path) -> None:
    """``$GEMINI_PROJECT_DIR`` is the project, as ``$CLAUDE_PROJECT_DIR``; Gemini's settings
    may hold comments (it reads them so), and still name their programs."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / ".gemini").mkdir(parents=True)
    (workspace / "scripts").mkdir()
    hook, other = workspace / "scripts" / "hook.sh", workspace / "scripts" / "other.sh"
    hook.write_text("x")
    other.write_text("x")
    (workspace / ".gemini" / "settings.json").write_text(
        '{\n  // my hooks\n  "hooks": {"BeforeTool": [{"hooks": [\n'
        '    {"type": "command", "command": "$GEMINI_PROJECT_DIR/scripts/hook.sh"},\n'
        '    /* and "this" one */ {"type": "command", "command": "bash scripts/other.sh"}\n'
        "  ]}]}\n}\n"
    )
    rules, _, problems = program_rules([{}], home, workspace)
    assert sorted(rule.path for rule in rules) == [hook, other] and problems == []


def test_the_folder_a_server_runs_in(tmp_path: Path) -> None:
    """A server's ``cwd``, and ``uv --directory DIR``, name the folder its words are read
    from: the files there are protected, and a file of the same name in the workspace is not;
    a home server's missing path gets no placeholder in the workspace."""
    home, workspace, tool = tmp_path / "home", tmp_path / "ws", tmp_path / "tool"
    for folder in (home / ".gemini", home / ".codex", workspace / "dist", workspace / "srv", tool):
        folder.mkdir(parents=True)
    for path in (workspace / "server.py", workspace / "srv" / "main.py", tool / "server.py"):
        path.write_text("x")
    (home / ".gemini" / "settings.json").write_text(
        json.dumps(
            {
                "mcpServers": {
                    "a": {"command": "node", "args": ["dist/index.js"], "cwd": str(tool)},
                    "b": {"command": "uv", "args": ["--directory", str(tool), "run", "server.py"]},
                }
            }
        )
    )
    (home / ".codex" / "config.toml").write_text(
        '[mcp_servers.local]\ncommand = "python3"\nargs = ["main.py"]\ncwd = "srv"\n'
    )
    (home / ".claude.json").write_text(
        json.dumps({"mcpServers": {"c": {"command": "node", "args": ["dist/missing.js"]}}})
    )
    rules, _, _ = program_rules([{}], home, workspace, (), [home / ".claude.json"])
    assert {rule.path for rule in rules} == {workspace / "srv" / "main.py", tool / "server.py"}


def test_the_workspaces_programs_come_first_under_the_bound(tmp_path: Path) -> None:
    """Many programs elsewhere (other projects' servers) do not push the workspace's out."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / ".gemini").mkdir(parents=True)
    (workspace / "hook.sh").write_text("x")
    (workspace / ".gemini" / "settings.json").write_text(
        json.dumps({"hooks": {"A": [{"hooks": [{"command": "bash hook.sh"}]}]}})
    )
    projects = {}
    for n in range(NAMED_PROGRAMS + 20):
        (tmp_path / f"p{n}").mkdir()
        (tmp_path / f"p{n}" / "s.js").write_text("x")
        projects[str(tmp_path / f"p{n}")] = {"mcpServers": {"s": {"command": "node s.js"}}}
    (tmp_path / "state.json").write_text(json.dumps({"projects": projects}))
    rules, left, _ = program_rules([{}], home, workspace, (), [tmp_path / "state.json"])
    assert rules[0].path == workspace / "hook.sh" and len(rules) == NAMED_PROGRAMS
    assert left == 21


def test_files_that_cannot_be_read_are_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Too large, nested past the parser's depth, not UTF-8: named, never raised."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".codex").mkdir(parents=True)
    (home / ".gemini").mkdir()
    workspace.mkdir()
    monkeypatch.setattr("airlock.sandbox.programs.LIMIT", 1_000_000)
    (home / ".claude.json").write_text(" " * 1_000_001)
    (home / ".gemini" / "settings.json").write_text("[" * 100_000 + "]" * 100_000)
    (home / ".codex" / "config.toml").write_bytes(b"notify = ['\xff']\n")
    _, _, problems = program_rules([{}], home, workspace, (), [home / ".claude.json"])
    assert problems[0] == f"{home / '.claude.json'}: larger than 1,000,000 bytes"
    assert problems[1].startswith(f"{home / '.codex' / 'config.toml'}: not valid TOML")
    assert problems[2].startswith(f"{home / '.gemini' / 'settings.json'}: not valid JSON")
    assert len(problems) == 3


def test_a_folder_option_holds_for_its_own_command_only(tmp_path: Path) -> None:
    """``--prefix``, ``-C`` and the like change the folder for the rest of their own command:
    not past ``&&`` or ``;``, not out of ``sh -c "…"``, and not when what follows is no
    folder (``bash -C script``)."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    for folder in (workspace / "scripts", workspace / "frontend", workspace / "tools"):
        folder.mkdir(parents=True)
    post = workspace / "scripts" / "post.sh"
    post.write_text("x")
    for line in (
        "npm --prefix frontend run lint && ./scripts/post.sh",
        "make -C tools; sh scripts/post.sh",
        'sh -c "git -C tools status; scripts/post.sh"',
        "bash -C scripts/post.sh",
        "make -C tools |& scripts/post.sh",
        "make -C tools\nscripts/post.sh",
        "true&&scripts/post.sh",
        "scripts/post.sh>log 2>&1",
        "echo $(scripts/post.sh)",
        "echo `scripts/post.sh`",
    ):
        assert named_paths([line], home, workspace) == [post], line


def test_cd_moves_the_rest_of_the_line(tmp_path: Path) -> None:
    """``cd hk && ./check.sh``: the script in ``hk``, and no placeholder at the workspace's
    root."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / "hk").mkdir(parents=True)
    (workspace / "hk" / "check.sh").write_text("x")
    assert named_paths(["cd hk && ./check.sh"], home, workspace) == [workspace / "hk" / "check.sh"]
    assert named_paths(["cd missing && ./check.sh"], home, workspace) == [workspace / "check.sh"]


def test_a_missing_program_the_homes_files_name_by_its_full_path_is_kept_from_being_made(
    tmp_path: Path,
) -> None:
    """Codex's ``notify`` naming a script in ``~/.codex`` that is not there yet: a placeholder
    keeps it from being made inside (a relative one, read in whatever project the agent starts
    in, gets none)."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / ".codex").mkdir(parents=True)
    (workspace / "dist").mkdir(parents=True)
    (home / ".codex" / "config.toml").write_text(
        'notify = ["sh", "~/.codex/notify.sh", "dist/later.js"]\n'
    )
    rules, _, _ = program_rules([{}], home, workspace)
    assert [rule.path for rule in rules] == [home / ".codex" / "notify.sh"]


def test_the_users_own_programs_come_first_and_only_writable_ones_count(tmp_path: Path) -> None:
    """A project's ``.mcp.json`` naming more files than the bound does not push out the
    program the user's own settings name; files outside every writable folder need no rule."""
    home, workspace, system = tmp_path / "home", tmp_path / "ws", tmp_path / "usr"
    for folder in (home / ".claude", workspace / "lib", system):
        folder.mkdir(parents=True)
    status, fixed = home / ".claude" / "status.sh", system / "tool.sh"
    status.write_text("x")
    fixed.write_text("x")
    servers = {}
    for n in range(NAMED_PROGRAMS + 1):
        (workspace / "lib" / f"{n}.js").write_text("x")
        servers[f"s{n}"] = {"command": "node", "args": [f"lib/{n}.js"]}
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))
    user = {"statusLine": {"command": "~/.claude/status.sh"}, "apiKeyHelper": str(fixed)}
    writable = [workspace, home / ".claude"]
    rules, left, _ = program_rules([user], home, workspace, writable=writable)
    assert rules[0].path == status and len(rules) == NAMED_PROGRAMS and left == 2
    assert fixed not in {rule.path for rule in rules}


def test_an_open_string_in_a_file_with_comments_is_read_in_one_pass(tmp_path: Path) -> None:
    """A string left open in a long file (``{"`` then ``\\"`` over and over, and with a lone
    ``\\`` at the end) is one string to the end: named as not valid, at once (a scan that
    tried each quote again took seconds for 60 KB, hours for a few MB)."""
    workspace = tmp_path / "ws"
    (workspace / ".gemini").mkdir(parents=True)
    for end in ("", "\\"):
        (workspace / ".gemini" / "settings.json").write_text('{"' + '\\"' * 500_000 + end)
        _, _, problems = program_rules([{}], tmp_path / "home", workspace)
        assert len(problems) == 1 and "not valid JSON" in problems[0]


def test_a_program_named_through_a_link_in_a_writable_folder_is_kept(tmp_path: Path) -> None:
    """``tools -> ~/tools`` in the workspace, a server at ``tools/server.js``: the file is in a
    read-only folder, but the link on the way to it can be swapped inside: the rule stays (and
    with it the link is put back after the run); one named by its own path there needs none."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (home / "tools").mkdir(parents=True)
    workspace.mkdir()
    (home / "tools" / "server.js").write_text("x")
    (workspace / "tools").symlink_to(home / "tools")
    user = {"apiKeyHelper": "node tools/server.js"}
    rules, _, _ = program_rules([user], home, workspace, writable=[workspace])
    assert [rule.path for rule in rules] == [home / "tools" / "server.js"]  # a rule names it
    user = {"apiKeyHelper": f"node {home}/tools/server.js"}
    assert program_rules([user], home, workspace, writable=[workspace])[0] == []


def test_a_subfolders_project_files_name_programs_of_that_subfolder(tmp_path: Path) -> None:
    """A package of a monorepo with its own ``.claude`` settings, ``.mcp.json`` and Gemini
    settings (an agent started there reads them): their programs are read from the package's
    folder, ``$CLAUDE_PROJECT_DIR`` being the package."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    package = workspace / "packages" / "app"
    for folder in (package / ".claude", package / ".gemini", package / "scripts"):
        folder.mkdir(parents=True)
    start, server, hook = package / "start.sh", package / "srv.js", package / "scripts" / "h.sh"
    for path in (start, server, hook):
        path.write_text("x")
    (package / ".claude" / "settings.json").write_text(
        json.dumps({"hooks": {"S": [{"hooks": [{"command": "$CLAUDE_PROJECT_DIR/start.sh"}]}]}})
    )
    (package / ".mcp.json").write_text(json.dumps({"mcpServers": {"s": {"command": "srv.js"}}}))
    (package / ".gemini" / "settings.json").write_text(
        json.dumps({"hooks": {"A": [{"hooks": [{"command": "bash scripts/h.sh"}]}]}})
    )
    named = [package / ".claude", package / ".mcp.json", package / ".gemini", package / "x"]
    rules, _, problems = program_rules([{}], home, workspace, nested=named)
    assert sorted(rule.path for rule in rules) == sorted([start, server, hook])
    assert problems == []


def test_what_a_shell_reads_otherwise_than_a_word(tmp_path: Path) -> None:
    """A ``#`` inside a word is part of it; what ``<`` feeds the command may be the program,
    ``<(…)`` runs one; a ``cd`` in a subshell or a pipeline moves nothing after it; ``cd``'s
    options are not its folder, and ``cd`` alone is the home; a file written to is no
    program."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    x, check, mine = workspace / "scripts" / "x.sh", workspace / "hk" / "check.sh", home / "m.sh"
    _files(*(x, check, mine))
    _named_as(
        home,
        workspace,
        ("test $# -ge 0 && scripts/x.sh", [x]),
        ("curl http://h/#/a && scripts/x.sh", [x]),
        ("bash < scripts/x.sh", [x]),
        ("diff <(scripts/x.sh) other", [x]),
        ("(cd scripts && true); scripts/x.sh", [x]),
        ("cd hk | true; scripts/x.sh", [x]),
        ("cd -- hk && ./check.sh", [check]),
        ("cd -P hk && ./check.sh", [check]),
        ("cd && ./m.sh", [mine]),
        ("echo evil > scripts/x.sh", []),
        ("(cd hk && ./check.sh)", [check]),
    )


def test_what_is_too_much_to_read_is_said(tmp_path: Path) -> None:
    """A subfolder's project file past its size, a command line past its length, and command
    lines past the words looked at, are said (the run's start is not held up by them)."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / "sub").mkdir(parents=True)
    (workspace / "sub" / ".mcp.json").write_text(" " * (NESTED_BYTES + 1))
    servers = {"long": {"command": "node", "args": ["x" * LINE_BYTES]}}
    for n in range(WORDS_LOOKED_AT // 10 + 10):
        servers[f"s{n}"] = {"command": "node", "args": [f"d{n}/{m}.js" for m in range(9)]}
    (workspace / ".mcp.json").write_text(json.dumps({"mcpServers": servers}))
    _, _, problems = program_rules([{}], home, workspace, nested=[workspace / "sub" / ".mcp.json"])
    assert problems == [
        f"{workspace / 'sub' / '.mcp.json'}: larger than {NESTED_BYTES:,} bytes",
        f"a command line of {LINE_BYTES + 5:,} bytes was not read",
        f"the command lines name more than {WORDS_LOOKED_AT:,} words: the ones past those "
        "were not looked at",
    ]


def test_lines_a_shell_reads_that_shlex_alone_would_not(tmp_path: Path) -> None:
    """A comment holding a quote; a project folder with a space, written in the ways hooks
    write it; a quoted path with a space; a ``-c`` script glued to its ``;``; ``-Ctools``; a
    ``cd`` that may not run (both folders looked in); a NUL (no path holds one)."""
    home, workspace = tmp_path / "home", tmp_path / "My Project"
    for folder in (workspace / "scripts", workspace / "My Hooks", workspace / "tools", home):
        folder.mkdir(parents=True, exist_ok=True)
    lint, check, build = (
        workspace / "scripts" / "lint.sh",
        workspace / "My Hooks" / "check.sh",
        workspace / "tools" / "b.sh",
    )
    here = workspace / "b.sh"
    _files(*(lint, check, build, here))
    _named_as(
        home,
        workspace,
        ("scripts/lint.sh || true  # don't block the agent", [lint]),
        ('"$CLAUDE_PROJECT_DIR"/scripts/lint.sh', [lint]),
        ('"$(pwd)/scripts/lint.sh"', [lint]),
        ('"$(git rev-parse --show-toplevel)"/scripts/lint.sh', [lint]),
        ('bash "My Hooks/check.sh"', [check]),
        ("bash -c 'scripts/lint.sh;'", [lint]),
        ("make -Ctools && true", []),
        ('[ -n "$CI" ] && cd tools; ./b.sh', [build, here]),
        ("node scripts/x\0y.js", []),
    )


def test_files_a_hook_writes_are_no_programs(tmp_path: Path) -> None:
    """``tee``'s and ``mkdir``'s arguments, a file appended to: no rule (one there would stop
    the hook writing); a missing path gets a placeholder only where a program stands."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / "logs").mkdir(parents=True)
    (workspace / ".claude").mkdir()
    (workspace / "logs" / "hooks.jsonl").write_text("")
    for line in (
        "jq -c . | tee -a logs/hooks.jsonl",
        "mkdir -p .claude/logs && cat >> .claude/logs/hook.log",
        "cp logs/none.jsonl logs/new/backup.jsonl",
    ):
        assert named_paths([line], home, workspace) == [], line
    assert named_paths(["env A=1 bash logs/next.sh"], home, workspace) == [
        workspace / "logs" / "next.sh"
    ]


def test_command_lines_held_in_words_are_read_where_they_run(tmp_path: Path) -> None:
    """A quoted command line anywhere in a command (``eval``, ``concurrently``), a ``-c``
    script in the folder its command runs in; a missing script after ``uv run`` or
    ``timeout`` kept from being made; a project folder whose name a shell would split."""
    home, workspace = tmp_path / "home", tmp_path / "w(1);a&b"
    x, a, h = (
        workspace / "scripts" / "x.sh",
        workspace / "scripts" / "a.js",
        workspace / ".claude" / "hooks" / "h.sh",
    )
    _files(*(x, a, h))
    _named_as(
        home,
        workspace,
        ('eval "scripts/x.sh --fix"', [x]),
        ('npx concurrently "node scripts/a.js"', [a]),
        ("(cd scripts && sh -c ./x.sh)", [x]),
        ("uv run --directory scripts bash -c ./x.sh", [x]),
        ("uv run scripts/lint.py", [workspace / "scripts" / "lint.py"]),
        ("timeout 10 scripts/new.sh", [workspace / "scripts" / "new.sh"]),
        ("$CLAUDE_PROJECT_DIR/.claude/hooks/h.sh", [h]),
    )


def test_what_a_hook_installs_is_a_program_and_what_it_logs_to_is_not(tmp_path: Path) -> None:
    """``cp``'s and ``ln``'s sources are named (a hook installing a git hook), their
    destination not; a missing file an ordinary command writes (a log a script is given, an
    archive, ``sudo tee``) gets no placeholder; a lone surrogate names nothing."""
    home, workspace = tmp_path / "home", tmp_path / "ws"
    (workspace / ".claude" / "logs").mkdir(parents=True)  # the logs' folder, with no log yet
    hook, log = (
        workspace / "scripts" / "git-hooks" / "pre-commit",
        workspace / ".claude" / "hooks" / "log.py",
    )
    _files(*(hook, log))
    _named_as(
        home,
        workspace,
        ("cp scripts/git-hooks/pre-commit .git/hooks/pre-commit", [hook]),
        ('ln -sf "$CLAUDE_PROJECT_DIR/scripts/git-hooks/pre-commit" .git/hooks/x', [hook]),
        ("cp -t .git/hooks scripts/git-hooks/pre-commit", [hook]),
        ("python3 .claude/hooks/log.py .claude/logs/events.jsonl", [log]),
        ("tar czf .claude/logs/snap.tgz scripts", []),
        ("LC_ALL=C tee -a .claude/logs/x", []),
        ("sudo tee -a .claude/logs/x", []),
        ("bash check.sh .claude/logs/out.txt", []),
        ("grep -q x .claude/logs/\ud800", []),
    )


def test_a_line_too_long_once_read_is_said_too(tmp_path: Path) -> None:
    """A line under the bound as written and over it once ``$(pwd)`` is read is said."""
    line = "$(pwd)/" * 1500
    assert len(line) < LINE_BYTES
    _, _, problems = program_rules([{"apiKeyHelper": line}], tmp_path / "home", tmp_path)
    assert problems == [f"a command line of {len(line):,} bytes was not read"]
