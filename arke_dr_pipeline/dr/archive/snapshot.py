"""Build a snapshot: the newest version of every entity, from the event chain.

Order of writes, so that a crash never leaves a pointer to nothing: the
snapshot blocks, then `snapshots/snapshot-{seq}.json`, then the index
pointer's snapshot fields, then `snapshots/latest.json`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import zip_longest

from ...arke.models import SNAPSHOT_V2, SnapshotEntry
from ...arke.snapshot_codec import (
    BLOCK_LIMIT,
    EncodedEntry,
    decode_snapshot,
    entry_ver,
    inline_snapshot_block,
    snapshot_blocks,
)
from ...arke.upstream_proof import proof_fields
from ...ipld.cid import cid_str, parse_cid
from ...kubo.client import KuboClient
from ..plumbing.config import Settings
from ..plumbing.files import atomic_write_json
from ..plumbing.lock import reading_archive
from ..plumbing.progress import log, progress
from .event_chain import ChainError, walk_events
from .pointer import (
    ArchiveError,
    read_record,
    require_pointer,
    reverted_pointer,
    snapshot_record,
    update_snapshot_fields,
)
from .proofset import history_cids
from .snapshot_base import Base, choose_base, entity_count, previous_entries, unreadable_by_the_api
from .tip_audit import audit_tips

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
    base_refused: str | None = None
    published: bool = True


def now_ts() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        big = any(len(data) > BLOCK_LIMIT for data in group)  # a published @v2, as upstream's own
        puts.append(putter.submit(client.block_put_many, group, cid_codec="dag-json", allow_big_block=big))

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
    named = pointer.latest_snapshot_cid
    repair = reverted_pointer(client, settings, pointer)
    if repair is not None:
        anomalies.append(
            f"the index pointer's snapshot fields went backwards (it names {named or 'no snapshot'}, "
            f"seq {pointer.snapshot_seq}; the newest snapshot is {repair['snapshot_cid']}, "
            f"seq {repair['seq']}): a stale rewrite by the Arke API, repaired")
        named = repair["snapshot_cid"]
    record = read_record(settings)
    base = choose_base(client, named, record, anomalies)
    prev_cid = base.cid
    entries: dict[str, SnapshotEntry | EncodedEntry] = {}
    loading = None
    stop = None
    seq = max(base.header.seq, pointer.snapshot_seq) + 1 if base.header is not None else 1
    if base.cid is not None:
        prev_header = base.header
        stop = prev_header.event_cid or None
        if stop is None and pointer.latest_snapshot_cid == prev_cid:
            stop = pointer.raw.get("snapshot_event_cid") or None
        if stop is None:
            anomalies.append(f"snapshot {prev_cid} ({prev_header.schema}) names no event: the whole chain is walked")
        seq = max(seq, _seq_floor(settings, prev_cid) + 1)
        if full or stop is None:
            stop = None
        elif stop != head or (base.link != prev_cid and settings.publishes(entity_count(prev_header))):
            loading = _beside(previous_entries, client, prev_cid, prev_header)
        else:
            if repair is not None:
                update_snapshot_fields(client, settings.index_pointer_path, repair["pointer_fields"])
            for a in anomalies:
                log(f"warning: {a}")
            log(f"snapshot {prev_cid} (seq {prev_header.seq}) is up to date with the event head")
            return SnapshotResult(
                prev_cid, prev_header.seq, head, prev_header.total_count, 0, pointer.event_count, 0,
                prev_header.schema, time.monotonic() - started, False, True, anomalies, repair is not None,
                base.refused, bool(record and record.get("published", True))
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
    log(f"walked {walked} events in {time.monotonic() - started:.1f}s")
    audit = _beside(lambda: audit_tips(client, settings, newest, head=head, every=not stop)) if check_tips else None
    if loading is not None:
        entries = loading.result()
    if audit is not None:
        tips = audit.result()
        anomalies.extend(tips.anomalies)
        for pi, text in tips.texts.items():
            newest[pi] = replace(newest[pi], tip_file=text)
    old_tips = {pi: _entry_tip(entries[pi]) for pi in newest if pi in entries}
    for pi, entry in newest.items():
        old = entries.get(pi)
        if old is not None and entry.ver < entry_ver(old):
            anomalies.append(f"{pi}: ver goes backwards from {entry_ver(old)} to {entry.ver}")
        if old is not None and entry.tip_file is None and entry.tip_cid == old_tips[pi][0]:
            newest[pi] = replace(entry, tip_file=old_tips[pi][1])
    publish = settings.publishes(len(entries.keys() | newest.keys()))
    if publish:
        # upstream's order: oldest change first, so the last entry names the head
        ordered = [e for pi, e in entries.items() if pi not in newest] + list(reversed(newest.values()))
    else:
        entries.update(newest)
        ordered = [entries[pi] for pi in sorted(entries)]
        if settings.publish == "auto":  # a setting's consequence, not an anomaly: said, not counted
            log(f"{len(ordered)} entities is past ARKE_INLINE_MAX_ENTITIES ({settings.inline_max_entities}): "
                "the snapshot is kept in our record and the index pointer's snapshot fields are left "
                "to the Arke API's builder")
    entries = {}
    log(f"{len(ordered)} entities")
    ts = now_ts()
    link = base.link if publish else prev_cid
    prev_raw = parse_cid(link) if link else None
    if publish:
        proof = _proof(client, ordered, newest, old_tips, base, anomalies)
        block = inline_snapshot_block(
            seq=seq, ts=ts, event_cid=head, prev_snapshot=prev_raw, entries=ordered, proof=proof)
        del proof["all_cids"]  # 470,000 CID texts at 40,000 entities: in the block now, and needed nowhere else
        blocks = _put_snapshot(client, iter([block]))
        del block
        if proof["consistency"] and not proof["consistency"]["is_append_only"]:
            anomalies.append(f"upstream's consistency: {proof['consistency']['deleted_count']} CIDs deleted")
    else:
        blocks = _put_snapshot(client, snapshot_blocks(
            seq=seq, ts=ts, event_cid=head, prev_snapshot=prev_raw, entries=ordered))
    root = blocks[-1][0]
    for a in anomalies[:20]:
        log(f"warning: {a}")
    if len(anomalies) > 20:
        log(f"warning: {len(anomalies) - 20} more anomalies")
    snapshot_cid = cid_str(root)
    # the published block is upstream's @v2 (32 MB at 40,000 entities: decoding it for its
    # schema was the build's peak memory); our own root is small
    schema = SNAPSHOT_V2 if publish else decode_snapshot(blocks[-1][1]).schema
    if repair is not None and stop is not None:
        event_count = walked + int(repair.get("event_count") or 0)
    elif stop is not None and base.recorded and isinstance(base.recorded.get("event_count"), int):
        event_count = walked + base.recorded["event_count"]
    else:
        event_count = _event_count(pointer, walked, incremental=stop is not None)
    result = SnapshotResult(
        snapshot_cid, seq, head, len(ordered), walked, event_count,
        sum(len(d) for _, d in blocks), schema, 0.0, True, stop is not None, anomalies,
        repair is not None, base.refused, publish,
    )
    meta = snapshot_record(
        snapshot_cid=snapshot_cid, seq=seq, ts=ts, event_cid=head, total_count=len(ordered),
        event_count=event_count, new_events=walked, prev_snapshot=link, schema=schema,
        blocks=len(blocks), bytes=result.block_bytes, trigger=trigger, published=publish,
    )
    atomic_write_json(settings.snapshots_dir / f"snapshot-{seq}.json", meta)
    if publish:
        update_snapshot_fields(client, settings.index_pointer_path, meta["pointer_fields"])
    elif unreadable_by_the_api(client, settings):
        # a restore (or the release before) left a chunked snapshot there, which
        # the API's builder reads as empty: with no snapshot named it walks the chain
        update_snapshot_fields(client, settings.index_pointer_path,
                               {"latest_snapshot_cid": None, "snapshot_event_cid": None})
        log("warning: the index pointer named a chunked snapshot the Arke API cannot read; "
            "its snapshot fields are cleared, so the API's builder rebuilds from the chain")
    atomic_write_json(settings.snapshots_dir / "latest.json", meta)
    result.seconds = time.monotonic() - started
    log(f"snapshot {snapshot_cid}: seq {seq}, {len(ordered)} entities, {walked} new events, "
        f"{result.seconds:.1f}s" + ("" if publish else " (in our record, not in the index pointer)"))
    return result


def _entry_tip(e: SnapshotEntry | EncodedEntry) -> tuple[bytes, str | None]:
    """(tip CID, tip file text or None) of an entry, kept as bytes or not."""
    if type(e) is tuple:
        d = json.loads(e[0])
        return parse_cid(d["tip_cid"]["/"]), d.get("tip_file")
    return e.tip_cid, e.tip_file


def _proof(client: KuboClient, ordered: list, newest: dict[str, SnapshotEntry],
           old_tips: dict[str, tuple[bytes, str | None]], base: Base, problems: list[str]) -> dict:
    """Upstream's proof fields: the base's CIDs and what changed since, or,
    when the base has no proof, every entity's whole history."""
    started = time.monotonic()
    if base.proven is None:
        walks = [_walk_of(e) for e in ordered]
    else:
        walks = [(pi, e.chain_cid, e.tip_cid, old_tips[pi][0] if pi in old_tips else None)
                 for pi, e in newest.items()]
    found = history_cids(client, walks, problems)
    for earlier in (base.proven, base.linked):
        if earlier:
            found |= earlier
    proof = proof_fields(found, base.linked)
    log(f"upstream's proof: {proof['cid_count']} CIDs, merkle root {proof['merkle_root'][:16]}..., "
        f"{time.monotonic() - started:.1f}s")
    return proof


def _walk_of(e: SnapshotEntry | EncodedEntry) -> tuple[str, bytes, bytes, None]:
    if type(e) is tuple:
        d = json.loads(e[0])
        return d["pi"], parse_cid(d["chain_cid"]["/"]), parse_cid(d["tip_cid"]["/"]), None
    return e.pi, e.chain_cid, e.tip_cid, None


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
