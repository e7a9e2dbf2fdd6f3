"""The retention sweeper: deletes what is past its expiry, in batches that never block ingest.

Items with a blob (bundles) go first, a batch at a time: the blobs, then their rows, so a
sweep cut short leaves a row to find again, never an orphaned blob past its period. The rest
go in batches of one ``DELETE`` each (by the expiry index; by row address on PostgreSQL), each its own
short transaction; ingest goes on between batches. On SQLite, whose one writer holds ingest
off while a batch runs, a batch is 5,000 rows; on PostgreSQL, where a delete locks only its
own rows, 50,000. Several collector processes may sweep at once: a row deleted by another
is simply not counted twice.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter

from airlock.collector.service import Collector


def sweep(
    collector: Collector, *, batch: int | None = None, now: float | None = None
) -> dict[str, int]:
    """Delete every item whose expiry has passed; returns how many went, by kind.

    ``batch``: rows a statement deletes (default: the database's, 5,000 on SQLite, 50,000 on
    PostgreSQL)."""
    moment = collector.clock() if now is None else now
    batch = batch or collector.db.sweep_batch
    removed: Counter[str] = Counter()
    while found := collector.db.expired_blobs(moment, batch):  # bundles: the blob first
        for _, blob in found:
            collector.blobs.delete(blob)
        removed.update(collector.db.delete_ids(item for item, _ in found))
    while kinds := collector.db.delete_expired(moment, batch):  # the rest: one statement a batch
        removed.update(kinds)
        if len(kinds) < batch:
            break
    return dict(removed)


def sweep_every(
    collector: Collector, seconds: float, stopping: threading.Event
) -> threading.Thread:
    """Sweep now and then every ``seconds`` until ``stopping`` is set, in a daemon thread."""

    def loop() -> None:
        while True:
            try:
                sweep(collector)
            except Exception as error:  # a failed sweep is tried again next time
                print(
                    f"airlock serve: WARNING: the retention sweep failed ({error}); trying again in {seconds:g} s",
                    file=sys.stderr,
                    flush=True,
                )
            if stopping.wait(seconds):
                return

    thread = threading.Thread(target=loop, name="retention-sweep", daemon=True)
    thread.start()
    return thread
