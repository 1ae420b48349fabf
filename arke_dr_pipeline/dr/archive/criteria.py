"""The seed's acceptance criteria for a snapshot, checked on the node.

No duplicate PI, every CID valid, under 500 bytes per entity, counts
consistent: the rules the seed's `verify-snapshot` script applied, each
reported on its own so that each Dagster check fails for its own reason.
"""

from __future__ import annotations

from collections import Counter

from ...arke.snapshot_codec import decode_snapshot, snapshot_entries
from ...ipld.cid import CIDError, cid_str, parse_cid
from ...kubo.client import KuboClient
from .pointer import ArchiveError, require_pointer

BYTES_PER_ENTITY_LIMIT = 500


def verify_snapshot(client: KuboClient, pointer_path: str, cid: str | None = None) -> dict:
    """The seed's criteria: no duplicate PI, valid CIDs, under 500 bytes per entity."""
    if cid is None:
        cid = require_pointer(client, pointer_path).latest_snapshot_cid
        if not cid:
            raise ArchiveError("the index pointer names no snapshot yet")
    root = client.block_get(cid)
    header = decode_snapshot(root, f"snapshot {cid}")
    size = len(root) - _proof_list_bytes(root)
    sizes = [0]

    def get_chunk(c: bytes) -> bytes:
        data = client.block_get(c)
        sizes[0] += len(data)
        return data

    entries = list(snapshot_entries(header, get_chunk))
    size += sizes[0]
    pis = [e.pi for e in entries]
    dupes = sorted(p for p, n in Counter(pis).items() if n > 1)
    invalid = [e.pi for e in entries if not _valid_cid(e.tip_cid) or not _valid_cid(e.chain_cid)]
    per_entity = size / len(entries) if entries else 0.0
    checks = {
        "no_duplicate_pis": not dupes,
        "valid_cids": not invalid and _valid_text(header.event_cid),
        "size_per_entity_under_500": per_entity < BYTES_PER_ENTITY_LIMIT,
        "counts_consistent": header.total_count == len(entries),
    }
    return {
        "snapshot_cid": cid, "seq": header.seq, "schema": header.schema,
        "entity_count": len(entries), "total_count": header.total_count, "bytes": size,
        "bytes_per_entity": round(per_entity, 1), "duplicate_pis": dupes[:20],
        "invalid_cids": invalid[:20], "checks": checks, "ok": all(checks.values()),
    }


def _valid_cid(raw: bytes) -> bool:
    try:
        return parse_cid(cid_str(raw)) == raw
    except CIDError:
        return False


def _valid_text(text: str) -> bool:
    try:
        parse_cid(text)
        return True
    except CIDError:
        return False


def _proof_list_bytes(root: bytes) -> int:
    """The bytes of upstream's `all_cids` list at the head of a published
    `@v2` snapshot: a copy of the archive's CID set for the API's own proof,
    not the snapshot's entries, which is what the seed's criterion measures."""
    head = b'{"all_cids":['
    if not root.startswith(head):
        return 0
    end = root.find(b"]", len(head))
    return end if end > 0 else 0
