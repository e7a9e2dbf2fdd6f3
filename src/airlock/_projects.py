"""How the reference agent names a working directory's folder under ``projects/`` in its
config dir, for the places that need it: the session store and the sandbox's rules. Standard
library only: cheap to import on a start-up path."""

from __future__ import annotations

import re

_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")


def project_name(cwd: str) -> str:
    """The ``projects/`` folder name of a working directory: non-alphanumerics become ``-``,
    one for each UTF-16 unit, as the reference agent's JavaScript counts them (a character
    past U+FFFF is two)."""
    return _NON_ALNUM.sub(lambda found: "--" if ord(found[0]) > 0xFFFF else "-", cwd)
