"""Snapshot blocks: the seed's single-block `@v1`, chunked `@v2` past 1 MiB.

Blocks are encoded here with the dag-json library's canonical encoder, so
their CIDs are known before Kubo sees them and can be checked after.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import cbrrr
import dag_json

from ..ipld.cid import DAG_JSON, cid_str, make_cid
from ..ipld.links import decode_block
from .models import CHUNK_SCHEMA, SNAPSHOT_V1, SNAPSHOT_V2, SnapshotEntry, SnapshotHeader, decode_chunk

BLOCK_LIMIT = 1 << 20
CHUNK_TARGET = 900 * 1024


def to_dag_json_value(value):
    """cbrrr.CID -> {"/": cid}: the dag-json library then encodes canonically."""
    if isinstance(value, cbrrr.CID):
        return {"/": cid_str(value.cid_bytes)}
    if isinstance(value, dict):
        return {k: to_dag_json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_dag_json_value(v) for v in value]
    return value


def encode_dag_json(value) -> tuple[bytes, bytes]:
    data = dag_json.encode(to_dag_json_value(value))
    return make_cid(DAG_JSON, data), data


def encode_snapshot(
    *, seq: int, ts: str, event_cid: str, prev_snapshot: bytes | None,
    entries: list[SnapshotEntry],
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(root CID, blocks with the root last). `entries` must be sorted by PI."""
    header = {
        "schema": SNAPSHOT_V1, "seq": seq, "ts": ts, "event_cid": event_cid,
        "total_count": len(entries),
        "prev_snapshot": cbrrr.CID(prev_snapshot) if prev_snapshot else None,
    }
    encoded = [dag_json.encode(to_dag_json_value(e.to_ipld())) for e in entries]
    if sum(len(e) + 1 for e in encoded) < BLOCK_LIMIT - 4096:
        cid, data = encode_dag_json({**header, "entries": [e.to_ipld() for e in entries]})
        if len(data) < BLOCK_LIMIT:
            return cid, [(cid, data)]
    blocks: list[tuple[bytes, bytes]] = []
    for group in _chunk_groups(entries, encoded):
        blocks.append(encode_dag_json({"schema": CHUNK_SCHEMA, "entries": [e.to_ipld() for e in group]}))
    header["schema"] = SNAPSHOT_V2
    header["chunks"] = [cbrrr.CID(c) for c, _ in blocks]
    root = encode_dag_json(header)
    return root[0], [*blocks, root]


def _chunk_groups(entries: list[SnapshotEntry], sizes: list[bytes]) -> Iterator[list[SnapshotEntry]]:
    group: list[SnapshotEntry] = []
    size = 0
    for entry, enc in zip(entries, sizes, strict=True):
        if group and size + len(enc) + 1 > CHUNK_TARGET:
            yield group
            group, size = [], 0
        group.append(entry)
        size += len(enc) + 1
    if group:
        yield group


def decode_snapshot(data: bytes, name: str = "snapshot") -> SnapshotHeader:
    return SnapshotHeader.decode(decode_block(DAG_JSON, data), name)


def snapshot_entries(header: SnapshotHeader, get_block) -> Iterable[SnapshotEntry]:
    """Entries of a v1 or v2 snapshot; `get_block(cid bytes) -> bytes` reads chunks."""
    if header.entries is not None:
        yield from header.entries
        return
    for i, chunk in enumerate(header.chunks or []):
        value = decode_block(DAG_JSON, get_block(chunk))
        yield from decode_chunk(value, f"snapshot chunk {i} ({cid_str(chunk)})")
