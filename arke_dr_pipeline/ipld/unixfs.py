"""UnixFS files built offline, block for block as Kubo's `add` builds them.

Only the layout Kubo uses with CIDv1: 256 KiB chunks, raw leaves, balanced
DAG of at most 174 links per node. Used by the test-data generator to make
multi-block components without one `add` call per file; its CIDs are
checked against Kubo's in the tests.
"""

from __future__ import annotations

from collections.abc import Iterator

from .cid import DAG_PB, RAW, make_cid, uvarint

CHUNK = 256 * 1024
MAX_LINKS = 174
UNIXFS_FILE = 2


def _field(num: int, payload: bytes) -> bytes:
    return uvarint(num << 3 | 2) + uvarint(len(payload)) + payload


def _file_data(filesize: int, blocksizes: list[int]) -> bytes:
    out = bytearray(b"\x08" + uvarint(UNIXFS_FILE))
    out += b"\x18" + uvarint(filesize)
    for size in blocksizes:
        out += b"\x20" + uvarint(size)
    return bytes(out)


def _pb_node(links: list[tuple[bytes, int]], data: bytes) -> bytes:
    out = bytearray()
    for cid, tsize in links:
        out += _field(2, _field(1, cid) + b"\x12\x00" + b"\x18" + uvarint(tsize))
    out += _field(1, data)
    return bytes(out)


def file_blocks(content: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(root CID, [(cid, block bytes)...]) for `content`, leaves first."""
    blocks: list[tuple[bytes, bytes]] = []
    level: list[tuple[bytes, int, int]] = []  # (cid, tsize, filesize)
    for start in range(0, max(len(content), 1), CHUNK):
        chunk = content[start : start + CHUNK]
        cid = make_cid(RAW, chunk)
        blocks.append((cid, chunk))
        level.append((cid, len(chunk), len(chunk)))
    while len(level) > 1:
        parents = []
        for i in range(0, len(level), MAX_LINKS):
            group = level[i : i + MAX_LINKS]
            filesize = sum(g[2] for g in group)
            node = _pb_node([(g[0], g[1]) for g in group], _file_data(filesize, [g[2] for g in group]))
            cid = make_cid(DAG_PB, node)
            blocks.append((cid, node))
            parents.append((cid, len(node) + sum(g[1] for g in group), filesize))
        level = parents
    return level[0][0], blocks


def iter_chunks(content: bytes) -> Iterator[bytes]:
    for start in range(0, len(content), CHUNK):
        yield content[start : start + CHUNK]
