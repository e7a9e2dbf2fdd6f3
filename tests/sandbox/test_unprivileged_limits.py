"""What a run as an unprivileged user needs of the kernel, said before anything runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airlock.errors import SandboxError
from airlock.sandbox.launcher import check


@pytest.mark.parametrize("limit", [1, 2])
def test_too_few_user_namespaces_is_an_error_saying_what_to_do(tmp_path: Path, limit: int) -> None:
    """``user.max_user_namespaces`` at 1 or 2: unshare's user namespace and bubblewrap's two
    cannot all be made, and bubblewrap would fail with words about ``ENOSPC``; the error
    names the setting, the number a run needs, and the fix."""
    setting = tmp_path / "max_user_namespaces"
    setting.write_text(f"{limit}\n")
    with pytest.raises(SandboxError, match=rf"{limit} user namespaces? at once.*makes 3") as raised:
        check(dict(os.environ), euid=1000, userns_limit=str(setting))
    assert "sysctl -w user.max_user_namespaces=" in str(raised.value)
    assert check(dict(os.environ), euid=0, userns_limit=str(setting))  # root makes none


def test_enough_user_namespaces_pass(tmp_path: Path) -> None:
    setting = tmp_path / "max_user_namespaces"
    setting.write_text("3\n")
    assert check(dict(os.environ), euid=1000, userns_limit=str(setting))
