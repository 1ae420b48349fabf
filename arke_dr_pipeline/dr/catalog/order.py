"""The order of backups: by the folder's own counter and seq, never by the wall clock first."""

from __future__ import annotations

STAMP = "%Y%m%dT%H%M%SZ"  # a backup's time in its name and sidecar, UTC


def order_key(meta: dict) -> tuple[int, int, str]:
    """Newest last, never by the wall clock first: one backup stamped a year ahead must not stay
    "newest". A sidecar's `order` counts the folder's backups as they were made (one more than
    the highest listed); sidecars from before it have none (0), and go by seq, then stamp."""
    order = meta.get("order")
    seq = meta.get("seq")
    stamp = meta.get("timestamp")
    return (order if type(order) is int else 0, seq if type(seq) is int else -1,
            stamp if isinstance(stamp, str) else "")
