"""Reading UnixFS directories, plain and HAMT-sharded, from their blocks.

Kubo shards a directory past a size threshold into a HAMT: fanout 256,
names hashed with murmur3-x64-64, each level taking one byte of the hash,
link names the byte in two hex digits (a sub-shard) or those digits and
the entry's name. Knowing that, a few names are found by fetching only the
shards on their way, not the whole directory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import mmh3

from ..errors import ArkeDrError
from .cid import DAG_PB, read_uvarint, split_cid
from .dagpb import decode_dag_pb

UNIXFS_RAW, UNIXFS_DIR, UNIXFS_FILE, UNIXFS_HAMT = 0, 1, 2, 5
HAMT_FANOUT = 256


class UnixfsError(ArkeDrError, ValueError):
    pass


def unixfs_fields(data: bytes | None) -> tuple[int, bytes, int]:
    """(Type, Data, Fanout) of a UnixFS protobuf; other fields are skipped."""
    typ, payload, fanout, pos = -1, b"", 0, 0
    data = data or b""
    while pos < len(data):
        key, pos = read_uvarint(data, pos)
        value, pos = read_uvarint(data, pos)
        if key & 7 == 0:
            if key >> 3 == 1:
                typ = value
            elif key >> 3 == 6:
                fanout = value
        elif key & 7 == 2:
            if key >> 3 == 2:
                payload = data[pos : pos + value]
            pos += value
        else:
            break
    return typ, payload, fanout


def hamt_slot(name: str, depth: int) -> str:
    """The two-hex-digit link prefix of `name` at `depth` of a fanout-256 HAMT."""
    if depth >= 8:
        raise UnixfsError(f"HAMT deeper than its 64-bit hash for {name!r}")
    return f"{mmh3.hash64(name.encode(), 0, signed=False)[0].to_bytes(8, 'big')[depth]:02X}"


class Directory:
    """One decoded directory block: a plain directory or one HAMT shard."""

    def __init__(self, data: bytes):
        links, pb_data = decode_dag_pb(data)
        typ, _, fanout = unixfs_fields(pb_data)
        if typ not in (UNIXFS_DIR, UNIXFS_HAMT):
            raise UnixfsError("not a directory")
        if typ == UNIXFS_HAMT and fanout != HAMT_FANOUT:
            raise UnixfsError(f"HAMT fanout {fanout}, only {HAMT_FANOUT} is read here")
        self.hamt = typ == UNIXFS_HAMT
        self.links = {name[:2] if self.hamt else name: (name, cid) for cid, name in links}

    def step(self, name: str, depth: int) -> tuple[bytes | None, bool]:
        """(child CID or None when absent, whether the child is a deeper shard of this directory)."""
        if not self.hamt:
            hit = self.links.get(name)
            return (hit[1] if hit else None), False
        hit = self.links.get(hamt_slot(name, depth))
        if hit is None:
            return None, False
        link_name, cid = hit
        if len(link_name) == 2:
            return cid, True
        return (cid if link_name[2:] == name else None), False


def resolve(root: bytes, paths: Iterable[str],
            get_blocks: Callable[[list[bytes]], Iterator[tuple[bytes, bytes]]]) -> dict[str, bytes | None]:
    """{path: CID or None} for `paths` relative to directory `root`.

    Level by level: every directory block needed next is fetched in one
    `get_blocks` batch, and each is fetched once however many paths cross it.
    """
    dirs: dict[bytes, Directory] = {}
    state = {p: (root, p.split("/"), 0, 0) for p in paths}
    found: dict[str, bytes | None] = {}
    while state:
        need = list(dict.fromkeys(cid for cid, *_ in state.values() if cid not in dirs))
        for cid, data in get_blocks(need):
            if split_cid(cid)[1] != DAG_PB:
                raise UnixfsError("a path crosses a block that is not a directory")
            dirs[cid] = Directory(data)
        nxt = {}
        for path, (cid, parts, i, depth) in state.items():
            child, deeper = dirs[cid].step(parts[i], depth)
            if child is None:
                found[path] = None
            elif deeper:
                nxt[path] = (child, parts, i, depth + 1)
            elif i + 1 == len(parts):
                found[path] = child
            else:
                nxt[path] = (child, parts, i + 1, 0)
        state = nxt
    return found
