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

from collections.abc import Iterable, Iterator

from ..arke.models import SnapshotEntry, tip_relpath
from ..ipld.car import CarReader
from ..ipld.cid import DAG_PB, RAW, cid_str, parse_cid, split_cid
from ..ipld.links import decode_dag_pb
from ..ipld.unixfs_dir import UNIXFS_DIR, UNIXFS_HAMT, resolve, unixfs_fields
from ..kubo.client import KuboClient
from .streams import IterReader


def read_tips(client: KuboClient, root: str, *, exact: bool = False) -> dict[str, str] | None:
    """{pi: tip CID} for every `.tip` under `root`; None when there is no tree.
    `exact`: each file's text as it is, whitespace and all."""
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
            text = _file_text(blocks, cid)
            tips[name[:-4]] = text if exact else text.strip()
    return tips


def read_tips_of(client: KuboClient, root: str, pis: Iterable[str]) -> dict[str, str] | None:
    """{pi: tip CID} for `pis` only (those with a tip file), so an incremental
    audit costs what changed, not the size of the archive.

    The paths are resolved here from the index root's blocks (plain and HAMT
    directories, see ipld/unixfs_dir.py), each directory block fetched once,
    then the tip blocks, all pipelined; MFS sees one `files/stat`. A file
    written by `files/write` is a dag-pb node over a raw leaf: two blocks.
    """
    stat = client.files_stat(root, timeout=client.long_timeout)
    if stat is None:
        return None

    files = resolve(parse_cid(stat["Hash"]), (tip_relpath(pi) for pi in pis), client.get_blocks)
    found = {path: cid for path, cid in files.items() if cid is not None}
    blocks = dict(client.get_blocks(list(found.values())))
    leaves = [c for cid in found.values() if split_cid(cid)[1] == DAG_PB for c, _ in decode_dag_pb(blocks[cid])[0]]
    blocks.update(client.get_blocks(leaves))
    return {path.rsplit("/", 1)[1][:-4]: _file_text(blocks, cid).strip() for path, cid in found.items()}


def _walk(blocks: dict[bytes, bytes], cid: bytes) -> Iterator[tuple[str, bytes]]:
    """(file name, cid) of every file below directory `cid`."""
    links, data = decode_dag_pb(blocks[cid])
    typ = unixfs_fields(data)[0]
    hamt = typ == UNIXFS_HAMT
    for child, name in links:
        if hamt:
            if len(name) == 2:
                yield from _walk(blocks, child)
                continue
            name = name[2:]
        codec = split_cid(child)[1]
        if codec == DAG_PB and unixfs_fields(decode_dag_pb(blocks[child])[1])[0] in (UNIXFS_DIR, UNIXFS_HAMT):
            yield from _walk(blocks, child)
        else:
            yield name, child


def _file_text(blocks: dict[bytes, bytes], cid: bytes) -> str:
    codec = split_cid(cid)[1]
    if codec == RAW:
        return blocks[cid].decode()
    links, data = decode_dag_pb(blocks[cid])
    payload = unixfs_fields(data)[1]
    return payload.decode() + "".join(_file_text(blocks, c) for c, _ in links)


def tip_files(entries: list[SnapshotEntry]) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of every tip file, sorted so parents come first.

    The content is the CID's text with no newline, byte for byte what the
    Arke API (and the seed) write with `files/write`."""
    for e in sorted(entries, key=lambda e: tip_relpath(e.pi)):
        yield tip_relpath(e.pi), cid_str(e.tip_cid).encode()


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
