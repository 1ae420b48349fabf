"""Reading one snapshot's whole DAG from the node, every block hashed and checked.

Kubo's `dag/export` cannot serve this archive: its traversal grows with the
depth of the DAG, and the event chain is as deep as it is long (2.2 GB of
daemon memory at 8,000 events). The chain is read in short windows of it
(or a block at a time where its links are plain maps), the rest by following
links, 20,000 blocks per `dag/export` of a listing block, each block hashed
against its CID and checked by `DagCheck` as it streams. The chain's round
trips are waits, so it is read on a thread beside the rest (`plumbing/ahead.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from itertools import chain

import cbrrr

from ...arke.models import CHUNK_SCHEMA, PROOF_LIST, SNAPSHOT_SCHEMAS
from ...arke.snapshot_codec import size_groups
from ...ipld.car import CarError, CarReader
from ...ipld.cid import DAG_CBOR, DAG_JSON, IDENTITY, CIDError, check_block, cid_str, make_cid, parse_cid, split_cid
from ...ipld.links import BlockDecodeError, block_links, dag_cbor_links, dag_json_links, inline_links
from ...kubo.blocks import export_stream
from ...kubo.client import KuboClient
from ...kubo.errors import KuboError, KuboUnreachable
from ..archive.event_chain import event_blocks
from ..plumbing.ahead import Ahead
from ..plumbing.progress import progress
from ..plumbing.spill import CidQueue, CidSet, SpillFile
from ..plumbing.streams import IterReader
from ..verify.dagcheck import BackupInvalid, DagCheck
from .known import KnownBlocks

BATCH = 20_000  # CIDs asked of the node at a time below the snapshot and the chain: one listing block's worth
LISTED = 256  # from this many CIDs on, one listing `dag/export` beats pipelined `block/get`
LISTING_BYTES = 900 * 1024  # a listing block under Kubo's 1 MiB, whatever the CIDs' hash length


def _expand_snapshot(cid: bytes, data: bytes) -> tuple[bool, list[bytes], list[bytes], str | None]:
    """(is a snapshot block, links to snapshot blocks, all its links, the event head it names)."""
    codec = split_cid(cid)[1]
    if codec == DAG_JSON:
        value, links = dag_json_links(data, skip=PROOF_LIST)
    elif codec == DAG_CBOR:
        value, links = dag_cbor_links(data)
    else:
        return False, [], [], None
    schema = value.get("schema") if isinstance(value, dict) else None
    if schema not in SNAPSHOT_SCHEMAS and schema != CHUNK_SCHEMA:
        return False, [], [], None
    inner = [c.cid_bytes for c in value.get("chunks") or [] if isinstance(c, cbrrr.CID)]
    if isinstance(value.get("prev_snapshot"), cbrrr.CID):
        inner.append(value["prev_snapshot"].cid_bytes)
    head = value.get("event_cid")
    return True, inner, links, head if isinstance(head, str) else None


def dag_blocks(client: KuboClient, root: str, known: CidSet | None = None, *,
               recorded: bool = False, check: DagCheck | None = None) -> Iterator[tuple[bytes, bytes]]:
    """Every block reachable from the snapshot `root`, once, each hashed against its CID.

    Three passes, because of two walls in Kubo. Snapshot blocks are wide
    (thousands of links), and `refs` is quadratic in a node's link count, so
    they are read and expanded here. The event chain is deep, and
    `dag/export` grows with depth, so the chain is read in windows of it
    (`event_blocks`), on a thread of its own while everything below the
    snapshot (manifests, their components) is walked here, breadth first, a
    listing export per 20,000 CIDs (`_listed_blocks`). Blocks are yielded
    as either side has them, on this thread only.

    `known` (taken over, and grown) holds blocks a backup already has: they
    are neither read nor followed, so a delta's walk reads only what is new.
    `recorded`: the caller adds each block to `known` before it asks for the
    next (a DAG check's own set of blocks seen), so a full pass holds one
    set of its CIDs, not two (40 MB at 10x).
    What was seen and what is still to read go to disk past `spill.py`'s
    limits, so the walk's memory stays flat at millions of blocks.

    With `check`, a block below the snapshots and the event chain (a
    manifest, a component) that the node does not have is handed to
    `check.lose` and the walk goes on: one block a `repo gc` took must not
    leave the rest of the archive without a backup. A missing snapshot or
    event still ends the walk: without them there is no archive to restore.
    """
    seen = known if known is not None else CidSet(SpillFile())
    later = CidQueue()
    heads: list[str] = []

    gone = check.lost if check is not None else {}

    def one_by_one(cids: list[bytes], tolerant: bool = False) -> Iterator[tuple[bytes, bytes]]:
        """Those not seen yet, a request each: Kubo may drop a pipelined
        connection at a missing block instead of answering that it lacks it,
        and an export stops at one; asked alone, it is named."""
        for cid in cids:
            if cid in seen or cid in gone:
                continue
            try:
                data = client.request("block/get", cid, {"offline": True}).content
            except KuboError as exc:
                if not (tolerant and check is not None and _not_found(exc)):
                    raise
                check.lose(cid)
                continue
            yield cid, data

    def fetch(cids: list[bytes], tolerant: bool = False) -> Iterator[tuple[bytes, bytes]]:
        # a dag-json block may be a seed-shaped event: an export from it would walk the chain again
        listed = [c for c in cids if split_cid(c)[1] != DAG_JSON]
        asked = [c for c in cids if split_cid(c)[1] == DAG_JSON]
        if len(listed) >= LISTED:
            blocks = chain(*(_listed_blocks(client, part) for part in size_groups(listed, LISTING_BYTES, 5)),
                           client.get_blocks(asked) if asked else (), one_by_one(listed, tolerant))
        else:
            blocks = client.get_blocks(cids)
        try:
            yield from checked(blocks)
        except KuboUnreachable:
            yield from checked(one_by_one(cids, tolerant))  # a node that is gone fails here again
        except BlockMissing:
            if not tolerant or check is None:
                raise
            yield from checked(one_by_one(cids, tolerant))  # the rest, each asked alone; the missing one is lost

    def checked(blocks: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
        for cid, data in _missing_named(blocks):
            if cid in seen:
                continue
            try:
                check_block(cid, data)
            except CIDError as exc:
                raise BackupInvalid(cid, f"the node's block is corrupt: {exc}") from None
            if not recorded:
                seen.add(cid)
            yield cid, data

    def events(chain: Iterator[tuple[bytes, bytes, bytes | None]]) -> Iterator[tuple[bytes, bytes]]:
        for cid, data, prev in chain:
            if cid in seen:  # the walk below reached it first (a component linking to an event)
                continue
            if not recorded:
                seen.add(cid)
            yield cid, data
            # the chain's walk brings `prev` itself; from `later` it would be read twice
            later.extend(c for c in block_links(split_cid(cid)[1], data) if c != prev)

    def walk_chain(head: str) -> Iterator[tuple[bytes, bytes, bytes | None]]:
        return ((c, d, event.prev) for c, d, event in event_blocks(client, head, until=seen.__contains__))

    frontier = [parse_cid(root)]
    while frontier:
        batch = [c for c in dict.fromkeys(frontier) if c not in seen]
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
    heads = list(dict.fromkeys(heads))
    beside = _chain_beside(known, recorded)
    feed: Ahead | None = None
    if heads and beside is not None and parse_cid(heads[0]) not in seen:
        feed = Ahead(((c, d, event.prev) for c, d, event in event_blocks(client, heads.pop(0), until=beside)),
                     name="event-chain")
    try:
        while True:
            if feed is not None:
                yield from events(iter(feed.take(wait=not later)))
                if feed.finished:
                    feed = None
            if feed is None:
                for head in heads:
                    if parse_cid(head) not in seen:
                        yield from events(walk_chain(head))
                heads = []
            if not later:
                if feed is None:
                    return
                continue
            batch = []
            for c in dict.fromkeys(later.take(BATCH)):
                if split_cid(c)[2] == IDENTITY:
                    later.extend(_inline_targets(c))
                elif c not in seen and c not in gone:
                    batch.append(c)
            for cid, data in fetch(batch, tolerant=True):
                yield cid, data
                later.extend(c for c in block_links(split_cid(cid)[1], data) if c not in seen)
    finally:
        if feed is not None:
            feed.close()


def _chain_beside(known: CidSet | KnownBlocks | None, recorded: bool) -> Callable[[bytes], bool] | None:
    """Where the first event chain may be read on a thread beside the rest: its `until`, which
    must not touch what the walk grows. A full walk has seen only snapshot blocks when the chain
    starts, never an event, so nothing stops it before its first event; a delta's stops at the
    base's events, whose inventory is only read. Anything else walks the chain first."""
    if known is None or recorded:
        return lambda cid: False
    if isinstance(known, KnownBlocks):
        base = known.base
        return lambda cid: cid_str(cid) in base
    return None


def _inline_targets(cid: bytes) -> list[bytes]:
    """The blocks an identity CID's inline data links to; none when it does not decode, which the
    DAG check names at the block linking to it."""
    try:
        return inline_links(cid)
    except (BlockDecodeError, CIDError):
        return []


class BlockMissing(BackupInvalid):
    """The node does not have a block the snapshot reaches."""


def _not_found(exc: KuboError) -> bool:
    return bool(exc.arg) and ("not found" in exc.kubo_message or "could not find" in exc.kubo_message)


def _missing_named(blocks: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[bytes, bytes]]:
    """A block the node does not have, said as the DAG check says it."""
    try:
        yield from blocks
    except KuboError as exc:
        if _not_found(exc):
            raise BlockMissing(exc.arg, f"block missing: the node does not have it ({exc.kubo_message})") from None
        raise


def _listed_blocks(client: KuboClient, cids: list[bytes]) -> Iterator[tuple[bytes, bytes]]:
    """`cids`, and every block Kubo can follow below them, in one `dag/export`
    of a temporary block listing them.

    Kubo serves ~12,000 blocks/s this way against ~4,000 with pipelined
    `block/get` (measured on the 30k archive; its per-request cost is the
    limit), and follows the real links of a component's UnixFS DAG itself.
    The listing block stays in the node unpinned, for its next `repo gc`:
    `block/rm` checks every recursive pin first (one call timed out after
    30 s on the 30k archive).
    A block missing from the node ends the stream early; the caller asks for
    what it held back one by one, which names the missing block.
    """
    listing = cbrrr.encode_dag_cbor([cbrrr.CID(c) for c in cids])
    key = make_cid(DAG_CBOR, listing)
    stored = client.block_put(listing, cid_codec="dag-cbor")
    if stored != cid_str(key):
        raise BackupInvalid(key, f"the node stored the listing block as {stored}")
    try:
        for block in CarReader(IterReader(export_stream(client.api_url, key, timeout=client.timeout)), verify=False):
            if block.cid != key:
                yield block.cid, block.data
    except KuboUnreachable:
        raise
    except (CarError, KuboError):  # a block it lacks: the caller asks for the rest one by one
        return


def checked_stream(client: KuboClient, root: str, check: DagCheck, desc: str,
                   known: CidSet | None = None) -> Iterator[tuple[bytes, bytes, str]]:
    bar = progress(desc)
    try:
        blocks = dag_blocks(client, root, known, check=check) if known is not None else \
            dag_blocks(client, root, check.seen, recorded=True, check=check)
        for cid, data in blocks:
            yield cid, data, check.add(cid, data)
            bar.update()
    finally:
        bar.close()
