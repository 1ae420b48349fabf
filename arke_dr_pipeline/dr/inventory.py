"""The CID inventory: every block of one snapshot, by role, codec and size.

A sorted TSV (`arke-{seq}.inventory.tsv`), so two backups are compared by a
merge, and the CAR is checked against it block for block.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from ..arke.snapshot_codec import decode_snapshot
from ..ipld.car import CarWriter
from ..ipld.cid import CODEC_NAMES, cid_str, parse_cid, split_cid
from ..kubo.client import KuboClient
from .config import Settings
from .dagcheck import DagCheck
from .files import atomic_write
from .paths import staging_car_path
from .traverse import checked_stream, latest_snapshot


def _drop_stale_staging(settings: Settings) -> None:
    """Staged CARs whose export never ran: each is as big as a backup."""
    for p in settings.backups_dir.glob(".arke-*.staging.car*"):
        p.unlink(missing_ok=True)


@dataclass
class InventoryResult:
    snapshot_cid: str
    seq: int
    path: str
    block_count: int
    blocks_by_role: dict
    bytes_by_role: dict
    blocks_by_codec: dict
    entity_count: int
    event_count: int
    added: int
    removed: int
    previous: str | None
    seconds: float


def inventory_path(settings: Settings, seq: int) -> Path:
    return settings.backups_dir / f"arke-{seq}.inventory.tsv"


def _previous_inventory(settings: Settings, seq: int) -> Path | None:
    best = None
    for p in settings.backups_dir.glob("arke-*.inventory.tsv"):
        try:
            s = int(p.name.split("-")[1].split(".")[0])
        except ValueError:
            continue
        if s < seq and (best is None or s > best[0]):
            best = (s, p)
    return best[1] if best else None


def build_inventory(client: KuboClient, settings: Settings,
                    snapshot_cid: str | None = None) -> InventoryResult:
    """Every CID reachable from the snapshot, by role and codec, as a sorted file.

    The blocks read for it are also written to a staging CAR, which the
    export verifies offline and renames: the node is read once per backup.
    """
    started = time.monotonic()
    snapshot_cid = snapshot_cid or latest_snapshot(client, settings)
    seq = decode_snapshot(client.block_get(snapshot_cid)).seq
    rows: list[str] = []
    root = parse_cid(snapshot_cid)
    check = DagCheck([root])
    _drop_stale_staging(settings)
    staging = CarWriter(staging_car_path(settings.backups_dir, seq), [root])
    try:
        for cid, data, role in checked_stream(client, snapshot_cid, check, "inventory"):
            rows.append(f"{cid_str(cid)}\t{role}\t{CODEC_NAMES[split_cid(cid)[1]]}\t{len(data)}")
            staging.add(cid, data)
        report = check.finish(root)
        staging.close()
    finally:
        staging.abort()
    rows.sort()
    path = inventory_path(settings, seq)
    atomic_write(path, ("\n".join(rows) + "\n").encode())
    cids = [r.split("\t", 1)[0] for r in rows]
    prev = _previous_inventory(settings, seq)
    added, removed = _diff(prev, cids)
    return InventoryResult(
        snapshot_cid, seq, str(path), len(rows), report["blocks_by_role"], report["bytes_by_role"],
        report["blocks_by_codec"], report["entity_count"], report["event_count"], added, removed,
        str(prev) if prev else None, time.monotonic() - started,
    )


def inventory_diff(settings: Settings, seq: int) -> tuple[int, int, str | None]:
    """(added, removed, previous file) between inventory `seq` and the one before it."""
    prev = _previous_inventory(settings, seq)
    added, removed = _diff(prev, read_inventory(inventory_path(settings, seq)))
    return added, removed, str(prev) if prev else None


def _diff(prev: Path | None, cids: list[str]) -> tuple[int, int]:
    if prev is None:
        return len(cids), 0
    with open(prev) as fh:
        old = [line.split("\t", 1)[0] for line in fh if line.strip()]
    i = j = added = removed = 0
    while i < len(old) and j < len(cids):
        if old[i] == cids[j]:
            i += 1
            j += 1
        elif old[i] < cids[j]:
            removed += 1
            i += 1
        else:
            added += 1
            j += 1
    return added + len(cids) - j, removed + len(old) - i


def read_inventory(path: str | os.PathLike) -> list[str]:
    with open(path) as fh:
        return [line.split("\t", 1)[0] for line in fh if line.strip()]
