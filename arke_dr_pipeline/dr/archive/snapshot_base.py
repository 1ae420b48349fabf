"""Which snapshot a build extends: our own newest, never one another writer left in the pointer.

The Arke API's builder reads a chunked snapshot as empty and writes back what it saw, so the
pointer's snapshot is a link to keep (its proof's CIDs stay in ours), not a base to trust.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...arke.models import SnapshotEntry, SnapshotHeader
from ...arke.snapshot_codec import (
    EncodedEntry,
    decode_chunk_block,
    decode_snapshot,
    reusable_entries,
    snapshot_all_cids,
    snapshot_entries,
)
from ...ipld.cid import CIDError, check_block, cid_str, parse_cid, split_cid
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError
from ..plumbing.config import Settings
from .pointer import ArchiveError, require_pointer


def load_snapshot(client: KuboClient, cid: str) -> tuple[SnapshotHeader, dict[str, SnapshotEntry]]:
    header = decode_snapshot(client.block_get(cid), f"snapshot {cid}", split_cid(parse_cid(cid))[1])
    entries = {
        e.pi: e
        for e in snapshot_entries(header, client.block_get)
    }
    return header, entries


def previous_entries(client: KuboClient, cid: str, header: SnapshotHeader,
                      ) -> dict[str, SnapshotEntry | EncodedEntry]:
    """The previous snapshot's entries as an incremental build needs them.

    Its chunks are read pipelined and hashed against their CIDs, and an entry
    in the plain form this project writes is kept as its bytes (its PI and
    version read from them): decoding 300,000 entries and formatting their
    CIDs again took 4.5 s of a 6 s incremental build at 10x. The build reads
    them in a second thread while it walks the new events.
    """
    if header.entries is not None:
        return {e.pi: e for e in header.entries}
    found: dict[str, SnapshotEntry | EncodedEntry] = {}
    for i, (chunk, data) in enumerate(client.get_blocks(header.chunks or [])):
        name = f"snapshot chunk {i} ({cid_str(chunk)})"
        try:
            check_block(chunk, data)
        except CIDError as exc:
            raise ArchiveError(f"{name} of snapshot {cid}: {exc}") from None
        kept = reusable_entries(data)
        found.update(kept if kept is not None else ((e.pi, e) for e in decode_chunk_block(data, name)))
    return found


@dataclass
class Base:
    """What a build starts from. `cid`/`header`: the snapshot whose entries it
    extends (ours, from our record); `proven`: the CIDs that snapshot's
    upstream proof counted (None: it has none, so every history is walked);
    `link`: the snapshot the new one names as `prev_snapshot`, the one the
    index pointer named, and `linked` its proof's CIDs, kept in ours so the
    API's next consistency check finds nothing deleted."""
    cid: str | None = None
    header: SnapshotHeader | None = None
    proven: set[str] | None = None
    link: str | None = None
    linked: set[str] | None = None
    refused: str | None = None
    recorded: dict | None = None


def snapshot_block(client: KuboClient, cid: str) -> tuple[SnapshotHeader, bytes]:
    data = client.block_get(cid)
    return decode_snapshot(data, f"snapshot {cid}", split_cid(parse_cid(cid))[1]), data


def _all_cids(cid: str, data: bytes) -> set[str] | None:
    return snapshot_all_cids(data, split_cid(parse_cid(cid))[1])


def entity_count(header: SnapshotHeader) -> int:
    return len(header.entries) if header.entries is not None else header.total_count


def choose_base(client: KuboClient, named: str | None, record: dict | None, anomalies: list[str]) -> Base:
    """Entries come from our own newest snapshot (our record) and the chain
    since, never from a snapshot another writer put in the pointer: the Arke
    API's builder reads a chunked snapshot as empty and writes what it saw,
    and its incremental entries can name an older event than their version.
    With no record of ours the whole chain is walked. A pointer's snapshot
    that names fewer entities than the one it extends, or than ours, is
    reported: the API serves it to `/snapshot/latest` until we publish."""
    recorded = record.get("snapshot_cid") if record else None
    if not (isinstance(recorded, str) and _on_node(client, recorded)):
        recorded = None
    base = Base(link=named or recorded, recorded=record if recorded else None)
    if named and named != recorded:
        header, data = snapshot_block(client, named)
        base.linked = _all_cids(named, data)
        count = entity_count(header)
        if recorded and isinstance(record.get("total_count"), int) and record["total_count"] > count:
            base.refused = f"names {count} entities, our newest snapshot {recorded} names {record['total_count']}"
        elif header.prev_snapshot is not None:
            try:
                before = entity_count(snapshot_block(client, cid_str(header.prev_snapshot))[0])
            except (KuboError, ValueError):
                before = 0
            if before > count:
                base.refused = f"names {count} entities, the snapshot it extends names {before}"
        if base.refused:
            anomalies.append(f"the index pointer's snapshot {named} (seq {header.seq}) {base.refused}: "
                             "not taken as a base; built from the chain and our own record")
        base.header = header  # for its seq only, unless ours is there
    if recorded:
        base.cid = recorded
        base.header, data = snapshot_block(client, recorded)
        base.proven = _all_cids(recorded, data)
        if base.link == recorded:
            base.linked = base.proven
    elif base.header is not None:
        anomalies.append(f"no record of ours names a snapshot on this node ({record and record.get('snapshot_cid')}):"
                         " the whole chain is walked")
    return base


def unreadable_by_the_api(client: KuboClient, settings: Settings) -> bool:
    named = require_pointer(client, settings.index_pointer_path).latest_snapshot_cid
    if not named:
        return False
    try:
        return snapshot_block(client, named)[0].entries is None
    except (KuboError, ValueError):
        return False


def _on_node(client: KuboClient, cid: str) -> bool:
    try:
        client.block_stat(cid)
        return True
    except (KuboError, ValueError):
        return False
