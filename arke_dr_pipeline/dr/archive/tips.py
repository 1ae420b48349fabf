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

from ...arke.models import tip_relpath
from ...ipld.car import CarReader
from ...ipld.cid import DAG_PB, RAW, check_block, cid_str, parse_cid, split_cid
from ...ipld.dagpb import decode_dag_pb
from ...ipld.unixfs_dir import UNIXFS_DIR, UNIXFS_HAMT, UnixfsError, resolve, unixfs_fields
from ...kubo.client import KuboClient
from ..plumbing.streams import IterReader


def iter_tips(client: KuboClient, root: str, *, exact: bool = False) -> Iterator[tuple[str, str]] | None:
    """(pi, tip CID) of every `.tip` under `root`, streamed from one `dag/export`
    of the tree; None when there is no tree. `exact`: each file's text as it
    is, whitespace and all.

    Memory stays flat: a name waits only until its block goes past, and
    Kubo sends a directory before what it links to. At 10x, holding the
    tree's 600,000 blocks and then the 300,000 tips took a restore's
    read-back check past 300 MB."""
    stat = client.files_stat(root, timeout=client.long_timeout)
    if stat is None:
        return None
    return _stream_tips(client, parse_cid(stat["Hash"]), exact)


def read_tips(client: KuboClient, root: str, *, exact: bool = False) -> dict[str, str] | None:
    """{pi: tip CID}, all in memory: for the tests, and to name a difference once one is found."""
    tips = iter_tips(client, root, exact=exact)
    return None if tips is None else dict(tips)


def _stream_tips(client: KuboClient, root: bytes, exact: bool) -> Iterator[tuple[str, str]]:
    tree = _TipTree(root)
    with client.dag_export(root, timeout=client.long_timeout) as chunks:
        for block in CarReader(IterReader(chunks)):
            for pi, text in tree.feed(block.cid, block.data):
                yield pi, text if exact else text.strip()
    # what the export did not send again (a CID linked twice) is asked for by CID
    while tree.wanted:
        for cid, data in client.get_blocks(list(tree.wanted)):
            check_block(cid, data)
            for pi, text in tree.feed(cid, data):
                yield pi, text if exact else text.strip()


class _Parts:
    """A file of several blocks: its payload and its leaves, joined once all are in."""

    def __init__(self, target: tuple, count: int):
        self.target, self.parts, self.left = target, [b""] * count, count


class _TipTree:
    """A UnixFS tree resolved block by block as its CAR streams past.

    `wanted` maps each CID still to come to what it is: a named entry of a
    directory, a sub-shard of a HAMT directory, or a part of a file. A block
    that arrives before its parent waits in `early`."""

    def __init__(self, root: bytes):
        self.wanted: dict[bytes, list[tuple]] = {root: [("entry", "")]}
        self.early: dict[bytes, bytes] = {}
        self._out: list[tuple[str, str]] = []

    def feed(self, cid: bytes, data: bytes) -> list[tuple[str, str]]:
        targets = self.wanted.pop(cid, None)
        if targets is None:
            self.early[cid] = data
            return []
        for target in targets:
            self._take(target, cid, data)
        out, self._out = self._out, []
        return out

    def _want(self, cid: bytes, target: tuple) -> None:
        data = self.early.pop(cid, None)
        if data is not None:
            self._take(target, cid, data)
        else:
            self.wanted.setdefault(cid, []).append(target)

    def _take(self, target: tuple, cid: bytes, data: bytes) -> None:
        codec = split_cid(cid)[1]
        if codec == RAW:
            return self._content(target, data)
        if codec != DAG_PB:
            raise UnixfsError(f"{cid_str(cid)} in the tip tree is neither dag-pb nor raw")
        links, pb = decode_dag_pb(data)
        typ, payload, _ = unixfs_fields(pb)
        if typ in (UNIXFS_DIR, UNIXFS_HAMT):
            if target[0] == "part":
                raise UnixfsError(f"{cid_str(cid)}: a directory inside a file")
            hamt = typ == UNIXFS_HAMT
            for child, name in links:
                self._want(child, ("shard",) if hamt and len(name) == 2 else ("entry", name[2:] if hamt else name))
        elif not links:
            self._content(target, payload)
        else:
            parts = _Parts(target, len(links) + 1)
            self._content(("part", parts, 0), payload)
            for i, (child, _) in enumerate(links, 1):
                self._want(child, ("part", parts, i))

    def _content(self, target: tuple, content: bytes) -> None:
        if target[0] == "entry":
            if target[1].endswith(".tip"):
                self._out.append((target[1][:-4], content.decode()))
        elif target[0] == "part":
            parts = target[1]
            parts.parts[target[2]] = content
            parts.left -= 1
            if parts.left == 0:
                self._content(parts.target, b"".join(parts.parts))
        else:
            raise UnixfsError("a HAMT shard that is not a directory")


def read_tips_of(client: KuboClient, root: str, pis: Iterable[str], *, exact: bool = False,
                 ) -> dict[str, str] | None:
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
    texts = {path.rsplit("/", 1)[1][:-4]: _file_text(blocks, cid) for path, cid in found.items()}
    return texts if exact else {pi: text.strip() for pi, text in texts.items()}


def _file_text(blocks: dict[bytes, bytes], cid: bytes) -> str:
    codec = split_cid(cid)[1]
    if codec == RAW:
        return blocks[cid].decode()
    links, data = decode_dag_pb(blocks[cid])
    payload = unixfs_fields(data)[1]
    return payload.decode() + "".join(_file_text(blocks, c) for c, _ in links)


def tip_files(tips: Iterable[tuple[str, str]]) -> Iterator[tuple[str, bytes]]:
    """(relative path, content) of every tip file, from (pi, tip file text)
    sorted by PI, which sorts the paths too, so parents come first.

    The text is what the snapshot recorded the file held: the CID's text
    alone as the Arke API's handlers write it, or with the newline of an
    `echo CID | ipfs files write`, byte for byte."""
    last = ""
    for pi, text in tips:
        if pi <= last:
            raise ValueError(f"tip files out of order: {pi} after {last}")
        last = pi
        yield tip_relpath(pi), text.encode()


def install_tips(client: KuboClient, root: str, tips: Iterable[tuple[str, bytes]]) -> str:
    """Build the whole tip tree in one `add`, swap it in with `files/cp` and `files/mv`.

    `tips`: (pi, tip file text) sorted by PI. The old tree stays in place until
    the new one is complete, and the swap is two calls; a crash between them
    leaves the new tree under a staging name that the next run removes.
    """
    staging = f"{root}.restore-staging"
    tree = client.add_tree(tip_files(tips), wrap_dir="index")
    if client.files_stat(staging) is not None:
        client.files_rm(staging)
    client.files_cp(f"/ipfs/{tree}", staging)
    if client.files_stat(root, timeout=client.long_timeout) is not None:
        client.files_rm(root)
    client.files_mv(staging, root)
    return tree
