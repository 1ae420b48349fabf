"""Build a snapshot: the newest version of every entity, from the event chain.

Order of writes, so that a crash never leaves a pointer to nothing: the
snapshot blocks, then `snapshots/snapshot-{seq}.json`, then the index
pointer's snapshot fields, then `snapshots/latest.json`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import zip_longest

from ..arke.models import SnapshotEntry, SnapshotHeader
from ..arke.snapshot_codec import (
    EncodedEntry,
    decode_chunk_block,
    decode_snapshot,
    entry_ver,
    reusable_entries,
    snapshot_blocks,
    snapshot_entries,
)
from ..ipld.cid import CIDError, check_block, cid_str, parse_cid, split_cid
from ..kubo.client import KuboClient
from ..kubo.errors import KuboError
from .chain import ChainError, walk_events
from .config import Settings
from .files import atomic_write_json
from .lock import reading_archive
from .pointer import (
    ArchiveError,
    read_record,
    require_pointer,
    reverted_pointer,
    snapshot_record,
    update_snapshot_fields,
)
from .progress import log, progress
from .tips import iter_tips, read_tips_of

PUT_BATCH = 4  # snapshot blocks per block/put: ~4 MB of request body, put while the next are encoded


@dataclass
class SnapshotResult:
    snapshot_cid: str
    seq: int
    event_cid: str
    entity_count: int
    new_events: int
    event_count: int
    block_bytes: int
    schema: str
    seconds: float
    created: bool
    incremental: bool
    anomalies: list[str] = field(default_factory=list)
    pointer_repaired: bool = False


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def load_snapshot(client: KuboClient, cid: str) -> tuple[SnapshotHeader, dict[str, SnapshotEntry]]:
    header = decode_snapshot(client.block_get(cid), f"snapshot {cid}", split_cid(parse_cid(cid))[1])
    entries = {
        e.pi: e
        for e in snapshot_entries(header, client.block_get)
    }
    return header, entries


def _previous_entries(client: KuboClient, cid: str, header: SnapshotHeader,
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


def _beside(fn, *args) -> Future:
    """`fn(*args)` in a thread of its own, for work that need not wait on the
    chain walk's round trips or on the encoding: 1.2 s of a 2.7 s incremental
    build at 10x was the two done one after the other."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="snapshot")
    try:
        return pool.submit(fn, *args)
    finally:
        pool.shutdown(wait=False)


def _put_snapshot(client: KuboClient, blocks: Iterator[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Put the snapshot's blocks `PUT_BATCH` at a time, each group while the
    next is encoded, in order, so the root goes in after every chunk it names;
    each CID the node answers must be the one computed here."""
    out: list[tuple[bytes, bytes]] = []
    puts: list[Future] = []

    def put(group: list[bytes]) -> None:
        puts.append(putter.submit(client.block_put_many, group, cid_codec="dag-json"))

    with ThreadPoolExecutor(1, thread_name_prefix="block-put") as putter:
        group: list[bytes] = []
        for cid, data in blocks:
            out.append((cid, data))
            group.append(data)
            if len(group) == PUT_BATCH:
                put(group)
                group = []
        if group:
            put(group)
        stored = [key for done in puts for key in done.result()]
    for (cid, _), got in zip_longest(out, stored):
        if got != cid_str(cid):
            raise ArchiveError(f"node stored snapshot block as {got}, expected {cid_str(cid)}")
    return out


def build_snapshot(
    client: KuboClient, settings: Settings, *, wait: bool = False, trigger: str = "manual",
    check_tips: bool = True, full: bool = False,
) -> SnapshotResult:
    """`full` walks the whole chain again instead of continuing from the previous
    snapshot: the way out when that snapshot's event is no longer in the chain."""
    with reading_archive(settings.lock_dir, "snapshot-build", wait=wait):
        return _build(client, settings, trigger=trigger, check_tips=check_tips, full=full)


def _build(client: KuboClient, settings: Settings, *, trigger: str, check_tips: bool,
           full: bool) -> SnapshotResult:
    started = time.monotonic()
    pointer = require_pointer(client, settings.index_pointer_path)
    head = pointer.event_head
    if not head:
        raise ArchiveError("the index pointer has no event_head: nothing to snapshot yet")
    anomalies: list[str] = []
    prev_cid = pointer.latest_snapshot_cid
    repair = reverted_pointer(client, settings, pointer)
    if repair is not None:
        anomalies.append(
            f"the index pointer's snapshot fields went backwards (it names {prev_cid or 'no snapshot'}, "
            f"seq {pointer.snapshot_seq}; the newest snapshot is {repair['snapshot_cid']}, "
            f"seq {repair['seq']}): a stale rewrite by the Arke API, repaired")
        prev_cid = repair["snapshot_cid"]
    entries: dict[str, SnapshotEntry | EncodedEntry] = {}
    loading = None
    stop = None
    seq = 1
    if prev_cid:
        prev_header = decode_snapshot(client.block_get(prev_cid), f"snapshot {prev_cid}",
                                      split_cid(parse_cid(prev_cid))[1])
        stop = prev_header.event_cid or None
        if stop is None and pointer.latest_snapshot_cid == prev_cid:
            stop = pointer.raw.get("snapshot_event_cid") or None
        if stop is None:
            anomalies.append(f"snapshot {prev_cid} ({prev_header.schema}) names no event: the whole chain is walked")
        seq = max(prev_header.seq, _seq_floor(settings, prev_cid)) + 1
        if full or stop is None:
            stop = None
        elif stop != head:
            loading = _beside(_previous_entries, client, prev_cid, prev_header)
        else:
            if repair is not None:
                update_snapshot_fields(client, settings.index_pointer_path, repair["pointer_fields"])
            for a in anomalies:
                log(f"warning: {a}")
            log(f"snapshot {prev_cid} (seq {prev_header.seq}) is up to date with the event head")
            return SnapshotResult(
                prev_cid, prev_header.seq, head, prev_header.total_count, 0, pointer.event_count, 0,
                prev_header.schema, time.monotonic() - started, False, True, anomalies, repair is not None,
            )
    newest: dict[str, SnapshotEntry] = {}
    walked = 0
    last_prev: bytes | None = b""
    bar = progress("walking event chain", unit="events")
    try:
        for cid, ev in walk_events(client, head, stop):
            walked += 1
            bar.update()
            last_prev = ev.prev
            seen = newest.get(ev.pi)
            if seen is None:
                newest[ev.pi] = SnapshotEntry(ev.pi, ev.ver, ev.tip_cid, ev.ts, cid)
            elif ev.ver >= seen.ver:
                anomalies.append(
                    f"{ev.pi}: event {cid_str(cid)} has ver {ev.ver}, not older than ver {seen.ver} after it"
                )
    finally:
        bar.close()
    if stop and last_prev is None:
        raise ChainError(
            f"the previous snapshot's event {stop} is not in the chain from {head}; "
            "rebuild from scratch with --full"
        )
    if loading is not None:
        entries = loading.result()
    for pi, entry in newest.items():
        old = entries.get(pi)
        if old is not None and entry.ver < entry_ver(old):
            anomalies.append(f"{pi}: ver goes backwards from {entry_ver(old)} to {entry.ver}")
        entries[pi] = entry
    ordered = [entries[pi] for pi in sorted(entries)]
    log(f"walked {walked} events in {time.monotonic() - started:.1f}s; {len(ordered)} entities")
    tips_started = time.monotonic()
    audit = _beside(lambda: compare_tips(client, settings, newest, every=not stop)) if check_tips else None

    ts = now_ts()
    blocks = _put_snapshot(client, snapshot_blocks(
        seq=seq, ts=ts, event_cid=head, prev_snapshot=parse_cid(prev_cid) if prev_cid else None,
        entries=ordered,
    ))
    root = blocks[-1][0]
    if audit is not None:
        anomalies.extend(audit.result())
        log(f"compared {len(newest)} tip files in {time.monotonic() - tips_started:.1f}s, beside the encoding")
    for a in anomalies[:20]:
        log(f"warning: {a}")
    if len(anomalies) > 20:
        log(f"warning: {len(anomalies) - 20} more anomalies")
    snapshot_cid = cid_str(root)
    schema = decode_snapshot(blocks[-1][1]).schema
    if repair is not None and stop is not None:
        event_count = walked + int(repair.get("event_count") or 0)
    else:
        event_count = _event_count(pointer, walked, incremental=stop is not None)
    result = SnapshotResult(
        snapshot_cid, seq, head, len(ordered), walked, event_count,
        sum(len(d) for _, d in blocks), schema, 0.0, True, stop is not None, anomalies,
        repair is not None,
    )
    meta = snapshot_record(
        snapshot_cid=snapshot_cid, seq=seq, ts=ts, event_cid=head, total_count=len(ordered),
        event_count=event_count, new_events=walked, prev_snapshot=prev_cid, schema=schema,
        blocks=len(blocks), bytes=result.block_bytes, trigger=trigger,
    )
    atomic_write_json(settings.snapshots_dir / f"snapshot-{seq}.json", meta)
    update_snapshot_fields(client, settings.index_pointer_path, meta["pointer_fields"])
    atomic_write_json(settings.snapshots_dir / "latest.json", meta)
    result.seconds = time.monotonic() - started
    log(f"snapshot {snapshot_cid}: seq {seq}, {len(ordered)} entities, {walked} new events, "
        f"{result.seconds:.1f}s")
    return result


def _seq_floor(settings: Settings, prev_cid: str) -> int:
    """The highest seq a restore of `prev_cid` knew of: after a point-in-time
    restore the next snapshot takes a seq above every one already used."""
    record = read_record(settings)
    if record is None or record.get("snapshot_cid") != prev_cid:
        return 0
    floor = record.get("seq_floor")
    return floor if isinstance(floor, int) else 0


def _event_count(pointer, walked: int, *, incremental: bool) -> int:
    """Events up to the head. A pointer written by the seed's scripts has no
    `snapshot_event_count`; its writer-kept `event_count` is then the best count."""
    if not incremental:
        return walked
    if "snapshot_event_count" in pointer.raw:
        return walked + pointer.snapshot_event_count
    return max(pointer.event_count, walked)


def compare_tips(client: KuboClient, settings: Settings, newest: dict[str, SnapshotEntry], *,
                 every: bool = True) -> list[str]:
    """Tip files that disagree with the chain: reported, never silently chosen.

    An audit, not an input: when the tip tree cannot be read the snapshot is
    still built from the chain, and the failure is one more anomaly. A full
    build streams every tip file past its entries in one export of the tree
    (at 10x, holding the tree took the build past 300 MB); an incremental
    one (`every=False`) reads only the tips of the entities its new events
    touched, so it stays fast whatever the archive's size.
    """
    try:
        if every:
            tips = iter_tips(client, settings.index_root)
        else:
            some = read_tips_of(client, settings.index_root, list(newest))
            tips = None if some is None else iter(some.items())
        if tips is None:
            return [f"no tip tree at {settings.index_root}"]
        left = dict(newest)
        out = []
        for pi, tip in tips:
            e = left.pop(pi, None)
            if e is not None and tip != cid_str(e.tip_cid):
                out.append(f"{pi}: tip file says {tip}, newest event says {cid_str(e.tip_cid)}")
    except (KuboError, ValueError) as exc:  # ValueError: a tree we cannot decode (UnixfsError, BlockDecodeError)
        return [f"tip files not compared: {exc}"]
    out.extend(f"{pi}: no tip file" for pi in left)
    return sorted(out)
