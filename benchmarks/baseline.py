"""The seed's algorithms, re-implemented faithfully, to measure against.

Snapshot: for every event in turn, a `dag/get` of the event, a `files/read`
of the entity's tip, a `dag/get` of the manifest; the walk follows `prev`.
Restore: one `files/mkdir` and one `files/write` per entity.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable

from arke_dr_pipeline.arke.models import tip_path
from arke_dr_pipeline.ipld.cid import cid_str
from arke_dr_pipeline.kubo.client import KuboClient


def seed_snapshot(client: KuboClient, head: str, index_root: str) -> dict[str, dict]:
    entries: dict[str, dict] = {}
    cur = head
    while cur:
        event = json.loads(client.dag_get(cur))
        pi = event["pi"]
        try:
            tip = client.files_read(tip_path(pi, index_root)).decode().strip()
        except Exception:
            tip = event["tip_cid"]["/"]
        manifest = json.loads(client.dag_get(event["tip_cid"]["/"]))
        if pi not in entries:
            entries[pi] = {"pi": pi, "ver": manifest["ver"], "tip_cid": tip, "ts": event["ts"],
                           "chain_cid": cur}
        prev = event.get("prev")
        cur = prev["/"] if prev else None
    return entries


def seed_restore_tips(client: KuboClient, tips: Iterable[tuple[str, bytes]], index_root: str,
                      budget_s: float | None = None) -> tuple[int, float]:
    """(entities written, seconds). With a budget, stops when it runs out: on a
    HAMT-sharded MFS directory each write gets slower as the directory grows,
    and 30,000 entities took more than 30 minutes here."""
    started = time.monotonic()
    done = 0
    for pi, tip_cid in tips:
        path = tip_path(pi, index_root)
        client.files_mkdir(path.rsplit("/", 1)[0], parents=True)
        client.files_write(path, cid_str(tip_cid).encode())
        done += 1
        if budget_s is not None and time.monotonic() - started > budget_s:
            break
    return done, time.monotonic() - started
