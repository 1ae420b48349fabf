"""The CID inventory: every block of one snapshot, by role, codec and size.

A sorted TSV (`arke-{seq}-{snapshot CID tail}.inventory.tsv`), so two backups are compared by a
merge, and the CAR is checked against it block for block.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ...arke.snapshot_codec import decode_snapshot
from ...ipld.car import CarWriter
from ...ipld.cid import CODEC_NAMES, cid_str, parse_cid, split_cid
from ...kubo.client import KuboClient
from ..archive.pointer import current_snapshot
from ..catalog.format import INVENTORY_HEADER, inventory_line
from ..plumbing.config import Settings
from ..plumbing.files import atomic_file, atomic_write_json
from ..plumbing.paths import staging_car_path
from ..plumbing.spill import SortedLines
from ..verify.dagcheck import DagCheck
from .loss import write_loss
from .traverse import checked_stream


def _drop_stale_staging(settings: Settings) -> None:
    """CARs a killed backup was writing (staged, full or delta under its temporary
    name): each is as big as a backup, and none is listed. Under the backup
    lock no other backup is writing one."""
    for p in settings.backups_dir.glob(".arke-*"):
        name = p.name.removesuffix(".partial")
        if name.endswith((".staging.car", ".delta.car", ".delta.car.base")) or _EXPORT_TEMP.fullmatch(name):
            p.unlink(missing_ok=True)


_EXPORT_TEMP = re.compile(r"\.arke-\d+-\d{8}T\d{6}Z(-\d+)?\.car")


@dataclass(kw_only=True)
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
    base: str | None = None
    new_blocks: int | None = None


def inventory_path(settings: Settings, seq: int, snapshot_cid: str) -> Path:
    """Named by seq and snapshot: an archive restored from an older backup numbers its new snapshots
    again, and the inventory of one must never overwrite the other's, which its backups name."""
    return settings.backups_dir / f"arke-{seq}-{snapshot_cid[-8:]}.inventory.tsv"


def preserve_named(settings: Settings, path: Path, lost: list[dict]) -> None:
    """Before a pass writes `path`: a listed backup that names it, taken with a different set of
    lost blocks (dr/backup/loss.py), holds different blocks, so its inventory is copied to a name of its own
    and its sidecar updated first. Two backups of one snapshot share the name only when they hold
    the same blocks; retention and repair read which blocks a backup holds from its inventory."""
    if not path.exists():
        return
    from ..catalog.freshness import listed_backups
    from ..catalog.sidecar import sidecar_path

    new = sorted(e["cid"] for e in lost)
    for car, meta in listed_backups(settings.backups_dir):
        if meta.get("inventory") != path.name or sorted(e.get("cid") for e in meta.get("lost", [])) == new:
            continue
        own = path.with_name(f"{car.stem}.inventory.tsv")
        if not own.exists():
            tmp = own.with_name(f".{own.name}.{os.getpid()}.tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, own)
        atomic_write_json(sidecar_path(car), {**meta, "inventory": own.name})


def _previous_inventory(settings: Settings, seq: int) -> Path | None:
    """The inventory of the highest seq below `seq`; of two (an archive restored from an older
    backup), the one written last."""
    best = None
    for p in settings.backups_dir.glob("arke-*.inventory.tsv"):
        try:
            key = (int(p.name.split("-")[1].split(".")[0]), p.stat().st_mtime_ns)
        except (ValueError, OSError):
            continue
        if key[0] < seq and (best is None or key > best[0]):
            best = (key, p)
    return best[1] if best else None


def build_inventory(client: KuboClient, settings: Settings,
                    snapshot_cid: str | None = None) -> InventoryResult:
    """Every CID reachable from the snapshot, by role and codec, as a sorted file.

    The blocks read for it are also written to a staging CAR, which the
    export verifies offline and renames: the node is read once per backup.
    """
    started = time.monotonic()
    snapshot_cid = snapshot_cid or current_snapshot(client, settings)
    seq = decode_snapshot(client.block_get(snapshot_cid), f"snapshot {snapshot_cid}",
                          split_cid(parse_cid(snapshot_cid))[1]).seq
    rows = SortedLines()
    root = parse_cid(snapshot_cid)
    check = DagCheck([root])
    _drop_stale_staging(settings)
    staging = CarWriter(staging_car_path(settings.backups_dir, seq), [root])
    try:
        for cid, data, role in checked_stream(client, snapshot_cid, check, "inventory"):
            rows.add(f"{cid_str(cid)}\t{role}\t{CODEC_NAMES[split_cid(cid)[1]]}\t{len(data)}")
            staging.add(cid, data)
        report = check.finish(root)
        staging.close()
    finally:
        staging.abort()
    del check
    path = inventory_path(settings, seq, snapshot_cid)
    try:
        preserve_named(settings, path, report.lost)
        write_loss(path, report.lost)  # before the inventory: the export reads both
        with atomic_file(path) as fh:
            fh.write(INVENTORY_HEADER.encode() + b"\n")
            for row in rows:
                fh.write(row.encode() + b"\n")
    except BaseException:
        staging_car_path(settings.backups_dir, seq).unlink(missing_ok=True)  # nothing staged stays behind
        raise
    count = rows.count
    del rows
    prev = _previous_inventory(settings, seq)
    added, removed = _diff(prev, path)
    return InventoryResult(
        snapshot_cid=snapshot_cid, seq=seq, path=str(path), block_count=count,
        blocks_by_role=report.blocks_by_role, bytes_by_role=report.bytes_by_role,
        blocks_by_codec=report.blocks_by_codec, entity_count=report.entity_count,
        event_count=report.event_count, added=added, removed=removed,
        previous=str(prev) if prev else None, seconds=time.monotonic() - started,
    )


def inventory_diff(settings: Settings, seq: int, snapshot_cid: str) -> tuple[int, int, str | None]:
    """(added, removed, previous file) between the inventory of this snapshot and the one before it."""
    prev = _previous_inventory(settings, seq)
    added, removed = _diff(prev, inventory_path(settings, seq, snapshot_cid))
    return added, removed, str(prev) if prev else None


def _diff(prev: Path | None, path: Path) -> tuple[int, int]:
    """A merge of two sorted inventories, read as they are compared."""
    if prev is None:
        return sum(1 for _ in inventory_cids(path)), 0
    old, new = inventory_cids(prev), inventory_cids(path)
    a, b = next(old, None), next(new, None)
    added = removed = 0
    while a is not None or b is not None:
        if a == b:
            a, b = next(old, None), next(new, None)
        elif b is None or (a is not None and a < b):
            removed += 1
            a = next(old, None)
        else:
            added += 1
            b = next(new, None)
    return added, removed


def inventory_cids(path: str | os.PathLike) -> Iterator[str]:
    with open(path) as fh:
        for line in fh:
            if inventory_line(line, str(path)):
                yield line.split("\t", 1)[0]


def inventory_rows(fh, where: str) -> Iterator[str]:
    """The rows of an open inventory, without its header, checked (dr/catalog/format.py)."""
    for line in fh:
        if inventory_line(line, where):
            yield line.rstrip("\n")
