"""The command as the run's audit record keeps it: a password joined to a MySQL or MariaDB
client's ``-p`` is replaced, and ``-p`` keeps its meaning for every other program."""

from __future__ import annotations

import pytest

from airlock.cli._run_build import shown_command

SECRET = "Xk9mQ2vLpW7"


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        (
            ["mysql", "-u", "root", f"-p{SECRET}", "db"],
            ["mysql", "-u", "root", "-p[REDACTED:generic_password]", "db"],
        ),
        (
            ["sudo", "/usr/bin/mysqldump", f"-p{SECRET}!"],
            ["sudo", "/usr/bin/mysqldump", "-p[REDACTED:generic_password]"],
        ),
        (["mariadb-dump", f"-p{SECRET}"], ["mariadb-dump", "-p[REDACTED:generic_password]"]),
        (
            ["sh", "-c", f"mysql -u root -p{SECRET} db; echo ok"],
            ["sh", "-c", "mysql -u root -p[REDACTED:generic_password] db; echo ok"],
        ),
        (
            ["sh", "-c", f"cd /x && /opt/bin/mysqladmin -p'{SECRET} with space' status"],
            ["sh", "-c", "cd /x && /opt/bin/mysqladmin -p'[REDACTED:generic_password]' status"],
        ),
    ],
)
def test_a_joined_mysql_password_is_replaced(command: list[str], shown: list[str]) -> None:
    kept = shown_command(command)
    assert kept == shown
    assert not any(SECRET in argument for argument in kept)


@pytest.mark.parametrize(
    "command",
    [
        ["mkdir", "-p", "build/out"],
        ["ssh", "-p2222", "host"],
        ["git", "log", "-pretty"],
        ["mysql", "-p", "db"],  # asks for the password
        ["sh", "-c", "mysql -P 3306 -p db"],
        ["sh", "-c", "mkdir -pbuild && mysql db"],
        ["mysql", "--", "-pnot-an-option"],
    ],
)
def test_other_uses_of_dash_p_are_kept(command: list[str]) -> None:
    assert shown_command(command) == command
