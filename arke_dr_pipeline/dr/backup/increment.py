"""The inventory of a snapshot that extends a backup: only the new blocks are read.

The base's inventory names every block the base's chain holds; seeded with
it, the walk reads the new snapshot blocks, the events after the base's
(it stops at the first known one), the new versions (their `prev` is known)
and new components, and nothing else. A snapshot that does not grow out of
the base's (an archive restored from an older backup) raises NotAnExtension:
the backup is then a full. The inventory file is the base's bytes
with the new rows put in (dr/backup/known.py `splice`), so it is complete,
as a full pass would write it, and its totals are the base sidecar's plus
the new rows': nothing of the base is parsed.
The new blocks are staged as the delta (`.arke-{seq}.staging.delta.car`,
with a `.base` file naming base and snapshot); the DAG check of the whole is the
export's offline check of the chain (dr/catalog/chains.py), which needs no node.

Order of writes: the staged delta, its marker, then the inventory file.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from ...arke.snapshot_codec import decode_snapshot
from ...ipld.car import CarWriter
from ...ipld.cid import CODEC_NAMES, cid_str, parse_cid, split_cid
from ...kubo.client import KuboClient
from ..catalog.format import INVENTORY_HEADER
from ..catalog.sidecar import read_sidecar
from ..plumbing.config import Settings
from ..plumbing.files import atomic_file, atomic_write_json
from ..plumbing.paths import staging_delta_path
from ..verify.dagcheck import BackupInvalid, DagCheck
from .delta import check_extends
from .inventory import (
    InventoryResult,
    _diff,
    _drop_stale_staging,
    _previous_inventory,
    inventory_path,
    preserve_named,
)
from .known import KnownBlocks, splice
from .loss import write_loss
from .traverse import checked_stream


def base_marker(staged: Path) -> Path:
    """Beside the staged delta, which base and snapshot it was read for (not a sidecar: it is no backup yet)."""
    return staged.with_name(staged.name + ".base")


def base_inventory(base: Path) -> Path:
    return base.parent / (read_sidecar(base) or {})["inventory"]


def build_increment(client: KuboClient, settings: Settings, snapshot_cid: str, base: Path) -> InventoryResult:
    started = time.monotonic()
    root = parse_cid(snapshot_cid)
    header = decode_snapshot(client.block_get(root), f"snapshot {snapshot_cid}", split_cid(root)[1])
    seq = header.seq
    base_rows = base_inventory(base)
    known = KnownBlocks(base_rows)  # the base's blocks, then also the new ones the walk reads
    check = DagCheck([root])
    rows: list[str] = []
    _drop_stale_staging(settings)
    staged = staging_delta_path(settings.backups_dir, seq)
    sink = CarWriter(staged, [root])
    try:
        for cid, data, role in checked_stream(client, snapshot_cid, check, "inventory (new blocks)", known=known):
            rows.append(f"{cid_str(cid)}\t{role}\t{CODEC_NAMES[split_cid(cid)[1]]}\t{len(data)}")
            sink.add(cid, data)
        # a link still pending is to no block read here, so `known` has it only from the base
        missing = next((c for c in check.pending if c not in known), None)
        if missing is not None:
            parent = check.pending[missing]
            raise BackupInvalid(missing, f"linked from {cid_str(parent) if parent else 'the root'} but neither "
                                         f"among the new blocks nor in {base_rows.name}")
        base_sidecar = read_sidecar(base) or {}
        event_count = check_extends(check, root, base_sidecar)
        lost = check.lost_report()
        sink.close()
    except BaseException:
        known.close()
        raise
    finally:
        sink.abort()
    base_index = known.base  # the base's rows, indexed once: the walk's lookups, then the splice
    del known, check
    rows.sort()
    path = inventory_path(settings, seq, snapshot_cid)
    try:
        atomic_write_json(base_marker(staged), {"base": base.name, "snapshot_cid": snapshot_cid})
        preserve_named(settings, path, lost)
        write_loss(path, lost)
        with atomic_file(path) as out:
            out.write(INVENTORY_HEADER.encode() + b"\n")
            splice(base_index, rows, out)
    except BaseException:
        staged.unlink(missing_ok=True)  # nothing staged stays behind
        base_marker(staged).unlink(missing_ok=True)
        raise
    finally:
        base_index.close()
    roles, sizes, codecs = _totals(base_sidecar, rows)
    prev = _previous_inventory(settings, seq)
    added, removed = (len(rows), 0) if prev == base_rows else _diff(prev, path)
    return InventoryResult(
        snapshot_cid=snapshot_cid, seq=seq, path=str(path),
        block_count=int(base_sidecar.get("block_count") or 0) + len(rows),
        blocks_by_role=dict(roles), bytes_by_role=dict(sizes), blocks_by_codec=dict(sorted(codecs.items())),
        entity_count=header.total_count, event_count=event_count,
        added=added, removed=removed, previous=str(prev) if prev else None,
        seconds=time.monotonic() - started, base=base.name, new_blocks=len(rows),
    )


def _totals(base_sidecar: dict, rows: list[str]) -> tuple[Counter, Counter, Counter]:
    """(blocks, bytes by role; blocks by codec) of the base's chain, which its sidecar records as
    verified, plus the new rows: the base's rows are not read again to count them."""
    roles = Counter(base_sidecar.get("blocks_by_role") or {})
    sizes = Counter(base_sidecar.get("bytes_by_role") or {})
    codecs = Counter(base_sidecar.get("blocks_by_codec") or {})
    for row in rows:
        _cid, role, codec, size = row.split("\t")
        roles[role] += 1
        sizes[role] += int(size)
        codecs[codec] += 1
    return roles, sizes, codecs


def staged_delta(settings: Settings, seq: int, snapshot_cid: str) -> tuple[Path, Path] | None:
    """(the staged delta, its base) when the inventory pass of this snapshot staged one."""
    staged = staging_delta_path(settings.backups_dir, seq)
    try:
        marker = json.loads(base_marker(staged).read_text())
    except (OSError, ValueError):
        return None
    base = settings.backups_dir / str(marker.get("base"))
    if marker.get("snapshot_cid") != snapshot_cid or not staged.is_file() or not base.is_file():
        return None
    return staged, base
