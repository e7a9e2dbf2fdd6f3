"""The sandbox of ``airlock run``: bubblewrap, the path rules and the scrubbed environment.

:mod:`~airlock.sandbox.paths` says what the command sees of the file system,
:mod:`~airlock.sandbox.environment` which variables it gets, :mod:`~airlock.sandbox.launcher`
builds the sandbox and hands back the socket its only way out listens on.
"""

from airlock.sandbox.environment import (
    CREDENTIAL_VARIABLES,
    ScrubbedEnvironment,
    credential_reason,
    parse_env_options,
    scrub,
)
from airlock.sandbox.launcher import Sandbox, Spec, check, launch
from airlock.sandbox.paths import (
    AGENT_STATE,
    CREDENTIAL_PATHS,
    PROTECTED_IN_CONFIG_DIR,
    PROTECTED_IN_WORKSPACE,
    Kind,
    Mount,
    plan,
)

__all__ = [
    "AGENT_STATE",
    "CREDENTIAL_PATHS",
    "CREDENTIAL_VARIABLES",
    "PROTECTED_IN_CONFIG_DIR",
    "PROTECTED_IN_WORKSPACE",
    "Kind",
    "Mount",
    "Sandbox",
    "ScrubbedEnvironment",
    "Spec",
    "check",
    "credential_reason",
    "launch",
    "parse_env_options",
    "plan",
    "scrub",
]
