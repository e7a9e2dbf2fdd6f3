"""The sandbox built by an unprivileged user (``nobody``), through a user namespace."""

from __future__ import annotations

import json

from tests.sandbox.unprivileged import as_nobody

PROGRAM = """
import json, os
from pathlib import Path
from tests.sandbox.helpers import run_sandboxed
ws, home = Path(os.getcwd()), Path(os.environ["HOME"])
(home / ".ssh").mkdir()
(home / ".ssh" / "id_rsa").write_text("KEY")
ran = run_sandboxed(
    "id -u; echo data > mine.txt && echo wrote; cat ~/.ssh/id_rsa 2>/dev/null || echo no-key; "
    "touch .git/hooks/x 2>/dev/null && echo WROTE-HOOK; "
    "mount | grep -q ' /proc/sys ' && echo SYS-READ-ONLY; "
    "curl -sS --noproxy '' -x $HTTP_PROXY http://example.test/u; "
    "grep CapEff /proc/self/status; echo token=${GH_TOKEN:-none}",
    ws, home, environ={"GH_TOKEN": "x"},
)
print(json.dumps({"uid": os.getuid(), "code": ran.code, "out": ran.out, "err": ran.err,
                  "file": (ws / "mine.txt").read_text()}))
"""


def test_an_unprivileged_user_gets_the_same_sandbox() -> None:
    """As ``nobody``: the sandbox builds, the workspace is writable, the key and the token are not
    there, hooks cannot be written, the door works, no capabilities."""
    done = as_nobody(PROGRAM)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.splitlines()[-1])
    assert found["uid"] != 0
    assert found["code"] == 0, found
    out = found["out"]
    assert "wrote" in out and found["file"] == "data\n"
    assert "no-key" in out and "KEY" not in out
    assert "WROTE-HOOK" not in out
    assert "SYS-READ-ONLY" in out
    assert "door: GET http://example.test/u HTTP/1.1" in out
    assert "CapEff:\t0000000000000000" in out
    assert "token=none" in out
