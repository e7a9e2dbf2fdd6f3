"""The ``airlock`` command leaves at once after a run, and loses nothing by it.

:func:`airlock.cli.main.console` ends ``airlock run`` with ``os._exit`` once its output is
flushed; these check, on the real command in a child process, that the command's exit code,
everything written to standard output and error, the report file, the audit log and the
run's scratch folder come out as with the usual exit, and that it falls back to the usual
exit when something is left for it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from airlock.cli.main import EXIT_WORK_MODULES
from tests.cli import airlock, run_script


def _scratch(tmp_path: Path) -> dict[str, str]:
    scratch = tmp_path / "scratch-tmp"
    scratch.mkdir()
    return {"TMPDIR": str(scratch)}


def test_a_run_keeps_its_exit_code_output_report_and_log(tmp_path: Path) -> None:
    env = _scratch(tmp_path)
    many = "x" * 200
    result = run_script(
        tmp_path,
        f"for i in $(seq 1 500); do echo line $i {many}; done; echo to-stderr >&2; exit 7",
        "--report-json",
        str(tmp_path / "report.json"),
        env=env,
    )
    assert result.returncode == 7, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 500
    assert lines[-1] == f"line 500 {many}"
    assert "to-stderr" in result.stderr
    assert "final hash" in result.stderr  # the report, written by airlock after the command
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == 7
    verified = airlock("audit", "verify", "--audit-log", str(tmp_path / "audit.jsonl"))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    records = json.loads(
        airlock("audit", "--json", "--audit-log", str(tmp_path / "audit.jsonl")).stdout
    )
    assert any(record.get("exit_code") == 7 for record in records)
    assert list(Path(env["TMPDIR"]).iterdir()) == []  # the run's scratch folder is gone


def _console_script(tmp_path: Path, before: str) -> tuple[subprocess.CompletedProcess[str], bool]:
    """``console()`` for ``airlock run -- true``, with ``before`` run in the same process first;
    whether the process left the usual way (an ``atexit`` handler of the script's ran)."""
    usual = tmp_path / "left-the-usual-way"
    script = tmp_path / "console.py"
    script.write_text(
        "import atexit, sys\n"
        f"atexit.register(lambda: open({str(usual)!r}, 'w').close())\n"
        f"{textwrap.dedent(before)}\n"
        "from airlock.cli.main import console\n"
        "sys.argv = ['airlock', 'run', '--audit-log', sys.argv[1], '--', 'true']\n"
        "console()\n"
    )
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "audit.jsonl")],
        capture_output=True,
        text=True,
        env={**_scratch(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "final hash" in result.stderr
    return result, usual.exists()


def test_with_only_daemon_threads_left_the_run_leaves_at_once(tmp_path: Path) -> None:
    _, usual = _console_script(
        tmp_path,
        """
        import threading, time
        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
        """,
    )
    assert not usual


def test_a_thread_still_working_is_waited_for(tmp_path: Path) -> None:
    """A thread that is not a daemon would be cut off by os._exit: the usual exit waits."""
    done = tmp_path / "thread-done"
    _, usual = _console_script(
        tmp_path,
        f"""
        import threading, time
        from pathlib import Path
        def later():
            time.sleep(1.5)
            Path({str(done)!r}).write_text("finished")
        threading.Thread(target=later).start()
        """,
    )
    assert usual
    assert done.read_text() == "finished"


@pytest.mark.parametrize("module", EXIT_WORK_MODULES)
def test_a_module_with_exit_work_means_the_usual_exit(tmp_path: Path, module: str) -> None:
    stand_in = f"import sys, types; sys.modules[{module!r}] = types.ModuleType({module!r})"
    _, usual = _console_script(tmp_path, stand_in)
    assert usual


def test_logging_handlers_are_flushed_before_leaving(tmp_path: Path) -> None:
    """A buffering handler's records reach its file although the interpreter is not torn down."""
    written = tmp_path / "log.txt"
    _, usual = _console_script(
        tmp_path,
        f"""
        import logging, logging.handlers
        target = logging.FileHandler({str(written)!r}, delay=True)
        held = logging.handlers.MemoryHandler(100, flushLevel=logging.CRITICAL, target=target)
        logging.getLogger("embedder").addHandler(held)
        logging.getLogger("embedder").warning("kept at exit")
        """,
    )
    assert not usual
    assert written.read_text() == "kept at exit\n"


@pytest.mark.parametrize(
    "redirect",
    [">&-", "2>&-", "2>/dev/full"],
    ids=["stdout_closed", "stderr_closed", "stderr_full"],
)
def test_a_run_with_a_standard_stream_closed_or_full_keeps_the_commands_exit_code(
    tmp_path: Path, redirect: str
) -> None:
    """``airlock run`` writes nothing on stdout, so a closed one is the command's business (it
    gets it closed, or ``/dev/null``: never a file airlock opened in its place); a stderr
    closed or full loses the report's display only (the log and the report file have it).
    Each exited 1 or 2 without running the command or after it, with a traceback for a
    closed stdout."""
    marker = Path.cwd() / "ran"  # in the workspace, which the command may write
    shown = Path.cwd() / "fds"
    check = (  # which of 0, 1, 2 the command got open, asked before it opens anything
        "import os, sys\n"
        "def target(fd):\n"
        "    try:\n"
        "        return os.readlink(f'/proc/self/fd/{fd}')\n"
        "    except OSError:\n"
        "        return 'closed'\n"
        "found = [target(fd) for fd in (0, 1, 2)]\n"
        "open('fds', 'w').write(' '.join(found))\n"
        "open('ran', 'w').close()\n"
        "sys.exit(3)\n"
    )
    (Path.cwd() / "check.py").write_text(check)
    command = (
        f'"{sys.executable}" -m airlock run --audit-log "{tmp_path / "audit.jsonl"}" '
        f'--report-json "{tmp_path / "report.json"}" -- "{sys.executable}" check.py {redirect}'
    )
    done = subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" not in done.stderr
    assert marker.exists()
    descriptors = shown.read_text().split()
    closed = 1 if redirect == ">&-" else 2 if redirect == "2>&-" else None
    if closed is not None:  # the command got it closed, or /dev/null: nothing of airlock's
        assert descriptors[closed] in ("closed", "/dev/null"), descriptors
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 3


def test_ctrl_c_while_the_cli_loads_ends_it_without_a_traceback(tmp_path: Path) -> None:
    """SIGINT before a command handles it (here while the parser is built, as in the first
    tens of milliseconds of any command): exit 130 and one line, as every command says
    Ctrl-C; it was a Python traceback."""
    script = textwrap.dedent(
        """
        import os, signal, sys
        import airlock.cli.main as cli
        built = cli.build_parser
        def interrupted(*args):
            os.kill(os.getpid(), signal.SIGINT)
            return built(*args)
        cli.build_parser = interrupted
        sys.argv = ["airlock", "flows"]
        cli.console()
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 130, (done.returncode, done.stderr)
    assert "Traceback" not in done.stderr and "airlock: interrupted" in done.stderr, done.stderr
