"""Inventory, pinned set and CAR: the backup of one snapshot.

Kubo's `dag/export` cannot serve this archive: its selector traversal keeps
per-level state, so the event chain (as deep as it is long) makes it grow
quadratically (2.2 GB at 8,000 events). The DAG is listed instead with
`refs -r -u` (depth-first, constant per level) and its blocks read
pipelined, each hashed against its CID and checked by `DagCheck` as it
streams. The CAR is written under a temporary name; the sidecar is written
after it verifies, and the rename to the final name comes last.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import __version__
from ..arke.snapshot_codec import decode_snapshot
from ..ipld.car import car_header, car_section
from ..ipld.cid import CIDError, check_block, cid_str, parse_cid, split_cid, CODEC_NAMES
from ..kubo.client import KuboClient
from .config import Settings
from .dagcheck import BackupInvalid, DagCheck
from .files import atomic_write, atomic_write_json
from .pointer import ArchiveError, require_pointer
from .progress import log, progress


def latest_snapshot(client: KuboClient, settings: Settings) -> str:
    cid = require_pointer(client, settings.index_pointer_path).latest_snapshot_cid
    if not cid:
        raise ArchiveError("the index pointer names no snapshot yet: run build-snapshot first")
    return cid


def dag_blocks(client: KuboClient, root: str) -> Iterator[tuple[bytes, bytes]]:
    """Every block reachable from `root`, depth-first, each hashed against its CID."""

    def cids() -> Iterator[str]:
        yield root
        yield from client.refs(root, recursive=True, unique=True)

    for text, data in client.get_blocks(cids()):
        cid = parse_cid(text)
        try:
            check_block(cid, data)
        except CIDError as exc:
            raise BackupInvalid(cid, f"the node's block is corrupt: {exc}") from None
        yield cid, data


def _checked_stream(client: KuboClient, root: str, check: DagCheck,
                    desc: str) -> Iterator[tuple[bytes, bytes, str]]:
    bar = progress(desc)
    try:
        for cid, data in dag_blocks(client, root):
            yield cid, data, check.add(cid, data)
            bar.update()
    finally:
        bar.close()


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
    fingerprint: str
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


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


def fingerprint(cids: list[str]) -> str:
    h = hashlib.sha256()
    for c in cids:
        h.update(c.encode() + b"\n")
    return h.hexdigest()


def build_inventory(client: KuboClient, settings: Settings, snapshot_cid: str | None = None) -> InventoryResult:
    """Every CID reachable from the snapshot, by role and codec, as a sorted file."""
    started = time.monotonic()
    snapshot_cid = snapshot_cid or latest_snapshot(client, settings)
    seq = decode_snapshot(client.block_get(snapshot_cid)).seq
    rows: list[str] = []
    check = DagCheck([parse_cid(snapshot_cid)])
    for cid, data, role in _checked_stream(client, snapshot_cid, check, "inventory"):
        rows.append(f"{cid_str(cid)}\t{role}\t{CODEC_NAMES[split_cid(cid)[1]]}\t{len(data)}")
    report = check.finish(parse_cid(snapshot_cid))
    rows.sort()
    path = inventory_path(settings, seq)
    atomic_write(path, ("\n".join(rows) + "\n").encode())
    cids = [r.split("\t", 1)[0] for r in rows]
    prev = _previous_inventory(settings, seq)
    added, removed = _diff(prev, cids)
    return InventoryResult(
        snapshot_cid, seq, str(path), len(rows), report["blocks_by_role"], report["bytes_by_role"],
        report["blocks_by_codec"], report["entity_count"], report["event_count"], added, removed,
        str(prev) if prev else None, fingerprint(cids), time.monotonic() - started,
    )


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


def pin_set(client: KuboClient, snapshot_cid: str, inventory: str | os.PathLike) -> dict:
    """One recursive pin of the snapshot root, and every inventory CID present locally."""
    started = time.monotonic()
    client.pin_add(snapshot_cid, recursive=True)
    wanted = set(read_inventory(inventory))
    present = {snapshot_cid}
    for ref in client.refs(snapshot_cid, recursive=True, unique=True, offline=True):
        present.add(ref)
    missing = wanted - present
    if missing:
        raise BackupInvalid(sorted(missing)[0], f"in the inventory but not on the node ({len(missing)} in all)")
    pins = client.pin_ls(snapshot_cid)
    if pins.get(snapshot_cid) != "recursive":
        raise ArchiveError(f"{snapshot_cid} is not pinned recursively after pin/add")
    return {"snapshot_cid": snapshot_cid, "pinned": 1, "present": len(wanted),
            "seconds": time.monotonic() - started}


@dataclass
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

    def to_dict(self) -> dict:
        return asdict(self)


def export_car(client: KuboClient, settings: Settings, snapshot_cid: str | None = None,
               *, inventory: str | os.PathLike | None = None) -> ExportResult:
    started = time.monotonic()
    snapshot_cid = snapshot_cid or latest_snapshot(client, settings)
    root = parse_cid(snapshot_cid)
    seq = decode_snapshot(client.block_get(snapshot_cid)).seq
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = f"arke-{seq}-{stamp}"
    settings.backups_dir.mkdir(parents=True, exist_ok=True)
    final = settings.backups_dir / f"{name}.car"
    tmp = settings.backups_dir / f".{name}.car.partial"
    sha = hashlib.sha256()
    size = 0
    cids: list[str] = []
    check = DagCheck([root])
    try:
        with open(tmp, "wb", buffering=1 << 20) as out:
            head = car_header([root])
            out.write(head)
            sha.update(head)
            size += len(head)
            for cid, data, _role in _checked_stream(client, snapshot_cid, check, f"exporting {name}.car"):
                section = car_section(cid, data)
                out.write(section)
                sha.update(section)
                size += len(section)
                cids.append(cid_str(cid))
            out.flush()
            os.fsync(out.fileno())
        report = check.finish(root)
        if inventory is not None:
            expected = read_inventory(inventory)
            cids.sort()
            if cids != expected:
                raise BackupInvalid(root, f"the CAR holds {len(cids)} blocks, not the inventory's "
                                          f"{len(expected)} (or not the same ones)")
        sidecar = {
            "snapshot_cid": snapshot_cid, "seq": seq, "timestamp": stamp, "file": final.name,
            "size": size, "sha256": sha.hexdigest(), "block_count": report["block_count"],
            "blocks_by_role": report["blocks_by_role"], "bytes_by_role": report["bytes_by_role"],
            "blocks_by_codec": report["blocks_by_codec"], "entity_count": report["entity_count"],
            "event_count": report["event_count"], "event_cid": report["event_cid"],
            "inventory": os.path.basename(inventory) if inventory else None,
            "tool": f"arke-dr-pipeline {__version__}",
        }
        atomic_write_json(settings.backups_dir / f"{name}.json", sidecar)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    seconds = time.monotonic() - started
    log(f"exported {final} ({size / 1e6:.1f} MB, {report['block_count']} blocks) in {seconds:.1f}s")
    return ExportResult(str(final), str(settings.backups_dir / f"{name}.json"), snapshot_cid, seq,
                        size, sha.hexdigest(), report["block_count"], report["entity_count"],
                        report["event_count"], seconds, sidecar)
