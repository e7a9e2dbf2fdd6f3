"""Pieces the format modules share: character classes and a UUID, written once.

PURE: no I/O. Short names keep a row on one readable line: ``U`` is URL-safe base64 (letters,
digits, ``-`` and ``_``), ``A`` letters and digits, ``H`` lower-case hex, ``HX`` hex of either
case, ``B64V`` a base64 character or an escaped ``/``; ``S_UUID`` is a sample template of a UUID.
"""

from __future__ import annotations

from airlock.redact.patterns import B64, ESC_SLASH, TOKEN

U = TOKEN
A = "[A-Za-z0-9]"
H = "[a-f0-9]"
HX = "[a-fA-F0-9]"
UUID = "[a-fA-F0-9]{8}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{4}-[a-fA-F0-9]{12}"
S_UUID = "{h8}-{h4}-4{h3}-a{h3}-{h12}"
B64V = B64
UE = "[A-Za-z0-9=_\\-]"
"""URL-safe base64 with its padding."""
B64U = rf"(?:[A-Za-z0-9+=_\-]|{ESC_SLASH})"
"""Either base64 alphabet, with padding."""
