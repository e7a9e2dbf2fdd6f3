"""Byte counts for a person."""

from __future__ import annotations


def human_size(count: int) -> str:
    """``count`` bytes for a person, in binary units named as such: ``512 B``, ``1.5 KiB``,
    ``20.0 MiB``, ``3.2 GiB`` (a KiB is 1,024 bytes; ``--max-upload-mb`` counts MiB too)."""
    if count < 1024:
        return f"{count} B"
    size = count / 1024
    for unit in ("KiB", "MiB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
