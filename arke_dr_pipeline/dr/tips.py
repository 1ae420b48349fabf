"""The tip tree `/arke/index/AB/CD/<PI>.tip`, read and written in a few calls.

Reading 30,000 tip files one `files/read` at a time takes minutes; the tree
is shallow, so one `dag/export` of its root brings every directory and tip
block, and the walk happens here (plain and HAMT-sharded directories).
Writing goes the same way in reverse: one `add` of the whole tree, one
`files/cp` into place.

Kubo's MFS has a wall here: after many `files/read` through a HAMT-sharded
directory (the Arke API reads tips all day), the next `files/stat`, `ls` or
`flush` touching it re-syncs every loaded entry: 15 s after 1,000 reads of a
30,000-entry directory, nearly 60 s after 3,000. Calls on the index root get
the long timeout for that reason.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..arke.models import SnapshotEntry, tip_relpath
from ..ipld.car import CarReader
from ..ipld.cid import DAG_PB, RAW, cid_str, parse_cid, read_uvarint, split_cid
from ..ipld.links import decode_dag_pb
from ..kubo.client import KuboClient
from .streams import IterReader

UNIXFS_DIR, UNIXFS_FILE, UNIXFS_RAW, UNIXFS_HAMT = 1, 2, 0, 5


def _unixfs(data: bytes | None) -> tuple[int, bytes]:
    """(Type, Data) of a UnixFS protobuf; other fields are skipped."""
    typ, payload, pos = -1, b"", 0
    data = data or b""
    while pos < len(data):
        key, pos = read_uvarint(data, pos)
        value, pos = read_uvarint(data, pos)
        if key & 7 == 0:
            if key >> 3 == 1:
                typ = value
        elif key & 7 == 2:
            if key >> 3 == 2:
                payload = data[pos : pos + value]
            pos += value
        else:
            break
    return typ, payload


def read_tips(client: KuboClient, root: str) -> dict[str, str] | None:
    """{pi: tip CID} for every `.tip` under `root`; None when there is no tree."""
    stat = client.files_stat(root, timeout=client.long_timeout)
    if stat is None:
        return None
    blocks: dict[bytes, bytes] = {}
    with client.dag_export(stat["Hash"]) as chunks:
        for block in CarReader(IterReader(chunks)):
            blocks[block.cid] = block.data
    tips: dict[str, str] = {}
    for name, cid in _walk(blocks, parse_cid(stat["Hash"])):
        if name.endswith(".tip"):
            tips[name[:-4]] = _file_text(blocks, cid).strip()
    return tips


def _walk(blocks: dict[bytes, bytes], cid: bytes) -> Iterator[tuple[str, bytes]]:
    """(file name, cid) of every file below directory `cid`."""
    links, data = decode_dag_pb(blocks[cid])
    typ, _ = _unixfs(data)
    hamt = typ == UNIXFS_HAMT
    for child, name in links:
        if hamt:
            if len(name) == 2:
                yield from _walk(blocks, child)
                continue
            name = name[2:]
        codec = split_cid(child)[1]
        if codec == DAG_PB and _unixfs(decode_dag_pb(blocks[child])[1])[0] in (UNIXFS_DIR, UNIXFS_HAMT):
            yield from _walk(blocks, child)
        else:
            yield name, child


def _file_text(blocks: dict[bytes, bytes], cid: bytes) -> str:
    codec = split_cid(cid)[1]
    if codec == RAW:
        return blocks[cid].decode()
    links, data = decode_dag_pb(blocks[cid])
    _, payload = _unixfs(data)
    return payload.decode() + "".join(_file_text(blocks, c) for c, _ in links)


def tip_files(entries: list[SnapshotEntry]) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of every tip file, sorted so parents come first."""
    for e in sorted(entries, key=lambda e: tip_relpath(e.pi)):
        yield tip_relpath(e.pi), (cid_str(e.tip_cid) + "\n").encode()


def install_tips(client: KuboClient, root: str, entries: list[SnapshotEntry]) -> str:
    """Build the whole tip tree in one `add`, swap it in with `files/cp` and `files/mv`.

    The old tree stays in place until the new one is complete, and the swap
    is two calls; a crash between them leaves the new tree under a staging
    name that the next run removes.
    """
    staging = f"{root}.restore-staging"
    tree = client.add_tree(tip_files(entries), wrap_dir="index")
    if client.files_stat(staging) is not None:
        client.files_rm(staging)
    client.files_cp(f"/ipfs/{tree}", staging)
    if client.files_stat(root, timeout=client.long_timeout) is not None:
        client.files_rm(root)
    client.files_mv(staging, root)
    return tree
