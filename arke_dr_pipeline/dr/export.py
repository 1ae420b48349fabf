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
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cbrrr

from .. import __version__
from ..arke.models import CHUNK_SCHEMA, SNAPSHOT_V1, SNAPSHOT_V2
from ..arke.snapshot_codec import decode_snapshot
from ..ipld.car import car_header, car_section
from ..ipld.cid import CODEC_NAMES, DAG_JSON, IDENTITY, CIDError, check_block, cid_str, parse_cid, split_cid
from ..ipld.links import block_links, dag_json_links
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


def _expand_snapshot(cid: bytes, data: bytes) -> tuple[bool, list[bytes], list[bytes], str | None]:
    """(is a snapshot block, links to snapshot blocks, all its links, the event head it names)."""
    value, links = dag_json_links(data) if split_cid(cid)[1] == DAG_JSON else (None, [])
    schema = value.get("schema") if isinstance(value, dict) else None
    if schema not in (SNAPSHOT_V1, SNAPSHOT_V2, CHUNK_SCHEMA):
        return False, [], [], None
    inner = [c.cid_bytes for c in value.get("chunks") or [] if isinstance(c, cbrrr.CID)]
    if isinstance(value.get("prev_snapshot"), cbrrr.CID):
        inner.append(value["prev_snapshot"].cid_bytes)
    head = value.get("event_cid")
    return True, inner, links, head if isinstance(head, str) else None


def dag_blocks(client: KuboClient, root: str) -> Iterator[tuple[bytes, bytes]]:
    """Every block reachable from the snapshot `root`, once, each hashed against its CID.

    Three passes, because of two walls in Kubo. Snapshot blocks are wide
    (thousands of links), and `refs` is quadratic in a node's link count, so
    they are read and expanded here. The event chain is deep, and
    `dag/export` is quadratic in depth, so the chain and everything below it
    comes from one `refs -r -u` of the event head, whose nodes are narrow.
    Whatever is still unseen (an archive where some tip is no event's tip)
    is walked here level by level.
    """
    seen: set[bytes] = set()
    later: list[bytes] = []
    heads: list[str] = []

    def fetch(cids) -> Iterator[tuple[bytes, bytes]]:
        for text, data in client.get_blocks(cids):
            cid = parse_cid(text)
            if cid in seen:
                continue
            try:
                check_block(cid, data)
            except CIDError as exc:
                raise BackupInvalid(cid, f"the node's block is corrupt: {exc}") from None
            seen.add(cid)
            yield cid, data

    frontier = [parse_cid(root)]
    while frontier:
        batch = [cid_str(c) for c in dict.fromkeys(frontier) if c not in seen]
        frontier = []
        for cid, data in fetch(batch):
            yield cid, data
            is_snapshot, inner, links, head = _expand_snapshot(cid, data)
            if not is_snapshot:
                later.extend(block_links(split_cid(cid)[1], data))
                continue
            if head:
                heads.append(head)
            frontier.extend(inner)
            later.extend(links)
    for head in dict.fromkeys(heads):
        if parse_cid(head) in seen:
            continue

        def chain(head=head) -> Iterator[str]:
            yield head
            for ref in client.refs(head, recursive=True, unique=True):
                if parse_cid(ref) not in seen:
                    yield ref

        for cid, data in fetch(chain()):
            yield cid, data
    frontier = [c for c in later if c not in seen]
    while frontier:
        batch = [cid_str(c) for c in dict.fromkeys(frontier) if c not in seen and split_cid(c)[2] != IDENTITY]
        frontier = []
        for cid, data in fetch(batch):
            yield cid, data
            frontier.extend(c for c in block_links(split_cid(cid)[1], data) if c not in seen)


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


def pin_set(client: KuboClient, snapshot_cid: str, inventory: str | os.PathLike) -> dict:
    """One recursive pin of the snapshot root, made offline.

    An offline recursive pin walks every block below the root and fails on
    the first one that is not local, without asking the network: its
    success is the proof that every inventory CID is present.
    """
    started = time.monotonic()
    client.pin_add(snapshot_cid, recursive=True)
    pins = client.pin_ls(snapshot_cid)
    if pins.get(snapshot_cid) != "recursive":
        raise ArchiveError(f"{snapshot_cid} is not pinned recursively after pin/add")
    count = sum(1 for _ in open(inventory))
    return {"snapshot_cid": snapshot_cid, "pinned": 1, "present": count,
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
