"""Hostile-input skipping: a candidate repeated with a fixed period is judged once.

A line of one rejected look-alike repeated millions of times would otherwise be judged once per
copy. When a candidate repeats the one before (which gave no hit) and the text from that one on
is periodic, every later copy well inside the periodic stretch is the same match with the same
surroundings (the byte before, the host after, the name before it) and gives no hit either, so
the scan jumps over them; the copies near the stretch's end are scanned as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

PERIODIC_MARGIN = 512
"""Bytes at the end of a periodic stretch always scanned (a candidate's surroundings)."""


@dataclass(frozen=True, slots=True)
class Span:
    """A candidate's span in the window."""

    first: int
    last: int


def past_repeats(window: bytes, previous: Span, current: Span, position: int) -> int:
    """Where to scan on from, when ``current`` may repeat ``previous`` (which gave no hit).

    Args:
        window: The text scanned.
        previous: The candidate before, which gave no hit.
        current: The candidate just looked at.
        position: Where the scan would go on otherwise.

    Returns:
        ``position``, or past the copies well inside the periodic stretch.
    """
    before, before_end = previous.first, previous.last
    first, last = current.first, current.last
    period = first - before
    if (
        period <= 0
        or last - first != before_end - before
        or window[before:before_end] != window[first:last]
    ):
        return position
    # How far the text keeps the period: double, then halve back (C comparisons).
    reach = max(last - first, 1)
    while first + reach < len(window) and (
        window[first : first + 2 * reach] == window[before : before + 2 * reach]
    ):
        reach *= 2
    low, high = 0, reach
    while low < high:
        middle = (low + high + 1) // 2
        if window[first : first + middle] == window[before : before + middle]:
            low = middle
        else:
            high = middle - 1
    periodic_end = first + low  # text[before:periodic_end] has the period
    copies = (periodic_end - PERIODIC_MARGIN - last) // period
    return position + copies * period if copies > 0 else position
