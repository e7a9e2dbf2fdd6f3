"""``airlock run`` given bad input, as a user or a script with an unset variable gives it:
each is refused with exit status 125 and a reason naming the option, the file and its key,
before the command runs, and never taken for a run with less protection than asked.

- an empty --upstream-ca, --git-token-file (read as the current folder) or --upstream-proxy
  (read as not given: the connections went past the proxy meant);
- an --audit-log whose path is not UTF-8 (the log's checkpoints name it in JSON: the command
  ran, and the log failed with no record);
- a --settings that is a folder, a FIFO or JSON that is no object (said to be no file);
- a settings block on the way to a restriction that is no object (``"sandbox": [...]``,
  ``"permissions": [...]``), or a restriction's empty entry: what it would take away cannot
  be told (the run went ahead without it).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.cli import airlock


def _run(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``airlock run OPTIONS -- touch ran``, its audit log in ``tmp_path``: ``ran`` in the
    project says the command ran."""
    log = str(tmp_path / "audit.jsonl")
    return airlock("run", "--audit-log", log, *options, "--", "touch", "ran", timeout=120)


@pytest.mark.parametrize(
    ("option", "words"),
    [
        ("--upstream-ca", "argument --upstream-ca: an empty path"),
        ("--git-token-file", "argument --git-token-file: an empty path"),
        ("--upstream-proxy", "argument --upstream-proxy: an empty URL"),
    ],
)
def test_an_empty_value_is_refused(tmp_path: Path, project: Path, option: str, words: str) -> None:
    done = _run(tmp_path, option, "")
    assert done.returncode == 125, done.stderr
    assert words in done.stderr
    assert "Traceback" not in done.stderr
    assert not (project / "ran").exists()


def test_an_audit_log_whose_path_is_not_utf8_is_refused_before_the_command_runs(
    tmp_path: Path, project: Path
) -> None:
    name = os.fsdecode(b"audit-\xff.jsonl")
    done = airlock("run", "--audit-log", str(tmp_path / name), "--", "touch", "ran", timeout=120)
    assert done.returncode == 125, done.stderr
    assert "argument --audit-log:" in done.stderr
    assert "not valid UTF-8" in done.stderr
    assert not (project / "ran").exists()
    assert not (tmp_path / name).exists()


def _folder(path: Path) -> None:
    path.mkdir()
    (path / "settings.json").write_text("{}")


def _fifo(path: Path) -> None:
    os.mkfifo(path)


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (_folder, "cannot be read: not a regular file (a folder)"),
        (_fifo, "cannot be read: not a regular file (a FIFO)"),
        (Path.mkdir, "a folder, not a settings file"),
    ],
    ids=["folder", "fifo", "empty_folder"],
)
def test_a_settings_path_that_is_no_file_is_said_for_what_it_is(
    tmp_path: Path, project: Path, make: object, words: str
) -> None:
    path = tmp_path / "given"
    make(path)  # type: ignore[operator]
    done = _run(tmp_path, "--settings", str(path))
    assert done.returncode == 125, done.stderr
    assert f"--settings {str(path)!r}: {words}" in done.stderr
    assert "no such file" not in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize("value", ["[]", '["x"]', "5"])
def test_inline_settings_that_are_no_object_are_said_to_be_so(
    tmp_path: Path, project: Path, value: str
) -> None:
    done = _run(tmp_path, "--settings", value)
    assert done.returncode == 125, done.stderr
    assert f"--settings {value!r}: inline settings must be a JSON object" in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"sandbox": [{"network": {"deniedDomains": ["evil.example"]}}]}, "sandbox"),
        ({"sandbox": {"network": [{"deniedDomains": ["evil.example"]}]}}, "sandbox.network"),
        ({"sandbox": {"filesystem": "//srv/secret"}}, "sandbox.filesystem"),
        ({"permissions": [{"deny": ["WebFetch(domain:evil.example)"]}]}, "permissions"),
    ],
    ids=["sandbox", "network", "filesystem", "permissions"],
)
def test_a_block_of_restrictions_that_is_no_object_stops_the_run(
    tmp_path: Path, project: Path, data: dict[str, object], key: str
) -> None:
    """The deny it was meant to hold cannot be read: the run went ahead without it."""
    settings = project / ".claude" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(json.dumps(data))
    done = _run(tmp_path)
    assert done.returncode == 125, done.stderr
    assert f"{settings}: {key}: expected an object: it may hold" in done.stderr
    assert "nothing ran" in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize(
    "data",
    [
        {"sandbox": {"network": {"deniedDomains": [""]}}},
        {"sandbox": {"filesystem": {"denyRead": [" "]}}},
        {"permissions": {"deny": [""]}},
    ],
    ids=["deniedDomains", "denyRead", "permissions.deny"],
)
def test_an_empty_restriction_stops_the_run(
    tmp_path: Path, config_dir: Path, project: Path, data: dict[str, object]
) -> None:
    """As ``--deny ''`` is refused: an entry that names nothing (a template's unset
    variable) was dropped without a word, or with one, and the run went ahead."""
    settings = config_dir / "settings.json"
    settings.write_text(json.dumps(data))
    done = _run(tmp_path)
    assert done.returncode == 125, done.stderr
    assert "an empty entry names nothing" in done.stderr
    assert str(settings) in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize("url", ["https://a[b", "https://[::1", "http://]x"])
def test_a_base_url_python_cannot_read_lets_no_host_out_and_the_run_goes_on(
    tmp_path: Path, project: Path, url: str
) -> None:
    """A project's settings give ``ANTHROPIC_BASE_URL`` a URL with an unbalanced bracket: no
    model host is allowed for it, and the run goes on to the command's own status (no
    traceback); ``airlock flows`` shows it as given."""
    (project / ".claude").mkdir(parents=True, exist_ok=True)
    (project / ".claude" / "settings.json").write_text(
        json.dumps({"env": {"ANTHROPIC_BASE_URL": url}})
    )
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", "sh", "-c", "exit 3",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    shown = airlock("flows", "--json", cwd=project)
    assert shown.returncode == 0, shown.stderr
    assert url in shown.stdout


@pytest.mark.parametrize("option", ["--allow-a", "--allow-al", "--env-", "--rw-"])
def test_an_option_cut_short_is_no_other_option(tmp_path: Path, project: Path, option: str) -> None:
    """``--allow-a`` is not taken for ``--allow-all``: a typo never widens what is let out;
    the run stops (125) before the command runs."""
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), option, "x",
        "--", "sh", "-c", "touch ran",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert f"unrecognized arguments: {option}" in done.stderr
    assert not (project / "ran").exists()


@pytest.mark.parametrize("args", [("--audit-log", ""), ("verify", ""), ("--audit-log", " ")])
def test_audit_refuses_an_empty_log_path(args: tuple[str, ...]) -> None:
    done = airlock("audit", *args)
    assert done.returncode == 2, done.stderr
    assert "an empty path; give the audit log's path" in done.stderr


def test_a_script_whose_interpreter_is_missing_is_said_so(tmp_path: Path, project: Path) -> None:
    """A script that is there, whose ``#!`` names a program not there, is not "not found":
    127, naming the ``#!`` line; a command that is nowhere is said not found."""
    script = project / "tool"
    script.write_text("#!/no/such/interpreter\necho ran\n")
    script.chmod(0o755)
    log = str(tmp_path / "audit.jsonl")
    done = airlock("run", "--audit-log", log, "--", "./tool", cwd=project)
    assert done.returncode == 127, done.stderr
    assert "./tool: its interpreter (the #! line of ./tool) was not found" in done.stderr
    missing = airlock("run", "--audit-log", log, "--", "no-such-command-here", cwd=project)
    assert missing.returncode == 127, missing.stderr
    assert "no-such-command-here: command not found inside the sandbox" in missing.stderr


def test_an_error_shows_a_terminals_escapes_as_text(tmp_path: Path, project: Path) -> None:
    """A path given with an escape sequence in it is named in the error as text
    (``\\x1b[31m``): it never reaches the terminal to recolour or hide what follows."""
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), "--workspace", "\x1b[31mnope",
        "--", "true",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert "\x1b" not in done.stderr
    assert "--workspace \\x1b[31mnope" in done.stderr


def _with_missing_loader(program: Path, copy: Path) -> None:
    """``program`` (an ELF file) copied to ``copy``, its loader (``PT_INTERP``) renamed to
    one that is nowhere."""
    import struct

    data = bytearray(program.read_bytes())
    assert data[:4] == b"\x7fELF" and data[4] == 2  # 64-bit
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    size, count = struct.unpack_from("<HH", data, 0x36)
    for number in range(count):
        header = phoff + number * size
        if struct.unpack_from("<I", data, header)[0] == 3:  # PT_INTERP
            offset, _, _, length = struct.unpack_from("<QQQQ", data, header + 8)
            data[offset + length - 2] = ord("X")  # the name's last character, before its NUL
            break
    else:
        raise AssertionError(f"{program} names no loader")
    copy.write_bytes(bytes(data))
    copy.chmod(0o755)


def test_a_program_whose_loader_is_missing_is_said_so(tmp_path: Path, project: Path) -> None:
    """A program that is there but whose loader is not (no ``#!`` line) is not said to be a
    script: 127, naming its loader or libraries."""
    _with_missing_loader(Path(os.path.realpath("/bin/true")), project / "tool")
    done = airlock("run", "--audit-log", str(tmp_path / "audit.jsonl"), "--", "./tool")
    assert done.returncode == 127, done.stderr
    assert "./tool is there, but its program loader or a library it needs" in done.stderr
    assert "#!" not in done.stderr


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("--secrets", "block"), ("--secrets", "report")),
        (("--max-upload-mb", "1"), ("--max-upload-mb", "100")),
        (("--upstream-proxy", "http://127.0.0.1:9"), ("--upstream-proxy", "http://127.0.0.1:8")),
        (("--workspace", "."), ("--workspace", "..")),
    ],
)
def test_an_option_of_one_value_given_twice_otherwise_is_refused(
    tmp_path: Path, project: Path, first: tuple[str, str], second: tuple[str, str]
) -> None:
    """``--secrets block --secrets report`` would run with ``report`` without a word: the
    option is refused (125), naming both values; nothing runs. Twice the same is that one."""
    done = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), *first, *second,
        "--", "sh", "-c", "touch ran",
        cwd=project,
    )  # fmt: skip
    assert done.returncode == 125, done.stderr
    assert f"{first[0]} given twice, {first[1]} and {second[1]}: give it once" in done.stderr
    assert not (project / "ran").exists()
    again = airlock(
        "run", "--audit-log", str(tmp_path / "audit.jsonl"), *first, *first,
        "--", "sh", "-c", "touch ran",
        cwd=project,
    )  # fmt: skip
    assert "given twice" not in again.stderr
