"""Pinned set and CAR: the backup of one snapshot.

The CAR is written under a temporary name; the sidecar is written after it
verifies, and the rename to the final name comes last.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path

from .. import __version__
from ..arke.snapshot_codec import decode_snapshot
from ..ipld.car import CarError, CarReader, CarWriter
from ..ipld.cid import cid_str, parse_cid, split_cid
from ..kubo.client import KuboClient
from .config import Settings
from .dagcheck import BackupInvalid, DagCheck
from .files import atomic_write_json
from .inventory import inventory_cids
from .paths import staging_car_path
from .pointer import current_snapshot
from .progress import log
from .report import BackupReport
from .traverse import checked_stream
from .verify import verify_car


@dataclass(kw_only=True)
class ExportResult:
    car_path: str
    sidecar_path: str
    snapshot_cid: str
    seq: int
    size: int
    sha256: str
    block_count: int
    entity_count: int
    event_count: int
    seconds: float
    sidecar: dict


def export_car(client: KuboClient, settings: Settings, snapshot_cid: str | None = None,
               *, inventory: str | os.PathLike | None = None) -> ExportResult:
    """The CAR of one snapshot, verified, with its sidecar; the rename comes last.

    With an inventory, the CAR its pass staged is verified again offline (a
    second read of the node would double the export's time) and renamed into
    place; without one, or when the staged CAR is missing or not that
    inventory's, the blocks are read from the node.
    """
    started = time.monotonic()
    snapshot_cid = snapshot_cid or current_snapshot(client, settings)
    root = parse_cid(snapshot_cid)
    seq = decode_snapshot(client.block_get(snapshot_cid), f"snapshot {snapshot_cid}",
                          split_cid(parse_cid(snapshot_cid))[1]).seq
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"arke-{seq}-{stamp}"
    final = settings.backups_dir / f"{name}.car"
    staged = staging_car_path(settings.backups_dir, seq)
    source = staged if inventory is not None and _staged_for(staged, snapshot_cid) else None
    if source is not None:
        report, cids = _verify_staged(staged, snapshot_cid)
        if not _same(cids, inventory):
            log(f"{staged.name} is not this inventory's CAR; reading the blocks from the node")
            staged.unlink()
            source = None
    if source is None:
        source = settings.backups_dir / f".{name}.car"
        report, cids = _car_from_node(client, snapshot_cid, source, name)
        if inventory is not None and not _same(cids, inventory):
            source.unlink()
            raise BackupInvalid(root, f"the CAR holds {len(cids)} blocks, not the inventory's "
                                      "(or not the same ones)")
    sidecar = report.to_sidecar(timestamp=stamp, file=final.name,
                                inventory=os.path.basename(inventory) if inventory else None,
                                tool=f"arke-dr-pipeline {__version__}")
    try:
        atomic_write_json(settings.backups_dir / f"{name}.json", sidecar)
        os.replace(source, final)
    finally:
        source.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    log(f"exported {final} ({report.size / 1e6:.1f} MB, {report.block_count} blocks) in {seconds:.1f}s")
    return ExportResult(car_path=str(final), sidecar_path=str(settings.backups_dir / f"{name}.json"),
                        snapshot_cid=snapshot_cid, seq=seq, size=report.size, sha256=report.sha256,
                        block_count=report.block_count, entity_count=report.entity_count,
                        event_count=report.event_count, seconds=seconds, sidecar=sidecar)


def _same(cids: list[str], inventory: str | os.PathLike) -> bool:
    """The CAR's sorted CIDs are the inventory's, read from its file as compared."""
    return all(a == b for a, b in zip_longest(cids, inventory_cids(inventory)))


def _staged_for(staged: Path, snapshot_cid: str) -> bool:
    """A staged CAR of this snapshot (an older one of the same seq is not)."""
    try:
        with open(staged, "rb") as fh:
            return [cid_str(r) for r in CarReader(fh).roots] == [snapshot_cid]
    except (FileNotFoundError, CarError):
        return False


def _verify_staged(staged: Path, snapshot_cid: str) -> tuple[BackupReport, list[str]]:
    report, check = verify_car(staged, snapshot_cid=snapshot_cid, use_sidecar=False)
    return report, sorted(cid_str(c) for c in check.seen)


def _car_from_node(client: KuboClient, snapshot_cid: str, path: Path, name: str) -> tuple[BackupReport, list[str]]:
    root = parse_cid(snapshot_cid)
    check = DagCheck([root])
    sink = CarWriter(path, [root])
    try:
        for cid, data, _role in checked_stream(client, snapshot_cid, check, f"exporting {name}.car"):
            sink.add(cid, data)
        report = check.finish(root)
        sink.close()
    finally:
        sink.abort()
    return report.with_car(size=sink.size, sha256=sink.sha.hexdigest()), sorted(cid_str(c) for c in check.seen)
