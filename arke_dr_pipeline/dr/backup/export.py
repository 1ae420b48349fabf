"""Pinned set and CAR: the backup of one snapshot.

The CAR is written under a temporary name; the sidecar is written after it
verifies, and the rename to the final name comes last.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest
from pathlib import Path

from ... import __version__
from ...arke.snapshot_codec import decode_snapshot
from ...ipld.car import CarError, CarReader, CarWriter
from ...ipld.cid import cid_str, parse_cid, split_cid
from ...kubo.client import KuboClient
from ..archive.pointer import current_snapshot
from ..catalog.chains import ChainPolicy, added_cids, chain_of, full_due, newest_base, write_delta
from ..catalog.freshness import newest_backup, next_order, stamped_ahead
from ..catalog.hashed import remember
from ..catalog.sidecar import read_sidecar
from ..plumbing.config import Settings
from ..plumbing.files import atomic_write_json
from ..plumbing.paths import staging_car_path, staging_delta_path
from ..plumbing.progress import log
from ..plumbing.spill import SortedLines
from ..verify.car import verify_car
from ..verify.dagcheck import BackupInvalid, DagCheck
from ..verify.report import BackupReport
from .delta import NotAnExtension, verify_delta
from .increment import base_marker, staged_delta
from .inventory import inventory_cids
from .loss import read_loss, with_acknowledgments
from .translog import Log
from .traverse import checked_stream


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
    kind: str = "full"
    full_reason: str | None = None
    lost: list = field(default_factory=list)  # blocks missing from the node (backup/loss.py), acknowledged or not
    unchanged: bool = False  # the newest backup already held this snapshot: nothing was written


def export_car(client: KuboClient, settings: Settings, snapshot_cid: str | None = None,
               *, inventory: str | os.PathLike | None = None, full: bool = False,
               policy: ChainPolicy | None = None) -> ExportResult:
    """The CAR of one snapshot, verified, with its sidecar; the rename comes last.

    With an inventory, the CAR its pass staged is verified again offline (a
    second read of the node would double the export's time) and renamed into
    place; without one, or when the staged CAR is missing or not that
    inventory's, the blocks are read from the node. With an inventory, and
    unless `full` or the chain policy asks for a full (dr/catalog/chains.py), the CAR
    is a delta of the newest backup: only the blocks its inventory adds,
    verified as a delta (dr/backup/delta.py: its blocks, its links into the base).
    """
    started = time.monotonic()
    for ahead in stamped_ahead(settings.backups_dir):
        log(f"warning: {ahead} is stamped in the future: the host's clock jumped; backups are ordered "
            "as they were made, not by their stamps")
    snapshot_cid = snapshot_cid or current_snapshot(client, settings)
    root = parse_cid(snapshot_cid)
    seq = decode_snapshot(client.block_get(snapshot_cid), f"snapshot {snapshot_cid}",
                          split_cid(parse_cid(snapshot_cid))[1]).seq
    if not full and (held := _already_held(settings, snapshot_cid, seq, started)) is not None:
        return held
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"arke-{seq}-{stamp}"
    n = 1
    while (settings.backups_dir / f"{name}.car").exists():  # two backups of one seq in one second
        n += 1
        name = f"arke-{seq}-{stamp}-{n}"
    final = settings.backups_dir / f"{name}.car"
    staged = staging_car_path(settings.backups_dir, seq)
    lost = read_loss(inventory)
    gone = {parse_cid(e["cid"]) for e in lost}
    delta = None if full or inventory is None else staged_delta(settings, seq, snapshot_cid)
    if delta is not None:
        return _export_staged_delta(settings, *delta, inventory=Path(inventory), snapshot_cid=snapshot_cid,
                                    seq=seq, name=name, stamp=stamp, started=started, lost=lost)
    source = staged if inventory is not None and _staged_for(staged, snapshot_cid) else None
    if source is not None:
        report, cids = _verify_staged(staged, snapshot_cid, gone)
        if not _same(cids, inventory):
            log(f"{staged.name} is not this inventory's CAR; reading the blocks from the node")
            staged.unlink()
            source = None
    if source is None:
        source = settings.backups_dir / f".{name}.car"
        report, cids = _car_from_node(client, snapshot_cid, source, name)
        if inventory is None:
            lost = report.lost
        elif {parse_cid(e["cid"]) for e in report.lost} - gone:
            source.unlink()
            raise BackupInvalid(report.lost[0]["cid"], "missing from the node since the inventory was taken")
        if inventory is not None and not _same(cids, inventory):
            source.unlink()
            raise BackupInvalid(root, f"the CAR holds {report.block_count} blocks, not the inventory's "
                                      "(or not the same ones)")
    lost = with_acknowledgments(lost, settings.snapshots_dir)
    extra = {"inventory": os.path.basename(inventory) if inventory else None,
             "tool": f"arke-dr-pipeline {__version__}", **({"lost": lost} if lost else {})}
    base = None if full or inventory is None else newest_base(settings.backups_dir)
    reason = "asked for" if full else ("no inventory" if inventory is None else
                                       full_due(base, policy or ChainPolicy.from_env()))
    try:
        if reason is None:
            try:
                source, report, extra = _as_delta(source, report, base, Path(inventory), snapshot_cid, name, extra,
                                                  gone)
            except NotAnExtension as exc:  # an archive restored from an older backup: the full stays
                reason = f"the snapshot {exc.problem}"
        if inventory is not None:
            extra["log"] = Log(settings.backups_dir).append(Path(inventory))
        sidecar = report.to_sidecar(timestamp=stamp, order=next_order(settings.backups_dir), file=final.name,
                                    kind="full" if reason else "delta",
                                    **({"full_reason": reason} if reason else {}), **extra)
        atomic_write_json(settings.backups_dir / f"{name}.json", sidecar)
        os.replace(source, final)
        remember(final, sidecar["sha256"])
    finally:
        source.unlink(missing_ok=True)
        staged.unlink(missing_ok=True)
        unused = staging_delta_path(settings.backups_dir, seq)  # a delta staged for a backup asked to be full
        unused.unlink(missing_ok=True)
        base_marker(unused).unlink(missing_ok=True)
    seconds = time.monotonic() - started
    log(f"exported {final} ({'full: ' + reason if reason else 'delta of ' + base.name}; "
        f"{report.size / 1e6:.1f} MB, {sidecar['block_count']} blocks) in {seconds:.1f}s")
    return ExportResult(car_path=str(final), sidecar_path=str(settings.backups_dir / f"{name}.json"),
                        snapshot_cid=snapshot_cid, seq=seq, size=report.size, sha256=report.sha256,
                        block_count=sidecar["block_count"], entity_count=report.entity_count,
                        event_count=report.event_count, seconds=seconds, sidecar=sidecar,
                        kind=sidecar["kind"], full_reason=reason, lost=lost)


def _already_held(settings: Settings, snapshot_cid: str, seq: int, started: float) -> ExportResult | None:
    """The newest backup, when it already holds this snapshot: a second one would be an empty delta
    that uses up a slot of the chain. Nothing is written, and what was staged for it goes."""
    found = newest_backup(settings.backups_dir)
    if found is None or found[1].get("snapshot_cid") != snapshot_cid or found[1].get("lost"):
        return None
    car, meta = found
    for staged in (staging_car_path(settings.backups_dir, seq), staging_delta_path(settings.backups_dir, seq)):
        staged.unlink(missing_ok=True)
        base_marker(staged).unlink(missing_ok=True)
    log(f"nothing new: {car.name} already holds snapshot {snapshot_cid} (seq {seq}); no backup written")
    return ExportResult(car_path=str(car), sidecar_path=str(car.with_suffix(".json")), snapshot_cid=snapshot_cid,
                        seq=seq, size=int(meta.get("size") or 0), sha256=str(meta.get("sha256")),
                        block_count=int(meta.get("block_count") or 0), entity_count=int(meta.get("entity_count") or 0),
                        event_count=int(meta.get("event_count") or 0), seconds=time.monotonic() - started,
                        sidecar=meta, kind=str(meta.get("kind", "full")), unchanged=True)


def _export_staged_delta(settings: Settings, staged: Path, base: Path, *, inventory: Path, snapshot_cid: str,
                         seq: int, name: str, stamp: str, started: float, lost: list[dict]) -> ExportResult:
    """The delta the inventory pass staged (increment.py), verified as a delta (delta.py), renamed last."""
    final = settings.backups_dir / f"{name}.car"
    marker = base_marker(staged)
    try:
        chain = chain_of(base, hashed=False)  # hashed by this backup's inventory pass (delta_base)
        report, new = verify_delta(staged, base, inventory, snapshot_cid=snapshot_cid,
                                   lost={parse_cid(e["cid"]) for e in lost})
        lost = with_acknowledgments(lost, settings.snapshots_dir)
        base_sidecar = read_sidecar(base) or {}
        sidecar = report.to_sidecar(
            timestamp=stamp, order=next_order(settings.backups_dir), file=final.name, kind="delta",
            inventory=inventory.name,
            tool=f"arke-dr-pipeline {__version__}",
            base={"file": base.name, "seq": base_sidecar.get("seq"), "sha256": base_sidecar.get("sha256")},
            chain_length=len(chain), chain_block_count=report.block_count, delta_block_count=len(new),
            log=Log(settings.backups_dir).append(inventory, since=base_sidecar.get("inventory"), new=new),
            **({"lost": lost} if lost else {}))
        atomic_write_json(settings.backups_dir / f"{name}.json", sidecar)
        os.replace(staged, final)
        remember(final, sidecar["sha256"])
    finally:
        staged.unlink(missing_ok=True)
        marker.unlink(missing_ok=True)
    seconds = time.monotonic() - started
    log(f"exported {final} (delta of {base.name}; {report.size / 1e6:.1f} MB, "
        f"{sidecar['delta_block_count']} new blocks) in {seconds:.1f}s")
    return ExportResult(car_path=str(final), sidecar_path=str(settings.backups_dir / f"{name}.json"),
                        snapshot_cid=snapshot_cid, seq=seq, size=report.size, sha256=report.sha256,
                        block_count=report.block_count, entity_count=report.entity_count,
                        event_count=report.event_count, seconds=seconds, sidecar=sidecar, kind="delta", lost=lost)


def _as_delta(full_car: Path, report: BackupReport, base: Path, inventory: Path, snapshot_cid: str, name: str,
              extra: dict, lost: set[bytes]) -> tuple[Path, BackupReport, dict]:
    """The delta CAR beside the full one, verified as a delta of `base`; the full one is dropped."""
    base_sidecar = read_sidecar(base) or {}
    keep = added_cids(inventory, base.parent / base_sidecar["inventory"])
    delta = full_car.with_name(f".{name}.delta.car")
    try:
        size, sha, count = write_delta(full_car, delta, keep)
        chain = chain_of(base, hashed=False)  # hashed by full_due moments ago
        verify_delta(delta, base, inventory, snapshot_cid=snapshot_cid, lost=lost)
    except BaseException:
        delta.unlink(missing_ok=True)
        raise
    full_car.unlink(missing_ok=True)
    extra = {**extra, "base": {"file": base.name, "seq": base_sidecar.get("seq"),
                               "sha256": base_sidecar.get("sha256")},
             "chain_length": len(chain), "chain_block_count": report.block_count, "delta_block_count": count}
    return delta, report.with_car(size=size, sha256=sha), extra


def _same(cids: Iterable[str], inventory: str | os.PathLike) -> bool:
    """The CAR's sorted CIDs are the inventory's, both read as compared."""
    return all(a == b for a, b in zip_longest(cids, inventory_cids(inventory)))


def _sorted_texts(check: DagCheck) -> SortedLines:
    """The check's CIDs as text, to be read sorted as the inventory is (on disk past spill.py's limit)."""
    check.keep_only_blocks()
    texts = SortedLines()
    for cid in check.block_cids():
        texts.add(cid_str(cid))
    return texts


def _staged_for(staged: Path, snapshot_cid: str) -> bool:
    """A staged CAR of this snapshot (an older one of the same seq is not)."""
    try:
        with open(staged, "rb") as fh:
            return [cid_str(r) for r in CarReader(fh).roots] == [snapshot_cid]
    except (FileNotFoundError, CarError):
        return False


def _verify_staged(staged: Path, snapshot_cid: str, lost: set[bytes]) -> tuple[BackupReport, SortedLines]:
    report, check = verify_car(staged, snapshot_cid=snapshot_cid, use_sidecar=False, lost=lost)
    return report, _sorted_texts(check)


def _car_from_node(client: KuboClient, snapshot_cid: str, path: Path, name: str) -> tuple[BackupReport, SortedLines]:
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
    return report.with_car(size=sink.size, sha256=sink.sha.hexdigest()), _sorted_texts(check)
