"""Repair: the blocks the live node lost, put back from the backups that hold them.

The common incident is a few lost blocks (a `repo gc` after the API added a
component with `pin=false`), not a lost node. The walk that a backup makes
names them (dr/backup/loss.py); the listed backups, newest first, are searched for
each (their inventories say which holds it), and every block below it that
the node lacks too comes back with it: a component's root brings its
chunks. The blocks are hashed as they are read from the CAR, imported
without touching MFS, and pinned recursively under `arke-dr repair`, so
the next `repo gc` cannot take them before the next backup covers them.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from ...ipld.car import CarReader, CarWriter
from ...ipld.cid import IDENTITY, cid_str, parse_cid, split_cid
from ...ipld.links import block_links
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..archive.pointer import current_snapshot
from ..backup.inventory import inventory_cids
from ..backup.pins import pin_cover
from ..backup.traverse import checked_stream
from ..catalog.chains import chain_of
from ..catalog.freshness import listed_backups
from ..catalog.order import order_key
from ..plumbing.config import Settings
from ..plumbing.progress import log
from ..verify.dagcheck import DagCheck
from .importer import import_file

REPAIR_PIN = "arke-dr repair"


@dataclass(kw_only=True)
class RepairResult:
    snapshot_cid: str
    lost: list[str] = field(default_factory=list)
    repaired: dict[str, str] = field(default_factory=dict)  # CID -> the backup it came from
    blocks_imported: int = 0
    still_missing: list[str] = field(default_factory=list)
    seconds: float = 0.0


def lost_on_node(client: KuboClient, snapshot_cid: str) -> list[bytes]:
    """The blocks the snapshot reaches that the node does not have: the walk a full backup makes."""
    check = DagCheck([parse_cid(snapshot_cid)])
    for _ in checked_stream(client, snapshot_cid, check, "looking for lost blocks"):
        pass
    return sorted(check.lost)


def repair(client: KuboClient, settings: Settings, snapshot_cid: str | None = None) -> RepairResult:
    started = time.monotonic()
    snapshot_cid = snapshot_cid or current_snapshot(client, settings)
    result = RepairResult(snapshot_cid=snapshot_cid)
    wanted = set(lost_on_node(client, snapshot_cid))
    result.lost = sorted(cid_str(c) for c in wanted)
    if not wanted:
        log(f"nothing to repair: the node has every block of snapshot {snapshot_cid}")
        return _done(result, started)
    for car, meta in sorted(listed_backups(settings.backups_dir), key=lambda b: order_key(b[1]), reverse=True):
        inventory = settings.backups_dir / str(meta.get("inventory"))
        if not wanted or not inventory.is_file():
            continue
        here = {c for text in inventory_cids(inventory) if (c := parse_cid(text)) in wanted}
        if here:
            count = bring_back(client, chain_of(car), here)
            result.blocks_imported += count
            result.repaired.update({cid_str(c): car.name for c in here})
            wanted -= here
            log(f"repaired {len(here)} lost block(s) from {car.name} ({count} blocks imported with them)")
    result.still_missing = sorted(cid_str(c) for c in wanted)
    return _done(result, started)


def _done(result: RepairResult, started: float) -> RepairResult:
    result.seconds = time.monotonic() - started
    return result


def bring_back(client: KuboClient, chain: list[Path], roots: set[bytes], name: str = REPAIR_PIN) -> int:
    """`roots` and every block below them in `chain` that the node lacks, imported, and pinned by a
    cover naming each (a recursive pin of a root would miss the API's plain-map links)."""
    wanted, found = set(roots), {}
    while wanted:  # a level of links a pass: components are shallow (a root, its chunks)
        level = {}
        for car in chain:
            with open(car, "rb", buffering=1 << 20) as fh:
                for block in CarReader(fh, verify=True):
                    if block.cid in wanted:
                        level[block.cid] = block.data
        found.update(level)
        wanted = {link for cid, data in level.items() for link in block_links(split_cid(cid)[1], data)
                  if link not in found and split_cid(link)[2] != IDENTITY and not _on_node(client, link)}
        wanted -= set(level)
    with tempfile.TemporaryDirectory(prefix="arke-dr-repair-") as tmp:
        path = Path(tmp) / "repair.car"
        with CarWriter(path, sorted(roots)) as out:
            for cid, data in found.items():
                out.add(cid, data)
        import_file(client, path, big=any(len(d) > 1 << 20 for d in found.values()))
    pin_cover(client, sorted(found), name=name)
    return len(found)


def _on_node(client: KuboClient, cid: bytes) -> bool:
    try:
        client.block_stat(cid_str(cid))
        return True
    except KuboError:
        return False
