"""Every error airlock raises on purpose, and the exit code each one maps to.

    AirlockError                      exit 2
    ├── SettingsError(ValueError)     a settings file that cannot be used
    ├── UsageError(ValueError)        bad arguments: an unknown session id, a bad URL, …
    ├── RefusedError(PermissionError) exit 3: the policy says no (a flow is off, a domain is denied)
    │   └── DestinationRefused        a host is or resolves to a private address no rule allows
    └── UnsafePathError(PermissionError)  a path that leads outside where airlock may touch

Each also inherits the matching builtin, so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class AirlockError(Exception):
    """Base of every error airlock raises on purpose."""

    exit_code = 2


class SettingsError(AirlockError, ValueError):
    """A settings file is unreadable or holds a value of the wrong kind."""


class UsageError(AirlockError, ValueError):
    """The user asked for something that cannot be done as asked."""


class RefusedError(AirlockError, PermissionError):
    """The policy engine, a permission rule or a safety check refused."""

    exit_code = 3


class DestinationRefused(RefusedError):
    """A host is, or resolves to, an address no fetch or connection may reach unless a rule allows it.

    Carries what the message says: ``host`` (as asked), ``address`` (the one refused, as text)
    and ``address_class`` (``"loopback"``, ``"cloud metadata"``, …).
    """

    def __init__(self, message: str, *, host: str, address: str, address_class: str) -> None:
        super().__init__(message)
        self.host = host
        self.address = address
        self.address_class = address_class


class UnsafePathError(AirlockError, PermissionError):
    """A path resolves outside the directory airlock may touch (a link, ``..``, another owner)."""
