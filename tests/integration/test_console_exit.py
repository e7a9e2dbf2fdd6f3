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
